"""manage.py backup / restore: the database (PostgreSQL pg_dump custom format, or the SQLite backup API)
and the media files in one archive with a manifest; restore into an EMPTY database finds every invoice,
PDF file and outbox row again. Runs on SQLite and, in CI's second pass, on PostgreSQL (restored into a
scratch database)."""
import io
import json
import tarfile
import uuid
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from core.services import backup
from core.services.backup import BackupError, Target

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def billed(db):
    """Demo residents, TIL-HP November issued, a few PDFs stored, outbox rows."""
    from billing.models import Invoice
    from billing.services import pdf as pdf_services
    from demo.services.seed import demo_seed
    from mailing.models import OutgoingMessage

    data = demo_seed(residents=8)
    call_command("generate_period", "--section", "TIL-HP", "--month", "2026-11", "--issue", stdout=StringIO())
    ids = list(Invoice.objects.filter(status="issued").order_by("number").values_list("pk", flat=True)[:3])
    pdf_services.invoices_render_pdfs(ids)
    for n, status in enumerate(["sent", "failed"]):
        OutgoingMessage.objects.create(organisation=data["organisation"], section=data["sections"]["TIL-HP"],
                                       sender_email="f@t.fr", recipients=["x@y.fr"], subject=f"Facture {n}",
                                       body="…", message_id=f"<{n}.{uuid.uuid4().hex}@sejour>", status=status)
    return data


@pytest.fixture
def scratch_target(tmp_path):
    """An empty database of the same vendor as the test database, and an empty media folder."""
    db = dict(connection.settings_dict)
    media = tmp_path / "restored-media"
    if connection.vendor == "sqlite":
        yield Target(db={"ENGINE": db["ENGINE"], "NAME": str(tmp_path / "restored.sqlite3")}, media_root=media)
        return
    import psycopg

    name = f"{db['NAME']}_restore"[:63]
    admin = psycopg.connect(dbname="postgres", host=db.get("HOST") or None, port=db.get("PORT") or None,
                            user=db.get("USER") or None, password=db.get("PASSWORD") or None, autocommit=True)
    admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield Target(db={**db, "NAME": name}, media_root=media)
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def _rows(target: Target, sql: str) -> list[tuple]:
    raw = backup._raw_connect(target.db)
    try:
        cursor = raw.cursor()
        cursor.execute(sql)
        return [tuple(row) for row in cursor.fetchall()]
    finally:
        raw.close()


def test_backup_then_restore_into_an_empty_database(billed, scratch_target, tmp_path):
    from billing.models import Invoice
    from mailing.models import OutgoingMessage

    out = StringIO()
    call_command("backup", "--output", str(tmp_path / "out"), stdout=out)
    archives = list((tmp_path / "out").glob("sejour-backup-*.tar"))
    assert len(archives) == 1 and f"Sauvegarde écrite : {archives[0]}" in out.getvalue()
    with tarfile.open(archives[0]) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        assert sorted(tar.getnames()) == sorted(["manifest.json", manifest["database"], "media.tar"])
    assert manifest["vendor"] == connection.vendor
    assert manifest["tables"]["billing_invoice"] == Invoice.objects.count() > 0
    assert manifest["tables"]["mailing_outgoingmessage"] == 2
    assert manifest["media"]["files"] == 3

    result = backup.backup_restore(archive=archives[0], target=scratch_target)
    assert result["media_files"] == 3
    expected = sorted((i.number, str(i.total), i.status, i.pdf.name) for i in Invoice.objects.all())
    # SQLite hands decimals back as numbers: compare them at 2 places.
    restored = sorted((n, str(Decimal(str(t)).quantize(Decimal("0.01"))), s, p) for n, t, s, p in _rows(
        scratch_target, "SELECT number, total, status, pdf FROM billing_invoice"))
    assert restored == expected
    assert sorted(_rows(scratch_target, "SELECT message_id, status FROM mailing_outgoingmessage")) == sorted(
        OutgoingMessage.objects.values_list("message_id", "status"))
    pdfs = [i.pdf.name for i in Invoice.objects.exclude(pdf="")]
    assert len(pdfs) == 3
    for name in pdfs:
        restored_file = scratch_target.media_root / name
        assert restored_file.read_bytes() == (Path(settings.MEDIA_ROOT) / name).read_bytes()
        assert restored_file.read_bytes().startswith(b"%PDF")
    # Restoring again over the now non-empty database is refused, unless forced.
    with pytest.raises(BackupError, match="n'est pas vide"):
        backup.backup_restore(archive=archives[0], target=scratch_target)
    backup.backup_restore(archive=archives[0], target=scratch_target, force=True)
    assert len(_rows(scratch_target, "SELECT id FROM billing_invoice")) == len(expected)


def test_restore_command_refuses_a_database_that_holds_data(billed, tmp_path):
    archive, _ = backup.backup_create(output_dir=tmp_path)
    with pytest.raises(CommandError, match="La base cible n'est pas vide .*billing_invoice"):
        call_command("restore", str(archive))


def _archive_with(tmp_path, members: dict[str, bytes], *, manifest: dict | None = None) -> Path:
    path = tmp_path / "bad.tar"
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_restore_refuses_unsafe_member_names_before_extracting(db, tmp_path, scratch_target):
    for name in ["../evil.txt", "/tmp/evil.txt", "manifest.json/../../evil.txt"]:
        archive = _archive_with(tmp_path, {"manifest.json": b"{}", name: b"x"})
        with pytest.raises(BackupError, match="sort du dossier de restauration"):
            backup.backup_restore(archive=archive, target=scratch_target)
    assert not (tmp_path.parent / "evil.txt").exists() and not Path("/tmp/evil.txt").exists()
    assert not scratch_target.media_root.exists()


def test_restore_refuses_unsafe_media_and_a_damaged_archive(billed, tmp_path, scratch_target):
    archive, manifest = backup.backup_create(output_dir=tmp_path / "out")
    work = tmp_path / "work"
    work.mkdir()
    with tarfile.open(archive) as tar:
        tar.extractall(work, filter="data")
    # A media.tar with a path escaping MEDIA_ROOT (checksum updated so that only the path is wrong).
    evil_media = io.BytesIO()
    with tarfile.open(fileobj=evil_media, mode="w") as media:
        info = tarfile.TarInfo("../../outside.pdf")
        info.size = 4
        media.addfile(info, io.BytesIO(b"%PDF"))
    (work / "media.tar").write_bytes(evil_media.getvalue())
    manifest["checksums"]["media.tar"] = backup._sha256(work / "media.tar")
    (work / "manifest.json").write_text(json.dumps(manifest))
    bad = tmp_path / "evil-media.tar"
    with tarfile.open(bad, "w") as tar:
        for name in ("manifest.json", manifest["database"], "media.tar"):
            tar.add(work / name, arcname=name)
    with pytest.raises(BackupError, match="« ../../outside.pdf » de media.tar sort du dossier"):
        backup.backup_restore(archive=bad, target=scratch_target)
    # A damaged database member: the checksum no longer matches.
    (work / manifest["database"]).write_bytes(b"garbage")
    manifest["checksums"]["media.tar"] = backup._sha256(tmp_path / "work" / "media.tar")
    damaged = tmp_path / "damaged.tar"
    with tarfile.open(damaged, "w") as tar:
        for name in ("manifest.json", manifest["database"], "media.tar"):
            tar.add(work / name, arcname=name)
    with pytest.raises(BackupError, match="somme de contrôle"):
        backup.backup_restore(archive=damaged, target=scratch_target)
    assert not scratch_target.media_root.exists()
    assert not (tmp_path / "outside.pdf").exists()
