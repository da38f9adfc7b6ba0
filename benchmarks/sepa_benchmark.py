#!/usr/bin/env python
"""SEPA benchmark: a debit batch of N invoices built, XSD-validated and stored; N return lines applied.

    .venv/bin/python benchmarks/sepa_benchmark.py                       # N = 10000, SQLite
    .venv/bin/python benchmarks/sepa_benchmark.py --debits 1000 10000
    .venv/bin/python benchmarks/sepa_benchmark.py --database-url postgres://postgres@127.0.0.1:5432/sejour_bench
    .venv/bin/python benchmarks/sepa_benchmark.py --all                 # SQLite and PostgreSQL
    .venv/bin/python benchmarks/sepa_benchmark.py --version pain.008.001.02

Each run builds its own throw-away database, seeds the demo configuration, then N residents in
TIL-HP, each with an active mandate (one in ten with a pending change of account: amendment) and an
issued direct-debit invoice of an issued period (bulk-created: the set-up is not what is measured).
It then times:

- batch:   ``debit_batch_create`` + ``debit_batch_generate`` (selection, lines, pain.008 built, validated
  against the XSD, stored) — target < 3 s for 10 000 debits;
- returns: the batch marked sent and its payments bulk-recorded (not measured), then
  ``returns_apply`` of a pain.002.001.10 rejecting every debit (AM04, one in ten MS02: mandate
  suspended) — target < 5 s for 10 000 lines.
"""
from __future__ import annotations

import argparse
import os
import time

from _common import QueryCount, bench_residents, report_row, run_children, throwaway_environment

PG_URL = "postgres://postgres@127.0.0.1:5432/sejour_bench_sepa"


def build(n: int, version: str) -> dict:
    from datetime import date
    from decimal import Decimal

    from billing.models import BillingPeriod, Invoice
    from demo.services.sepa_seed import demo_iban
    from demo.services.seed import demo_seed
    from residents.models import PaymentMode
    from sepa.models import Mandate, MandateAccount

    demo = demo_seed(residents=0)
    section = demo["sections"]["TIL-HP"]
    establishment = section.establishment
    establishment.sepa_version = version
    establishment.city, establishment.postal_code = establishment.city or "Lyon", establishment.postal_code or "69003"
    establishment.save()
    residents, _stays = bench_residents(organisation=demo["organisation"], section=section, count=n)
    period = BillingPeriod.objects.create(section=section, start=date(2026, 1, 1), end=date(2026, 1, 31),
                                          accounting_date=date(2026, 1, 31), label="01/2026")
    Invoice.objects.bulk_create([
        Invoice(section=section, establishment=establishment, period=period, kind=Invoice.Kind.INVOICE,
                status=Invoice.Status.ISSUED, payment_mode=PaymentMode.DIRECT_DEBIT,
                number=f"{establishment.code}-2026-{i + 1:06d}", debtor_kind="resident", resident=r,
                date_from=period.start, date_to=period.end, issue_date=date(2026, 1, 31),
                due_date=date(2026, 2, 15), total=Decimal(1500 + i % 900) + Decimal("0.37"),
                debtor_name=f"{r.last_name} {r.first_name}", resident_name=f"{r.last_name} {r.first_name}")
        for i, r in enumerate(residents)], batch_size=2000)
    mandates = Mandate.objects.bulk_create([
        Mandate(establishment=establishment, resident=r, rum=f"{establishment.code}-{r.pk}", iban=demo_iban(r.pk * 10),
                account_holder=f"{r.first_name} {r.last_name}", signature_date=date(2025, 1, 2),
                status=Mandate.Status.ACTIVE,
                next_sequence_type=Mandate.SequenceType.RCUR if i % 3 else Mandate.SequenceType.FRST,
                original_iban=demo_iban(r.pk * 10 + 1) if i % 10 == 0 else "")
        for i, r in enumerate(residents)], batch_size=2000)
    MandateAccount.objects.bulk_create([MandateAccount(mandate=m, iban=m.iban, account_holder=m.account_holder,
                                                       valid_from=date(2025, 1, 2)) for m in mandates], batch_size=2000)
    return {"section": section, "period": period}


def payments_bulk(batch) -> None:
    """The batch's payments as ``debit_batch_settle`` records them, bulk-created (set-up only)."""
    from billing.models import Invoice, Payment, PaymentAllocation
    from sepa.models import DebitBatch, DebitLine

    lines = list(batch.lines.select_related("invoice"))
    payments = Payment.objects.bulk_create([
        Payment(section=batch.section, debtor_kind=line.invoice.debtor_kind, resident_id=line.invoice.resident_id,
                relative_id=line.invoice.relative_id, invoice=line.invoice, date=batch.collection_date,
                amount=line.amount, mode=Payment.Mode.DIRECT_DEBIT, reference=line.end_to_end_id) for line in lines],
        batch_size=2000)
    PaymentAllocation.objects.bulk_create([PaymentAllocation(invoice=line.invoice, payment=p, amount=line.amount,
                                                             date=batch.collection_date)
                                           for line, p in zip(lines, payments)], batch_size=2000)
    for line, p in zip(lines, payments):
        line.payment = p
        line.invoice.paid_amount = line.amount
    DebitLine.objects.bulk_update(lines, ["payment"], batch_size=2000)
    Invoice.objects.bulk_update([line.invoice for line in lines], ["paid_amount"], batch_size=2000)
    DebitBatch.objects.filter(pk=batch.pk).update(status=DebitBatch.Status.SETTLED)


def pain002(end_to_end_ids: list[str]) -> bytes:
    txs = "".join(f"<TxInfAndSts><OrgnlEndToEndId>{e2e}</OrgnlEndToEndId><TxSts>RJCT</TxSts>"
                  f"<StsRsnInf><Rsn><Cd>{'MS02' if i % 10 == 0 else 'AM04'}</Cd></Rsn></StsRsnInf></TxInfAndSts>"
                  for i, e2e in enumerate(end_to_end_ids))
    return ('<?xml version="1.0" encoding="UTF-8"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.10">'
            f"<CstmrPmtStsRpt><OrgnlPmtInfAndSts>{txs}</OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>").encode()


def run_one(n: int, version: str) -> dict:
    import django

    django.setup()
    from datetime import date, timedelta

    from django.core.management import call_command
    from django.db import connection

    from billing.models import Invoice
    from sepa.models import DebitLine
    from sepa.services.debits import debit_batch_create, debit_batch_generate, debit_batch_mark_sent, target_business_day
    from sepa.services.returns import returns_apply

    call_command("migrate", verbosity=0)
    t0 = time.perf_counter()
    data = build(n, version)
    seed_s = time.perf_counter() - t0
    today = date(2026, 2, 1)
    collection = today + timedelta(days=20)
    while not target_business_day(collection):
        collection += timedelta(days=1)
    with QueryCount(connection) as ctx:
        t0, c0 = time.perf_counter(), time.process_time()
        batch = debit_batch_create(period=data["period"], collection_date=collection, today=today)
        batch = debit_batch_generate(batch=batch)
        batch_s, batch_cpu = time.perf_counter() - t0, time.process_time() - c0
    batch_queries = ctx.count
    assert batch.lines.count() == n and len(batch.xml) > 400 * n, (batch.lines.count(), len(batch.xml))
    debit_batch_mark_sent(batch=batch)
    payments_bulk(batch)
    content = pain002(list(DebitLine.objects.filter(batch=batch).values_list("end_to_end_id", flat=True)))
    with QueryCount(connection) as ctx:
        t0, c0 = time.perf_counter(), time.process_time()
        report = returns_apply(content=content, on=collection + timedelta(days=3))
        returns_s, returns_cpu = time.perf_counter() - t0, time.process_time() - c0
    returns_queries = ctx.count
    assert len(report.applied) == n, (len(report.applied), len(report.unmatched), len(report.already))
    assert not Invoice.objects.filter(period=data["period"], paid_amount__gt=0).exists()
    return {"n": n, "db": connection.vendor, "version": version, "seed_s": seed_s, "xml_mb": len(batch.xml) / 1e6,
            "batch_s": batch_s, "batch_cpu": batch_cpu, "batch_queries": batch_queries,
            "returns_s": returns_s, "returns_cpu": returns_cpu, "returns_queries": returns_queries}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debits", type=int, nargs="*", default=[10000])
    parser.add_argument("--version", default="pain.008.001.08", choices=["pain.008.001.08", "pain.008.001.02"])
    parser.add_argument("--database-url", help="PostgreSQL URL (a database the script may drop and re-create).")
    parser.add_argument("--all", action="store_true", help=f"SQLite and PostgreSQL ({PG_URL}).")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        throwaway_environment(database_url=args.database_url)
        report_row(run_one(args.child, os.environ.get("SEPA_BENCH_VERSION", args.version)))
        return
    os.environ["SEPA_BENCH_VERSION"] = args.version  # the children inherit it
    urls = [None, PG_URL] if args.all else [args.database_url]
    rows = run_children(__file__, args.debits, urls)
    print("Times: wall clock (CPU of the Python process in brackets; the database's own CPU is not in it).")
    print("| database | version | debits | batch built, validated, stored (s) | queries | XML (MB) | "
          "returns applied (s) | queries |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['db']} | {r['version']} | {r['n']} | {r['batch_s']:.2f} ({r['batch_cpu']:.2f}) | "
              f"{r['batch_queries']} | {r['xml_mb']:.1f} | {r['returns_s']:.2f} ({r['returns_cpu']:.2f}) | "
              f"{r['returns_queries']} |")


if __name__ == "__main__":
    main()
