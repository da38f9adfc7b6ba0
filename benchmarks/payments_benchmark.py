#!/usr/bin/env python
"""Payments benchmark: allocation of a payment import, aged balance, the *Compte* tab.

    .venv/bin/python benchmarks/payments_benchmark.py                       # N = 10000, SQLite
    .venv/bin/python benchmarks/payments_benchmark.py --residents 1000 10000
    .venv/bin/python benchmarks/payments_benchmark.py --database-url postgres://postgres@127.0.0.1:5432/sejour_bench
    .venv/bin/python benchmarks/payments_benchmark.py --all                 # SQLite and PostgreSQL

Each run builds its own throw-away database (PostgreSQL: ANALYZEd after the bulk set-up, as autovacuum
does on a live database), seeds the demo configuration, then N residents in
TIL-HP with 12 issued monthly invoices each (December 2025 – November 2026) and random payments
(seeded: 60 % paid, 20 % in part, 20 % unpaid; a few credits), plus one resident with 5 years of
history (60 invoices and 60 payments). Everything is bulk-created (the set-up is not what is
measured; the invoices' paid-amount cache equals their allocations). It then times:

- import:  ``payments_import_apply`` of a 1 000-line CSV (FACTURE of open invoices, some paying more
  than the balance so that the excess goes to the oldest due) — validation, recording, allocation;
- aged:    the *restes à recouvrer* of the association (``balances_rows_for_sections`` over all its
  sections + ``balances_summary``) on 2026-12-31, with its query count (checked equal to the sum of
  the per-section results);
- compte:  the *Compte* tab page (``billing:resident-account``, whole request) of the resident with
  5 years of history, with its query count.

Targets (issue 11): import < 5 s; aged balance of the association < 2 s on PostgreSQL with a
constant number of queries; Compte tab < 200 ms.

N must be at least 300: about 40 % of the 12 invoices of a resident stay open (4.8 each), so the
1 000 lines need some 210 residents; 300 leave a margin, and every row of the table times the same
1 000-line import. A smaller N is refused before anything is built.
"""
from __future__ import annotations

import argparse
import random
import time

from _common import QueryCount, bench_residents, report_row, run_children, throwaway_environment

PG_URL = "postgres://postgres@127.0.0.1:5432/sejour_bench_payments"
IMPORT_LINES = 1000
MIN_RESIDENTS = 300  # ≈ 4.8 open invoices per resident: 1 000 lines need ~210 residents, with a margin


def _months(first_year: int, first_month: int, count: int):
    from datetime import date

    y, m = first_year, first_month
    for _ in range(count):
        yield date(y, m, 1)
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)


def build(n: int) -> dict:
    from calendar import monthrange
    from datetime import date, timedelta
    from decimal import Decimal

    from billing.models import Invoice, Payment, PaymentAllocation
    from demo.services.seed import demo_seed

    rng = random.Random(11)
    demo = demo_seed(residents=0)
    section = demo["sections"]["TIL-HP"]
    establishment = section.establishment
    residents, _stays = bench_residents(organisation=demo["organisation"], section=section, count=n)
    # The resident with 5 years of history: 60 months from December 2021.
    long_resident = residents[0]
    plan = [(r, list(_months(2025, 12, 12))) for r in residents[1:]] + [(long_resident, list(_months(2021, 12, 60)))]
    counters: dict[int, int] = {}
    invoices, paid_plan = [], []
    for resident, months in plan:
        for start in months:
            end = start.replace(day=monthrange(start.year, start.month)[1])
            issue = end + timedelta(days=1)
            counters[issue.year] = counters.get(issue.year, 0) + 1
            total = Decimal(2000 + rng.randrange(0, 80000)) / 100
            roll = rng.random()
            paid = total if roll < 0.6 else (total * Decimal(rng.randrange(10, 90)) / 100).quantize(Decimal("0.01")) \
                if roll < 0.8 else Decimal("0.00")
            if resident is long_resident:
                paid = total
            invoices.append(Invoice(
                section=section, establishment=establishment, kind=Invoice.Kind.INVOICE, status=Invoice.Status.ISSUED,
                number=f"{establishment.code}-{issue.year}-{counters[issue.year]:06d}", debtor_kind="resident",
                resident=resident, date_from=start, date_to=end, issue_date=issue, due_date=issue + timedelta(days=15),
                total=total, paid_amount=paid, debtor_name=f"{resident.last_name} {resident.first_name}",
                resident_name=f"{resident.last_name} {resident.first_name}"))
            paid_plan.append(paid)
    Invoice.objects.bulk_create(invoices, batch_size=2000)
    payments, allocations = [], []
    for invoice, paid in zip(invoices, paid_plan):
        if paid <= 0:
            continue
        on = invoice.issue_date + timedelta(days=rng.randrange(0, 40))
        extra = Decimal("20.00") if rng.random() < 0.01 else Decimal("0.00")  # a few credits
        payments.append(Payment(section=section, debtor_kind="resident", resident_id=invoice.resident_id,
                                invoice=invoice, date=on, amount=paid + extra, mode=Payment.Mode.CHEQUE,
                                reference=f"CHQ{len(payments):07d}"))
        allocations.append((invoice, on, paid))
    Payment.objects.bulk_create(payments, batch_size=2000)
    PaymentAllocation.objects.bulk_create([
        PaymentAllocation(invoice=invoice, payment=payment, amount=paid, date=on)
        for payment, (invoice, on, paid) in zip(payments, allocations)], batch_size=2000)
    return {"section": section, "organisation": demo["organisation"], "invoices": len(invoices),
            "payments": len(payments), "long_resident": long_resident}


def import_file(section, lines: int) -> bytes:
    from billing.models import Invoice
    from billing.services.payments import unpaid_q

    rng = random.Random(7)
    open_invoices = list(Invoice.objects.filter(unpaid_q(), section=section).order_by("pk")
                         .values_list("number", "total", "paid_amount")[: lines * 3])
    if len(open_invoices) < lines:
        raise SystemExit(f"Only {len(open_invoices)} open invoices for a {lines}-line import: "
                         f"use --residents {MIN_RESIDENTS} or more.")
    rng.shuffle(open_invoices)
    rows = ["DATE;MONTANT;MODE;FACTURE;REFERENCE"]
    for i, (number, total, paid) in enumerate(open_invoices[:lines]):
        amount = total - paid + (10 if i % 10 == 0 else 0)  # one in ten pays more: the excess goes oldest due
        rows.append(f"15/12/2026;{str(amount).replace('.', ',')};VIREMENT;{number};VIR-BENCH-{i:05d}")
    return ("\n".join(rows) + "\n").encode()


def run_one(n: int) -> dict:
    import django

    django.setup()
    from datetime import date

    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    from billing.services.balances import balances_rows, balances_rows_for_sections, balances_summary
    from imports.services.payments_import import payments_import_apply
    from structures.models import Section

    call_command("migrate", verbosity=0)
    t0 = time.perf_counter()
    data = build(n)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    seed_time = time.perf_counter() - t0
    section = data["section"]
    csv = import_file(section, IMPORT_LINES)
    with QueryCount(connection) as ctx:
        t0, c0 = time.perf_counter(), time.process_time()
        run = payments_import_apply(section=section, data=csv, name="bench.csv")
        import_s, import_cpu = time.perf_counter() - t0, time.process_time() - c0
    import_queries = ctx.count
    assert run.summary["lines"] == IMPORT_LINES, run.summary
    sections = list(Section.objects.filter(establishment__organisation=data["organisation"]))
    with QueryCount(connection) as ctx:
        t0, c0 = time.perf_counter(), time.process_time()
        rows = balances_rows_for_sections(sections=sections, on=date(2026, 12, 31))
        summary = balances_summary(rows)
        aged_s, aged_cpu = time.perf_counter() - t0, time.process_time() - c0
    aged_queries, open_rows = ctx.count, len(rows)
    per_section = [balances_summary(balances_rows(section=s, on=date(2026, 12, 31))) for s in sections]
    assert summary["net"] == sum((p["net"] for p in per_section), summary["net"] * 0), "association ≠ sections"
    client = Client()
    client.force_login(get_user_model().objects.get(username="admin"))
    url = reverse("billing:resident-account", kwargs={"alias": section.alias, "pk": data["long_resident"].pk})
    assert client.get(url).status_code == 200  # warm-up (templates, session)
    with QueryCount(connection) as ctx:
        t0, c0 = time.perf_counter(), time.process_time()
        response = client.get(url)
        compte_s, compte_cpu = time.perf_counter() - t0, time.process_time() - c0
    assert response.status_code == 200
    compte_queries = ctx.count
    return {"n": n, "db": connection.vendor, "seed_s": seed_time, "invoices": data["invoices"],
            "payments": data["payments"], "import_s": import_s, "import_cpu": import_cpu, "aged_cpu": aged_cpu, "compte_cpu_ms": compte_cpu * 1000, "import_queries": import_queries,
            "aged_s": aged_s, "aged_queries": aged_queries, "aged_rows": open_rows, "sections": len(sections),
            "compte_ms": compte_s * 1000, "compte_queries": compte_queries}


def child(n: int, database_url: str | None) -> None:
    throwaway_environment(database_url=database_url)
    report_row(run_one(n))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--residents", type=int, nargs="*", default=[10000], metavar="N",
                        help=f"residents of TIL-HP, one run each (default 10000; at least {MIN_RESIDENTS}, "
                             f"for {IMPORT_LINES} open invoices to pay).")
    parser.add_argument("--database-url", help="PostgreSQL URL (a database the script may drop and re-create).")
    parser.add_argument("--all", action="store_true", help=f"SQLite and PostgreSQL ({PG_URL}).")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    too_small = [n for n in args.residents if n < MIN_RESIDENTS]
    if too_small:
        parser.error(f"--residents {', '.join(map(str, too_small))}: at least {MIN_RESIDENTS} residents are needed "
                     f"(about 4.8 open invoices each) for the {IMPORT_LINES}-line payments import.")
    if args.child:
        child(args.child, args.database_url)
        return
    urls = [None, PG_URL] if args.all else [args.database_url]
    rows = run_children(__file__, args.residents, urls)
    print("Times: wall clock (CPU of the Python process in brackets; PostgreSQL's own CPU is not in it).")
    print("| database | residents | invoices | payments | import 1 000 lines (s) | queries | aged balance, "
          "association (s) | queries | open rows | Compte tab, 5 years (ms) | queries |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['db']} | {r['n']} | {r['invoices']} | {r['payments']} | {r['import_s']:.2f} ({r['import_cpu']:.2f}) | "
              f"{r['import_queries']} | {r['aged_s']:.2f} ({r['aged_cpu']:.2f}) | {r['aged_queries']} | {r['aged_rows']} | "
              f"{r['compte_ms']:.0f} ({r['compte_cpu_ms']:.0f}) | {r['compte_queries']} |")


if __name__ == "__main__":
    main()
