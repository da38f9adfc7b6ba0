"""Reminder proposal over many invoices (target: 100 000 invoices < 2 s on PostgreSQL, with a
constant number of queries).

    .venv/bin/python benchmarks/reminders_benchmark.py --invoices 1000 100000 [--all | --database-url URL]

Builds its own data in a throw-away database: the demo association, ``N / 10`` residents in TIL-HP
with ten issued invoices each (monthly, March to December 2025, due 15 days after issue; the rows
are bulk-created, the set-up is not what is measured), a third of the invoices paid in full, and a
history of sent reminders (level 1 for a third of the unpaid, levels 1 and 2 for another third).
Timed: ``proposal_rows`` on 2026-02-10 (limit date 2026-02-01), with its queries counted.
"""
from __future__ import annotations

import argparse
import sys
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from _common import PG_BENCH_URL, bench_residents, report_row, run_children, throwaway_environment

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def run_one(n: int) -> dict:
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from billing.models import Invoice, Payment, PaymentAllocation
    from demo.services.seed import demo_seed
    from reminders.models import Reminder, ReminderRun
    from reminders.services.proposal import proposal_rows

    call_command("migrate", verbosity=0)
    demo = demo_seed(residents=0)
    section = demo["sections"]["TIL-HP"]
    establishment = section.establishment
    residents, _stays = bench_residents(organisation=demo["organisation"], section=section, count=max(n // 10, 1))
    invoices = []
    for i in range(n):
        resident = residents[i // 10]
        month = 3 + i % 10
        issued = date(2025, month, 5)
        invoices.append(Invoice(
            section=section, establishment=establishment, kind=Invoice.Kind.INVOICE, status=Invoice.Status.ISSUED,
            number=f"BENCH-{i:07d}", debtor_kind=Invoice.DebtorKind.RESIDENT, resident=resident,
            debtor_name=resident.last_name, date_from=issued.replace(day=1), date_to=issued, issue_date=issued,
            due_date=issued + timedelta(days=15), total=Decimal("1850.00"),
            paid_amount=Decimal("1850.00") if i % 3 == 0 else Decimal("0.00")))
    invoices = Invoice.objects.bulk_create(invoices, batch_size=2000)
    paid = [inv for k, inv in enumerate(invoices) if k % 3 == 0]
    payments = Payment.objects.bulk_create([
        Payment(section=section, debtor_kind=inv.debtor_kind, resident_id=inv.resident_id, date=inv.due_date,
                amount=inv.total, mode="transfer") for inv in paid], batch_size=2000)
    PaymentAllocation.objects.bulk_create([
        PaymentAllocation(invoice=inv, payment=p, amount=inv.total, date=p.date) for inv, p in zip(paid, payments)],
        batch_size=2000)
    run = ReminderRun.objects.create(section=section, limit_date=date(2025, 12, 1), print_date=date(2025, 12, 1),
                                     status=ReminderRun.Status.VALIDATED)
    history = []
    for k, inv in enumerate(invoices):
        if k % 3 == 1:
            history.append(Reminder(run=run, invoice=inv, level=1, amount=inv.total, balance=inv.total, days_late=30,
                                    status=Reminder.Status.SENT, print_date=date(2025, 12, 1)))
        elif k % 3 == 2 and k % 2 == 0:
            for level, day in ((1, date(2025, 11, 1)), (2, date(2025, 12, 1))):
                history.append(Reminder(run=run, invoice=inv, level=level, amount=inv.total, balance=inv.total,
                                        days_late=30, status=Reminder.Status.SENT, print_date=day))
    Reminder.objects.bulk_create(history, batch_size=2000)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # fresh statistics, as a live database has
    connection.force_debug_cursor = True
    import os
    if os.environ.get("BENCH_PROFILE"):
        import cProfile
        import pstats
        prof = cProfile.Profile()
        prof.enable()
        proposal_rows(section=section, limit_date=date(2026, 2, 1), print_date=date(2026, 2, 10))
        prof.disable()
        pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
    with CaptureQueriesContext(connection) as ctx:
        t0, c0 = time.perf_counter(), time.process_time()
        rows = proposal_rows(section=section, limit_date=date(2026, 2, 1), print_date=date(2026, 2, 10))
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    levels = {level: sum(1 for r in rows if r.level == level) for level in (1, 2, 3)}
    return {"n": n, "db": connection.vendor, "seconds": elapsed, "cpu": cpu, "queries": len(ctx.captured_queries),
            "rows": len(rows), "levels": levels,
            "slowest": sorted(((float(q["time"]), q["sql"][:150]) for q in ctx.captured_queries), reverse=True)[:4]}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invoices", type=int, nargs="*", default=[1000, 100000])
    parser.add_argument("--database-url", help="PostgreSQL URL (a database the script may drop and re-create).")
    parser.add_argument("--all", action="store_true", help="SQLite and PostgreSQL (127.0.0.1, sejour_bench).")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        throwaway_environment(database_url=args.database_url)
        report_row(run_one(args.child))
        return
    urls = [None, PG_BENCH_URL] if args.all else [args.database_url]
    rows = run_children(__file__, args.invoices, urls)
    print("| database | invoices | proposal wall (s) | Python CPU (s) | queries | lines | levels 1 / 2 / 3 |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        print(f"| {r['db']} | {r['n']} | {r['seconds']:.2f} | {r.get('cpu', 0):.2f} | {r['queries']} | {r['rows']} | "
              f"{r['levels'][1]} / {r['levels'][2]} / {r['levels'][3]} |")
    for r in rows:
        print(r["db"], r["n"], "slowest queries:", r["slowest"])


if __name__ == "__main__":
    main()
