"""Plumbing shared by the benchmark scripts: a throw-away database per run, one child process per
measured size (fresh interpreter, fresh memory), and the demo residents bulk-created for a run."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_BENCH_URL = "postgres://postgres@127.0.0.1:5432/sejour_bench"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def throwaway_environment(*, database_url: str | None = None, prefix: str = "sejour-bench-") -> Path:
    """Point Django at a new temporary folder and database (PostgreSQL: dropped and re-created).
    Call before ``django.setup()``; returns the temporary folder."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ["SEJOUR_VAR_DIR"] = str(tmp)
    os.environ["MEDIA_ROOT"] = str(tmp / "media")
    os.environ["DATABASE_URL"] = database_url or f"sqlite:///{tmp / 'bench.sqlite3'}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")  # throw-away secrets
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    if database_url and database_url.startswith("postgres"):
        import psycopg

        base, name = database_url.rsplit("/", 1)
        with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
    return tmp


def report_row(row: dict) -> None:
    """What a child prints for its parent."""
    print("ROW " + repr(row), flush=True)


def run_children(script: str, sizes: list[int], urls: list[str | None]) -> list[dict]:
    """Run ``script --child N [--database-url URL]`` for every size and database; collect the rows."""
    rows = []
    for url in urls:
        for n in sizes:
            cmd = [sys.executable, script, "--child", str(n)] + (["--database-url", url] if url else [])
            out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
            line = [ln for ln in out.stdout.splitlines() if ln.startswith("ROW ")]
            if out.returncode or not line:
                print(out.stdout[-2000:], out.stderr[-4000:], file=sys.stderr)
                sys.exit(f"benchmark failed for N={n} on {url or 'sqlite'}")
            rows.append(ast.literal_eval(line[-1][4:]))
    return rows


def bench_residents(*, organisation, section, count: int):
    """``count`` residents with a stay in ``section`` (entries spread over 2025-2026) and a GIR mix;
    returns (residents, stays). Bulk-created: the set-up is not what is measured."""
    from datetime import date, timedelta

    from residents.models import GirAssessment, Resident, Stay

    residents = Resident.objects.bulk_create([
        Resident(organisation=organisation, last_name=f"Bench{i:05d}", first_name="Anne",
                 birth_date=date(1938, 1, 1), external_ref=f"BENCH-{i:05d}") for i in range(count)], batch_size=1000)
    stays = Stay.objects.bulk_create([
        Stay(resident=r, section=section, entry_date=date(2025, 6, 1) + timedelta(days=i % 400))
        for i, r in enumerate(residents)], batch_size=1000)
    GirAssessment.objects.bulk_create([GirAssessment(resident=r, gir=1 + i % 6, valid_from=date(2025, 1, 1))
                                       for i, r in enumerate(residents)], batch_size=1000)
    return residents, stays


class QueryCount:
    """Counts the SQL statements run inside the block (Django's own query log stops at 9 000)."""

    def __init__(self, connection):
        self.connection, self.count = connection, 0

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        return execute(sql, params, many, context)

    def __enter__(self):
        self._cm = self.connection.execute_wrapper(self)
        self._cm.__enter__()
        return self

    def __exit__(self, *exc):
        return self._cm.__exit__(*exc)
