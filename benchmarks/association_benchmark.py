#!/usr/bin/env python
"""Association benchmark: S sections × R residents generated as one group job (« Générer tout »:
one ``billing.section_month`` job per section) by real Celery workers with 1 and 2 processes.

    .venv/bin/python benchmarks/association_benchmark.py                     # 100 × 100, PostgreSQL
    .venv/bin/python benchmarks/association_benchmark.py --sections 20 --residents 50 --workers 2
    .venv/bin/python benchmarks/association_benchmark.py --broker-url redis://127.0.0.1:6379/6

The data: the demo configuration, then S sections of Les Tilleuls (the TIL-HP packages, the TIL calendar),
each with R residents as in billing_benchmark.py (10 % absences crossing months, GIR mix, APA rules, a
mid-month tariff change). For each worker count a ``celery worker --concurrency W`` is started on a fresh
broker and the group job is enqueued; the time measured is from the first section started to the last
one finished (worker start-up excluded). The 4-worker figure is projected from the measured per-section
time: ``sum of section times ÷ 4`` (it assumes 4 cores and a database that keeps up).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from _common import PG_BENCH_URL, ROOT, report_row, throwaway_environment


def seed(n_sections: int, n_residents: int):
    from datetime import date, timedelta
    from decimal import Decimal

    from billing.models import Calendar, Package, PackageItem, StayPackage, Tariff
    from demo.services.seed import demo_seed
    from payers.models import CoverageRule, PayerGroup
    from residents.models import Absence, AbsenceReason, GirAssessment, Resident, Stay
    from structures.models import Section

    demo = demo_seed(residents=0)
    template = demo["sections"]["TIL-HP"]
    establishment, org = template.establishment, demo["organisation"]
    Section.objects.filter(alias__in=list(demo["sections"])).update(is_active=False)
    sections = Section.objects.bulk_create([
        Section(establishment=establishment, alias=f"BEN-{i:03d}", name=f"Bench {i:03d}", kind="permanent")
        for i in range(n_sections)])
    Calendar.objects.get(code="CAL-TIL").sections.add(*sections)
    template_packages = list(Package.objects.filter(section=template, code__in=["STD", "STD-TV", "STD-TVL"])
                             .prefetch_related("items"))
    packages = {}
    for section in sections:
        for tp in template_packages:
            package = Package.objects.create(section=section, code=tp.code, label=tp.label,
                                              dependency_by_gir=tp.dependency_by_gir)
            PackageItem.objects.bulk_create([PackageItem(package=package, product_id=it.product_id)
                                             for it in tp.items.all()])
            packages.setdefault(section.pk, []).append(package)
    total = n_sections * n_residents
    residents = Resident.objects.bulk_create([
        Resident(organisation=org, last_name=f"Bench{i:06d}", first_name="Anne", birth_date=date(1938, 1, 1),
                 external_ref=f"BENCH-{i:06d}") for i in range(total)], batch_size=2000)
    stays = Stay.objects.bulk_create([
        Stay(resident=r, section=sections[i // n_residents], entry_date=date(2025, 6, 1) + timedelta(days=i % 400))
        for i, r in enumerate(residents)], batch_size=2000)
    GirAssessment.objects.bulk_create([GirAssessment(resident=r, gir=1 + i % 6, valid_from=date(2025, 1, 1))
                                       for i, r in enumerate(residents)], batch_size=2000)
    StayPackage.objects.bulk_create([StayPackage(stay=s, package=packages[s.section_id][i % 3], valid_from=s.entry_date)
                                     for i, s in enumerate(stays)], batch_size=2000)
    hospital = AbsenceReason.objects.get(establishment=establishment, code="H")
    convenience = AbsenceReason.objects.get(establishment=establishment, code="C")
    Absence.objects.bulk_create([
        Absence(stay=s, reason=hospital if i % 20 == 0 else convenience, first_day=date(2026, 10, 27),
                last_day=date(2026, 11, 8)) for i, s in enumerate(stays) if i % 10 == 0], batch_size=2000)
    apa_own = PayerGroup.objects.get(payer__code="CD69", code="APA")
    apa_other = PayerGroup.objects.get(payer__code="CD01", code="APA")
    CoverageRule.objects.bulk_create([
        CoverageRule(stay=s, payer=(apa_other if i % 9 == 0 else apa_own).payer,
                     group=apa_other if i % 9 == 0 else apa_own, scope="dependency", mode="above_talon",
                     valid_from=s.entry_date) for i, s in enumerate(stays) if 1 + i % 6 <= 4], batch_size=2000)
    heb = establishment.products.get(code="HEB")
    Tariff.objects.get_or_create(product=heb, valid_from=date(2026, 11, 16), defaults={"price": Decimal("71.10")})
    return sections


def run_group(sections, workers: int, timeout: float) -> dict:
    from django.db import connection
    from django.db.models import Max, Min, Sum

    from billing.models import Invoice
    from billing.services import batch
    from core.models import Job

    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", "worker", "--concurrency", str(workers), "--pool", "prefork",
         "--without-mingle", "--without-gossip", "--loglevel", "WARNING", "--hostname", f"bench{workers}@%h"],
        cwd=ROOT, env={**os.environ}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        t0 = time.perf_counter()
        parent = batch.sections_month_start(sections=sections, year=2026, month=11, action=batch.GENERATE)
        connection.close()  # on_commit ran at once (autocommit); the children are now on the broker
        while True:
            remaining = Job.objects.filter(parent=parent).exclude(status__in=["succeeded", "failed"]).count()
            if not remaining:
                break
            if time.perf_counter() - t0 > timeout or worker.poll() is not None:
                raise SystemExit(f"group not finished: {remaining} left; worker: {worker.poll()}")
            time.sleep(0.1)
    finally:
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
    children = Job.objects.filter(parent=parent)
    failed = list(children.filter(status="failed").values_list("section__alias", "error")[:3])
    if failed:
        raise SystemExit(f"failed sections: {failed}")
    span = children.aggregate(first=Min("started_at"), last=Max("finished_at"))
    durations = [(j.finished_at - j.started_at).total_seconds() for j in children]
    invoices = Invoice.objects.filter(section__in=sections, status="draft")
    return {"workers": workers, "sections": len(durations), "wall_s": (span["last"] - span["first"]).total_seconds(),
            "sum_s": sum(durations), "mean_s": sum(durations) / len(durations),
            "invoices": invoices.count(), "total": str(invoices.aggregate(t=Sum("total"))["t"])}


def child(args) -> None:
    throwaway_environment(database_url=args.database_url)
    if args.broker_url:
        os.environ["CELERY_BROKER_URL"] = args.broker_url
    import django

    django.setup()
    from django.core.management import call_command

    from config.celery import app

    if not app.conf.broker_url.startswith("filesystem"):
        app.control.purge()  # a Redis database of our own: nothing left from an interrupted run

    call_command("migrate", verbosity=0)
    t0 = time.perf_counter()
    sections = seed(args.sections, args.residents)
    print(f"seeded {args.sections} × {args.residents} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    for workers in args.workers:
        row = run_group(sections, workers, args.timeout)
        row.update(residents=args.sections * args.residents)
        report_row(row)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sections", type=int, default=100)
    parser.add_argument("--residents", type=int, default=100, help="Residents per section.")
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--database-url", default=PG_BENCH_URL,
                        help="PostgreSQL URL (a database the script may drop and re-create).")
    parser.add_argument("--broker-url", default=os.environ.get("CELERY_BROKER_URL", ""),
                        help="Celery broker (default: CELERY_BROKER_URL, else the embedded filesystem broker, "
                             "which polls every second between tasks).")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    cmd = [sys.executable, __file__, "--child", "--sections", str(args.sections), "--residents", str(args.residents),
           "--database-url", args.database_url, "--timeout", str(args.timeout), "--broker-url", args.broker_url,
           "--workers",
           *[str(w) for w in args.workers]]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    import ast

    rows = [ast.literal_eval(ln[4:]) for ln in out.stdout.splitlines() if ln.startswith("ROW ")]
    print(out.stderr[-3000:], file=sys.stderr)
    if out.returncode or not rows:
        sys.exit("benchmark failed")
    print("| worker processes | sections | residents | invoices | wall (s) | per section (s) | sections/s |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['workers']} | {r['sections']} | {r['residents']} | {r['invoices']} | {r['wall_s']:.2f} | "
              f"{r['mean_s']:.3f} | {r['sections'] / r['wall_s']:.1f} |")
    last = rows[-1]
    print(f"| 4 (projected: {last['sum_s']:.1f} s of section work ÷ 4) | {last['sections']} | {last['residents']} | "
          f"{last['invoices']} | {last['sum_s'] / 4:.2f} | {last['mean_s']:.3f} | {4 * last['sections'] / last['sum_s']:.1f} |")
    totals = {r["total"] for r in rows}
    print(f"same total for every run: {len(totals) == 1} ({', '.join(sorted(totals))})")


if __name__ == "__main__":
    main()
