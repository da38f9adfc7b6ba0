#!/usr/bin/env python
"""Billing benchmark: generation and issue time, and SQL query count, for N residents.

    .venv/bin/python benchmarks/billing_benchmark.py                      # N = 1000 and 10000, SQLite
    .venv/bin/python benchmarks/billing_benchmark.py --database-url postgres://postgres@127.0.0.1:5432/sejour_bench
    .venv/bin/python benchmarks/billing_benchmark.py --all                # both databases, both sizes

Each run builds its own throw-away database (a temporary SQLite file, or the given PostgreSQL
database, dropped and re-created), seeds the demo configuration, then N residents in TIL-HP with
demo tariffs, ~10 % absences crossing October/November, GIR mix, APA rules (own département and
another one), and a mid-month tariff change. It prints one table row per run.
"""
from __future__ import annotations

import argparse
import time

from _common import PG_BENCH_URL, bench_residents, report_row, run_children, throwaway_environment


def run_one(n: int, profile: str = "") -> dict:
    import django

    django.setup()
    from datetime import date
    from decimal import Decimal

    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from billing.models import Package, StayPackage, Tariff
    from billing.services.generation import period_generate
    from billing.services.issuing import period_issue
    from billing.services.periods import period_create
    from demo.services.seed import demo_seed
    from payers.models import CoverageRule, PayerGroup
    from residents.models import Absence, AbsenceReason

    call_command("migrate", verbosity=0)
    demo = demo_seed(residents=0)
    section = demo["sections"]["TIL-HP"]
    org = demo["organisation"]
    t0 = time.perf_counter()
    _residents, stays = bench_residents(organisation=org, section=section, count=n)
    packages = list(Package.objects.filter(section=section, code__in=["STD", "STD-TV", "STD-TVL"]))
    StayPackage.objects.bulk_create([StayPackage(stay=s, package=packages[i % 3], valid_from=s.entry_date)
                                     for i, s in enumerate(stays)], batch_size=1000)
    hospital = AbsenceReason.objects.get(establishment=section.establishment, code="H")
    convenience = AbsenceReason.objects.get(establishment=section.establishment, code="C")
    Absence.objects.bulk_create([
        Absence(stay=s, reason=hospital if i % 20 == 0 else convenience, first_day=date(2026, 10, 27),
                last_day=date(2026, 11, 8)) for i, s in enumerate(stays) if i % 10 == 0], batch_size=1000)
    apa_own = PayerGroup.objects.get(payer__code="CD69", code="APA")
    apa_other = PayerGroup.objects.get(payer__code="CD01", code="APA")
    CoverageRule.objects.bulk_create([
        CoverageRule(stay=s, payer=(apa_other if i % 9 == 0 else apa_own).payer,
                     group=apa_other if i % 9 == 0 else apa_own, scope="dependency", mode="above_talon",
                     valid_from=s.entry_date) for i, s in enumerate(stays) if 1 + i % 6 <= 4], batch_size=1000)
    heb = section.establishment.products.get(code="HEB")
    Tariff.objects.get_or_create(product=heb, valid_from=date(2026, 11, 16), defaults={"price": Decimal("71.10")})
    seed_time = time.perf_counter() - t0
    period = period_create(section=section, start=date(2026, 11, 1))
    connection.force_debug_cursor = True
    if profile:
        # cProfile of the generation alone (no query capture), top functions by own time to stderr.
        import cProfile
        import pstats
        import sys

        connection.force_debug_cursor = False
        profiler = cProfile.Profile()
        t0 = time.perf_counter()
        profiler.runcall(period_generate, period=period)
        print(f"profiled generation: {time.perf_counter() - t0:.2f} s", file=sys.stderr)
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats(profile).print_stats(30)
        connection.force_debug_cursor = True
    with CaptureQueriesContext(connection) as ctx:
        t0, c0 = time.perf_counter(), time.process_time()
        result = period_generate(period=period)
        generation = time.perf_counter() - t0
        generation_cpu = time.process_time() - c0  # this process only: steadier than wall time on a busy machine
    generation_queries = len(ctx.captured_queries)
    with CaptureQueriesContext(connection) as ctx:
        t0 = time.perf_counter()
        issued = period_issue(period=period, issue_date=date(2026, 12, 1))
        issue = time.perf_counter() - t0
    issue_queries = len(ctx.captured_queries)
    return {"n": n, "db": connection.vendor, "seed_s": seed_time, "generation_s": generation,
            "generation_cpu_s": generation_cpu,
            "generation_queries": generation_queries, "issue_s": issue, "issue_queries": issue_queries,
            "invoices": result["drafts"], "lines": result["lines"], "issued": len(issued)}


def child(n: int, database_url: str | None, profile: str = "") -> None:
    throwaway_environment(database_url=database_url)
    report_row(run_one(n, profile))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--residents", type=int, nargs="*", default=[1000, 10000])
    parser.add_argument("--database-url", help="PostgreSQL URL (a database the script may drop and re-create).")
    parser.add_argument("--all", action="store_true", help="SQLite and PostgreSQL (127.0.0.1, sejour_bench).")
    parser.add_argument("--profile", nargs="?", const="tottime", default="",
                        help="Run the generation once under cProfile first and print the top 30 functions "
                             "(sorted by tottime, or the given pstats key) to stderr; N from --residents, one size.")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.database_url, args.profile)
        return
    if args.profile:
        child(args.residents[0], args.database_url, args.profile)
        return
    urls = [None, PG_BENCH_URL] if args.all else [args.database_url]
    rows = run_children(__file__, args.residents, urls)
    print("| database | residents | invoices | lines | generation (s) | generation CPU (s) | generation queries "
          "| issue (s) | issue queries |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['db']} | {r['n']} | {r['invoices']} | {r['lines']} | {r['generation_s']:.2f} | "
              f"{r['generation_cpu_s']:.2f} | {r['generation_queries']} | {r['issue_s']:.2f} | {r['issue_queries']} |")


if __name__ == "__main__":
    main()
