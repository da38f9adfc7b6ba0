"""Backups: the database and the media files in one archive with a manifest; restore into an empty
database.

The archive (``sejour-backup-YYYYMMDD-HHMMSS.tar``, plain tar: its members are already compressed)
holds:

* ``manifest.json`` — format, date, database vendor, the row count of every table, the number and
  size of media files, and the SHA-256 of the two other members;
* ``database.pgdump`` (PostgreSQL, ``pg_dump --format=custom``) or ``database.sqlite3`` (SQLite, a
  consistent copy made with the ``sqlite3`` backup API, safe while the application runs);
* ``media.tar`` — ``MEDIA_ROOT`` (invoice PDFs, logos, exports).

``core`` knows no application model: tables are listed and counted through the connection's
introspection. Restore checks every member name (no absolute path, no ``..``, no link) and the
checksums BEFORE extracting anything, refuses a database that already holds data unless ``force``,
then compares the restored row counts with the manifest.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.db import connections
from django.utils import timezone
from django.utils.translation import gettext as _

FORMAT = "sejour-backup/1"
MANIFEST, PG_MEMBER, SQLITE_MEMBER, MEDIA_MEMBER = "manifest.json", "database.pgdump", "database.sqlite3", "media.tar"
ALLOWED_MEMBERS = {MANIFEST, PG_MEMBER, SQLITE_MEMBER, MEDIA_MEMBER}
# Tables Django (or the migrations) fill by themselves: rows there do not make a database "non-empty".
BOOKKEEPING_TABLES = {"django_migrations", "django_content_type", "auth_permission", "django_session"}


class BackupError(Exception):
    """An expected failure, explained in French."""


@dataclass
class Target:
    """Where to restore: a Django ``DATABASES`` entry (engine and connection settings) and a media folder."""
    db: dict
    media_root: Path

    @property
    def vendor(self) -> str:
        return _vendor(self.db)


def _vendor(db: dict) -> str:
    engine = db["ENGINE"]
    if "postgresql" in engine:
        return "postgresql"
    if "sqlite3" in engine:
        return "sqlite"
    raise BackupError(_("Moteur de base de données non pris en charge : %(engine)s.") % {"engine": engine})


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _pg_env(db: dict) -> tuple[list[str], dict]:
    args = []
    if db.get("HOST"):
        args += ["--host", str(db["HOST"])]
    if db.get("PORT"):
        args += ["--port", str(db["PORT"])]
    if db.get("USER"):
        args += ["--username", str(db["USER"])]
    env = {**os.environ}
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = str(db["PASSWORD"])
    return args, env


def _run(cmd: list[str], env: dict) -> None:
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise BackupError(_("Programme introuvable : %(cmd)s (installez postgresql-client).") % {
            "cmd": cmd[0]}) from exc
    if done.returncode != 0:
        raise BackupError(_("%(cmd)s a échoué : %(error)s") % {"cmd": cmd[0], "error": done.stderr.strip()[-2000:]})


# --- reading a database generically ------------------------------------------------------------
def _raw_connect(db: dict):
    """A DB-API connection to a ``DATABASES`` entry (the Django one when it is the same database)."""
    if _vendor(db) == "sqlite":
        return sqlite3.connect(str(db["NAME"]), uri=str(db["NAME"]).startswith("file:"))
    import psycopg

    return psycopg.connect(dbname=db["NAME"], host=db.get("HOST") or None, port=db.get("PORT") or None,
                           user=db.get("USER") or None, password=db.get("PASSWORD") or None, autocommit=True)


def _tables(cursor, vendor: str) -> list[str]:
    if vendor == "sqlite":
        cursor.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    else:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    return sorted(row[0] for row in cursor.fetchall())


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def table_counts(cursor, vendor: str) -> dict[str, int]:
    counts = {}
    for table in _tables(cursor, vendor):
        cursor.execute(f"SELECT COUNT(*) FROM {_quote(table)}")  # noqa: S608 - names from the catalogue
        counts[table] = cursor.fetchone()[0]
    return counts


def data_tables(counts: dict[str, int]) -> dict[str, int]:
    """The tables holding data of the application (not Django's bookkeeping nor migration-made rows)."""
    ignored = BOOKKEEPING_TABLES | set(getattr(settings, "BACKUP_REFERENCE_TABLES", ()))
    return {table: n for table, n in counts.items() if n and table not in ignored}


# --- backup ------------------------------------------------------------------------------------
def _media_tar(media_root: Path, dest: Path) -> dict:
    files = size = 0
    with tarfile.open(dest, "w") as tar:
        if media_root.is_dir():
            for path in sorted(media_root.rglob("*")):
                if path.is_symlink() or not path.is_file():
                    continue
                tar.add(path, arcname=path.relative_to(media_root).as_posix(), recursive=False)
                files += 1
                size += path.stat().st_size
    return {"files": files, "bytes": size}


def backup_create(*, output_dir: Path, using: str = "default", media_root: Path | None = None) -> tuple[Path, dict]:
    """Write the archive into ``output_dir``; returns its path and its manifest."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    media_root = Path(media_root or settings.MEDIA_ROOT)
    connection = connections[using]
    db = connection.settings_dict
    vendor = _vendor(db)
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M%S")
    archive = output_dir / f"sejour-backup-{stamp}.tar"
    with tempfile.TemporaryDirectory(prefix="sejour-backup-") as tmp:
        tmp = Path(tmp)
        if vendor == "postgresql":
            # The counts and the dump read the same snapshot (pg_dump --snapshot), even while users work.
            db_member = PG_MEMBER
            args, env = _pg_env(db)
            raw = _raw_connect(db)
            try:
                raw.autocommit = False
                cursor = raw.cursor()
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                cursor.execute("SELECT pg_export_snapshot()")
                snapshot = cursor.fetchone()[0]
                counts = table_counts(cursor, vendor)
                _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--snapshot={snapshot}",
                      *args, "--file", str(tmp / db_member), db["NAME"]], env)
            finally:
                raw.rollback()
                raw.close()
        else:
            # A consistent copy through the backup API, counted from the copy itself.
            db_member = SQLITE_MEMBER
            connection.ensure_connection()
            copy = sqlite3.connect(tmp / db_member)
            try:
                connection.connection.backup(copy)
                counts = table_counts(copy.cursor(), vendor)
            finally:
                copy.close()
        media = _media_tar(media_root, tmp / MEDIA_MEMBER)
        manifest = {
            "format": FORMAT, "created_at": timezone.now().isoformat(), "vendor": vendor,
            "database": db_member, "tables": counts, "media": media,
            "checksums": {db_member: _sha256(tmp / db_member), MEDIA_MEMBER: _sha256(tmp / MEDIA_MEMBER)},
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
        partial = archive.with_suffix(".tar.part")
        with tarfile.open(partial, "w") as tar:
            for name in (MANIFEST, db_member, MEDIA_MEMBER):
                tar.add(tmp / name, arcname=name, recursive=False)
        partial.rename(archive)  # never a half-written archive under the final name
    return archive, manifest


# --- restore -----------------------------------------------------------------------------------
def _safe_name(name: str) -> bool:
    path = PurePosixPath(name)
    return bool(name) and not path.is_absolute() and ".." not in path.parts and "\\" not in name \
        and not (len(name) > 1 and name[1] == ":")


def _check_members(tar: tarfile.TarFile, *, allowed: set[str] | None, label: str) -> list[tarfile.TarInfo]:
    members = tar.getmembers()
    for member in members:
        if not _safe_name(member.name):
            raise BackupError(_("Archive refusée : le membre « %(name)s » de %(label)s sort du dossier de "
                                "restauration (chemin absolu ou « .. »).") % {"name": member.name, "label": label})
        if not (member.isfile() or member.isdir()):
            raise BackupError(_("Archive refusée : le membre « %(name)s » de %(label)s n'est ni un fichier ni un "
                                "dossier (lien ou fichier spécial).") % {"name": member.name, "label": label})
        if allowed is not None and member.name not in allowed:
            raise BackupError(_("Archive refusée : membre inattendu « %(name)s ».") % {"name": member.name})
    return members


def archive_read(archive: Path, workdir: Path) -> dict:
    """Check the archive and its media tar, then extract the members into ``workdir``; returns the manifest."""
    archive = Path(archive)
    if not archive.is_file():
        raise BackupError(_("Archive introuvable : %(path)s.") % {"path": archive})
    try:
        with tarfile.open(archive, "r:*") as tar:
            _check_members(tar, allowed=ALLOWED_MEMBERS, label=archive.name)
            names = set(tar.getnames())
            if MANIFEST not in names:
                raise BackupError(_("Archive refusée : pas de manifest.json."))
            manifest = json.load(tar.extractfile(MANIFEST))
            if manifest.get("format") != FORMAT:
                raise BackupError(_("Format d'archive inconnu : %(format)s.") % {"format": manifest.get("format")})
            for name in manifest["checksums"]:
                if name not in names:
                    raise BackupError(_("Archive incomplète : %(name)s manque.") % {"name": name})
                tar.extract(name, workdir, filter="data")
    except (tarfile.TarError, json.JSONDecodeError, KeyError) as exc:
        raise BackupError(_("Archive illisible : %(error)s") % {"error": exc}) from exc
    for name, expected in manifest["checksums"].items():
        if _sha256(workdir / name) != expected:
            raise BackupError(_("Archive corrompue : la somme de contrôle de %(name)s ne correspond pas.") % {
                "name": name})
    with tarfile.open(workdir / MEDIA_MEMBER) as media:
        _check_members(media, allowed=None, label=MEDIA_MEMBER)
    return manifest


def _restore_database(manifest: dict, workdir: Path, target: Target) -> None:
    if target.vendor == "postgresql":
        args, env = _pg_env(target.db)
        _run(["pg_restore", "--no-owner", "--no-privileges", "--clean", "--if-exists", "--exit-on-error",
              "--single-transaction", *args, "--dbname", target.db["NAME"], str(workdir / PG_MEMBER)], env)
        return
    source = sqlite3.connect(workdir / SQLITE_MEMBER)
    name = str(target.db["NAME"])
    django_conn = next((c for c in connections.all() if c.settings_dict.get("NAME") == target.db["NAME"]
                        and c.vendor == "sqlite"), None)
    try:
        if django_conn is not None:  # the running application's own database (or the in-memory test one)
            django_conn.ensure_connection()
            source.backup(django_conn.connection)
        else:
            dest = sqlite3.connect(name)
            try:
                source.backup(dest)
            finally:
                dest.close()
    finally:
        source.close()


def _restore_media(workdir: Path, media_root: Path) -> int:
    media_root.mkdir(parents=True, exist_ok=True)
    with tarfile.open(workdir / MEDIA_MEMBER) as media:
        members = _check_members(media, allowed=None, label=MEDIA_MEMBER)  # checked again: never trust a file
        for member in members:
            if member.isfile():
                dest = media_root / member.name
                dest.parent.mkdir(parents=True, exist_ok=True)
                with media.extractfile(member) as src, open(dest, "wb") as out:
                    shutil.copyfileobj(src, out)
        return sum(1 for m in members if m.isfile())


def target_default(using: str = "default", media_root: Path | None = None) -> Target:
    return Target(db=dict(connections[using].settings_dict), media_root=Path(media_root or settings.MEDIA_ROOT))


def backup_restore(*, archive: Path, target: Target, force: bool = False) -> dict:
    """Restore ``archive`` into ``target``. Refused (nothing changed) when the archive is unsafe or
    damaged, when its database vendor differs, or when the target already holds data (unless ``force``).

    Returns ``{"manifest", "tables": restored counts, "media_files"}``."""
    with tempfile.TemporaryDirectory(prefix="sejour-restore-") as tmp:
        workdir = Path(tmp)
        manifest = archive_read(Path(archive), workdir)
        if manifest["vendor"] != target.vendor:
            raise BackupError(_("Cette sauvegarde vient d'une base %(source)s ; la base cible est %(target)s.") % {
                "source": manifest["vendor"], "target": target.vendor})
        raw = _raw_connect(target.db)
        try:
            existing = data_tables(table_counts(raw.cursor(), target.vendor))
        finally:
            raw.close()
        if existing and not force:
            shown = ", ".join(f"{t} ({n})" for t, n in sorted(existing.items())[:8])
            raise BackupError(_("La base cible n'est pas vide (%(tables)s%(more)s) : restauration refusée. "
                                "Utilisez une base vide, ou --force pour la remplacer.") % {
                "tables": shown, "more": " …" if len(existing) > 8 else ""})
        for conn in connections.all():
            if conn.settings_dict.get("NAME") == target.db["NAME"] and conn.vendor == "postgresql":
                conn.close()  # pg_restore --clean drops tables this process may hold open
        _restore_database(manifest, workdir, target)
        media_files = _restore_media(workdir, target.media_root)
    raw = _raw_connect(target.db)
    try:
        restored = table_counts(raw.cursor(), target.vendor)
    finally:
        raw.close()
    differences = {t: (n, restored.get(t)) for t, n in manifest["tables"].items() if restored.get(t) != n}
    if differences:
        shown = ", ".join(f"{t} : {a} attendu(s), {b} trouvé(s)" for t, (a, b) in sorted(differences.items())[:8])
        raise BackupError(_("Restauration incomplète : %(diff)s.") % {"diff": shown})
    return {"manifest": manifest, "tables": restored, "media_files": media_files}


def manifest_summary(manifest: dict) -> str:
    rows = sum(manifest["tables"].values())
    return _("%(tables)s table(s), %(rows)s ligne(s), %(files)s fichier(s) de médias (%(size)s octets)") % {
        "tables": len(manifest["tables"]), "rows": rows, "files": manifest["media"]["files"],
        "size": manifest["media"]["bytes"]}

