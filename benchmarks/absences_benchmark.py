#!/usr/bin/env python
"""Absences import benchmark: a month of absences for N residents (target: 5 000 in under 10 s).

    .venv/bin/python benchmarks/absences_benchmark.py                     # N = 5000, SQLite
    .venv/bin/python benchmarks/absences_benchmark.py --residents 1000 5000
    .venv/bin/python benchmarks/absences_benchmark.py --database-url postgres://postgres@127.0.0.1:5432/sejour_bench
    .venv/bin/python benchmarks/absences_benchmark.py --all               # SQLite and PostgreSQL

Each run builds its own throw-away database (a temporary SQLite file, or the given PostgreSQL
database, dropped and re-created), seeds the demo configuration and N residents in TIL-HP (stay,
package, GIR); 10 % have a hand-entered absence from 29 to 31 October. The November file has one
line per resident: a third of them absent (hospitalisations continuing from October, which are
joined, short convenience absences, permissions), the rest present. It measures, with the SQL
query count: validation alone, the first import (validate + write in one transaction), and a
re-import of a corrected file (replacing the imported absences). Draft regeneration is measured
separately (it is the billing generation, run as a job from the browser).
"""
from __future__ import annotations

import argparse
import time

from _common import PG_BENCH_URL, bench_residents, report_row, run_children, throwaway_environment


def build_file(refs: list[str], *, variant: int) -> bytes:
    header = ";".join(["ANNEE", "MOIS", "IDPERSONNE", "SECTION"] + [str(d) for d in range(1, 32)])
    lines = [header]
    for i, ref in enumerate(refs):
        days = [" "] * 31
        if i % 10 == 0:  # continues the hand-entered October absence
            for d in range(1, 8 + variant):
                days[d - 1] = "2"
        elif i % 3 == 0:
            start = 3 + (i + variant) % 15
            for d in range(start, start + 4):
                days[d - 1] = "1"
            days[start + 8] = "3"
        days[30] = " "  # 31 November does not exist
        lines.append(";".join(["2026", "11", ref, "TIL-HP"] + days))
    return ("\r\n".join(lines) + "\r\n").encode("cp1252")


def run_one(n: int) -> dict:
    import django

    django.setup()
    from datetime import date

    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from billing.models import Package, StayPackage
    from billing.services.generation import period_generate
    from billing.services.periods import period_create
    from demo.services.seed import demo_seed
    from imports.services.absences_import import absences_import_apply, absences_import_validate
    from residents.models import Absence, AbsenceReason

    call_command("migrate", verbosity=0)
    demo = demo_seed(residents=0)
    section = demo["sections"]["TIL-HP"]
    org = demo["organisation"]
    residents, stays = bench_residents(organisation=org, section=section, count=n)
    package = Package.objects.get(section=section, code="STD")
    StayPackage.objects.bulk_create([StayPackage(stay=s, package=package, valid_from=s.entry_date) for s in stays],
                                    batch_size=1000)
    hospital = AbsenceReason.objects.get(establishment=section.establishment, code="H")
    Absence.objects.bulk_create([
        Absence(stay=s, reason=hospital, first_day=date(2026, 10, 29), last_day=date(2026, 10, 31))
        for i, s in enumerate(stays) if i % 10 == 0], batch_size=1000)
    refs = [r.external_ref for r in residents]
    first, corrected = build_file(refs, variant=0), build_file(refs, variant=1)
    connection.force_debug_cursor = True
    results = {"n": n, "db": connection.vendor, "bytes": len(first)}
    with CaptureQueriesContext(connection) as ctx:
        t0 = time.perf_counter()
        validation = absences_import_validate(section=section, year=2026, month=11, data=first, name="abs.csv")
        results["validate_s"] = time.perf_counter() - t0
    results["validate_queries"] = len(ctx.captured_queries)
    assert validation.ok, validation.report[:3]
    for key, data in (("import", first), ("reimport", corrected)):
        with CaptureQueriesContext(connection) as ctx:
            t0 = time.perf_counter()
            run = absences_import_apply(section=section, year=2026, month=11, data=data, name=f"{key}.csv",
                                        regenerate="none")
            results[f"{key}_s"] = time.perf_counter() - t0
        results[f"{key}_queries"] = len(ctx.captured_queries)
        results[f"{key}_summary"] = {k: run.summary[k] for k in ("lines", "absences", "absence_days", "created",
                                                                  "updated", "deleted", "joined")}
    period = period_create(section=section, start=date(2026, 11, 1))
    with CaptureQueriesContext(connection) as ctx:
        t0 = time.perf_counter()
        period_generate(period=period)
        results["generation_s"] = time.perf_counter() - t0
    results["generation_queries"] = len(ctx.captured_queries)
    return results


def child(n: int, database_url: str | None) -> None:
    throwaway_environment(database_url=database_url)
    report_row(run_one(n))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--residents", type=int, nargs="*", default=[5000])
    parser.add_argument("--database-url", help="PostgreSQL URL (a database the script may drop and re-create).")
    parser.add_argument("--all", action="store_true", help="SQLite and PostgreSQL (127.0.0.1, sejour_bench).")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.database_url)
        return
    urls = [None, PG_BENCH_URL] if args.all else [args.database_url]
    rows = run_children(__file__, args.residents, urls)
    print("| database | residents | absences | validate (s) | queries | import (s) | queries | re-import (s) | "
          "queries | drafts generation (s) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['db']} | {r['n']} | {r['import_summary']['absences']} | {r['validate_s']:.2f} | "
              f"{r['validate_queries']} | {r['import_s']:.2f} | {r['import_queries']} | {r['reimport_s']:.2f} | "
              f"{r['reimport_queries']} | {r['generation_s']:.2f} |")
    for r in rows:
        print(f"{r['db']} N={r['n']}: first import {r['import_summary']}, re-import {r['reimport_summary']}")
    target = [r for r in rows if r["n"] >= 5000]
    if target:
        worst = max(max(r["import_s"], r["reimport_s"]) for r in target)
        print(f"Target (5 000 residents < 10 s): {'met' if worst < 10 else 'NOT met'} — worst {worst:.2f} s.")


if __name__ == "__main__":
    main()
