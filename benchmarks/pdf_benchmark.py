"""Invoice PDF throughput: ``invoice_render_pdf`` vs the WeasyPrint floor.

    DJANGO_SETTINGS_MODULE=config.settings .venv/bin/python benchmarks/pdf_benchmark.py --invoices 200

Builds its own data in a throw-away SQLite database (SEJOUR_VAR_DIR and DATABASE_URL point to a
temporary directory *before* Django starts): migrate, demo seed, generate and issue one month for
every demo section. Then, in one process with one shared FontConfiguration:

* ``floor``  — ``weasyprint.HTML(string=html).write_pdf(font_config=…)`` on the very same HTML
  strings (WeasyPrint alone: parsing, layout, PDF);
* ``service`` — ``invoice_render_pdf(invoice)`` on invoices loaded the way the job loads them
  (chunks of 25 with select_related + prefetched lines; loading is inside the timing);
* ``job``    — ``invoices_render_pdfs`` (adds the storage write and the UPDATE), for information.

Floor and service run interleaved per invoice (order alternating) so that a busy machine hits
both alike; CPU time (process_time) is the primary measure, wall time is shown too.
Overhead = service time / floor time − 1, summed over all rounds. Target: < 15 %.
"""
from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
from pathlib import Path

from _common import throwaway_environment

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def rss_mib() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invoices", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds over all invoices")
    parser.add_argument("--month", default="2026-10", help="billed month (YYYY-MM)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--samples", type=int, default=0, help="write the first N PDFs to the temp dir")
    args = parser.parse_args()

    tmp = throwaway_environment(prefix="sejour-pdf-bench-")

    import django

    django.setup()
    from calendar import monthrange
    from datetime import date

    from django.core.management import call_command
    from django.db import connection

    from billing.models import BillingPeriod, Invoice
    from billing.services import pdf as pdf_services
    from billing.services.generation import period_generate
    from billing.services.issuing import period_issue
    from demo.services.seed import demo_seed
    from structures.models import Section

    t0 = time.perf_counter()
    call_command("migrate", verbosity=0)
    year, month = (int(x) for x in args.month.split("-"))
    start, end = date(year, month, 1), date(year, month, monthrange(year, month)[1])
    residents = args.invoices + args.invoices // 4 + 10
    for _attempt in range(5):  # top the demo residents up until there are enough issued invoices
        demo_seed(residents=residents, users=False)
        for section in Section.objects.all():
            period, _ = BillingPeriod.objects.get_or_create(
                section=section, start=start, defaults={"end": end, "accounting_date": end, "label": args.month})
            period_generate(period=period)
            period_issue(period=period, issue_date=end)
        issued = Invoice.objects.filter(status=Invoice.Status.ISSUED).count()
        if issued >= args.invoices:
            break
        residents += (args.invoices - issued) * 3 // 2 + 5
    ids = list(Invoice.objects.filter(status=Invoice.Status.ISSUED).order_by("number")
               .values_list("pk", flat=True)[:args.invoices])
    n = len(ids)
    by_status = {s: Invoice.objects.filter(pk__in=ids, establishment__legal_status=s).count()
                 for s in ("association", "public", "commercial")}
    lines = sum(Invoice.objects.get(pk=pk).lines.count() for pk in ids)
    print(f"data: {n} issued invoices ({lines} lines; {by_status}) built in {time.perf_counter() - t0:.1f} s "
          f"in {tmp} [{connection.vendor}]")
    if n < args.invoices:
        print(f"warning: only {n} invoices available", file=sys.stderr)

    def load(chunk_ids):
        return list(pdf_services.invoices_for_render().filter(pk__in=chunk_ids).order_by("number", "pk"))

    fonts = pdf_services.shared_font_config()
    html_of = {inv.pk: pdf_services.invoice_render_html(inv) for c in range(0, n, 25) for inv in load(ids[c:c + 25])}
    htmls = [html_of[pk] for pk in ids]
    pages = 0
    from io import BytesIO

    from pypdf import PdfReader
    from weasyprint import HTML

    # Warm-up (fonts, template cache, first layout), not timed.
    for html in htmls[:3]:
        HTML(string=html).write_pdf(font_config=fonts)
    for inv in load(ids[:3]):
        pdf_services.invoice_render_pdf(inv, font_config=fonts)

    t, job_c0 = time.perf_counter(), time.process_time()
    result = pdf_services.invoices_render_pdfs(ids, force=True)
    job_rss = peak_rss_mib()
    job_time, job_cpu = time.perf_counter() - t, time.process_time() - job_c0
    # Interleaved: per invoice, floor and service back to back (order alternating), so that the
    # load of other processes on the machine hits both alike. CPU time is the primary measure
    # (less sensitive to a busy machine); wall time is shown too. The cyclic GC runs untimed
    # between chunks of 25 (as the job does), so that its pauses do not land on one variant.
    clocks = {"cpu": time.process_time, "wall": time.perf_counter}
    times = {(v, c): [] for v in ("floor", "service") for c in clocks}
    for r in range(args.rounds):
        acc = {key: 0.0 for key in times}

        def timed(variant, func):
            started = {c: clock() for c, clock in clocks.items()}
            value = func()
            for c, clock in clocks.items():
                acc[(variant, c)] += clock() - started[c]
            return value

        k = 0
        for c in range(0, n, 25):
            gc.enable()
            gc.collect()  # untimed: a full collection would otherwise land on either variant at random
            gc.disable()
            chunk = timed("service", lambda: load(ids[c:c + 25]))
            for inv in chunk:
                floor_job = ("floor", lambda: HTML(string=html_of[inv.pk]).write_pdf(font_config=fonts))
                service_job = ("service", lambda: pdf_services.invoice_render_pdf(inv, font_config=fonts))
                for variant, func in ((floor_job, service_job) if (k + r) % 2 == 0 else (service_job, floor_job)):
                    timed(variant, func)
                k += 1
        gc.enable()
        for key, value in acc.items():
            times[key].append(value)
        print(f"  round {r + 1}: floor {n / acc[('floor', 'cpu')]:6.2f} inv/s cpu, "
              f"service {n / acc[('service', 'cpu')]:6.2f} inv/s cpu, "
              f"overhead {100 * (acc[('service', 'cpu')] / acc[('floor', 'cpu')] - 1):+5.1f} % cpu "
              f"({100 * (acc[('service', 'wall')] / acc[('floor', 'wall')] - 1):+5.1f} % wall), "
              f"RSS {rss_mib():.0f} MiB", flush=True)

    for inv in Invoice.objects.filter(pk__in=ids):
        pages += len(PdfReader(BytesIO(inv.pdf.read())).pages)
        inv.pdf.close()
    merged_t = time.perf_counter()
    ready = [p for p in BillingPeriod.objects.all() if pdf_services.period_missing_pdfs(p) == 0]
    merged = sum(len(pdf_services.period_merged_pdf(p)) for p in ready)
    merged_time = time.perf_counter() - merged_t
    merged_count = sum(pdf_services.period_invoices(p).count() for p in ready)

    if args.samples:  # one of each (establishment, debtor kind, payment mode), then the longest
        seen, picked = set(), []
        everything = load(ids)
        for inv in everything:
            key = (inv.establishment_id, inv.debtor_kind, inv.payment_mode)
            if key not in seen:
                seen.add(key)
                picked.append(inv)
        picked.append(max(everything, key=lambda inv: len(inv.lines.all())))
        for inv in picked[:args.samples]:
            (tmp / f"{inv.number}.pdf").write_bytes(pdf_services.invoice_render_pdf(inv))

    floor, service = sum(times[("floor", "cpu")]), sum(times[("service", "cpu")])
    floor_w, service_w = sum(times[("floor", "wall")]), sum(times[("service", "wall")])
    total = n * args.rounds
    overhead = (service / floor - 1) * 100
    print()
    print(f"{'variant':<34} {'inv/s cpu':>10} {'ms/inv cpu':>11} {'inv/s wall':>11}")
    print(f"{'floor (WeasyPrint, same HTML)':<34} {total / floor:10.2f} {1000 * floor / total:11.1f} "
          f"{total / floor_w:11.2f}")
    print(f"{'invoice_render_pdf (+load, HTML)':<34} {total / service:10.2f} {1000 * service / total:11.1f} "
          f"{total / service_w:11.2f}")
    print(f"{'invoices_render_pdfs (+store, GC)':<34} {n / job_cpu:10.2f} {1000 * job_cpu / n:11.1f} "
          f"{n / job_time:11.2f}")
    print(f"overhead of invoice_render_pdf vs floor: {overhead:+.1f} % cpu, "
          f"{(service_w / floor_w - 1) * 100:+.1f} % wall (target < 15 %)  {'OK' if overhead < 15 else 'ABOVE TARGET'}")
    print(f"pages: {pages} ({pages / max(n, 1):.2f}/invoice); job result {result}")
    print(f"merged print files of the {len(ready)} fully rendered period(s): {merged_count} PDFs, "
          f"{merged / 1e6:.1f} MB in {merged_time:.2f} s")
    print(f"peak RSS: {job_rss:.0f} MiB after the job (GC on, as in a worker); {peak_rss_mib():.0f} MiB at the "
          f"end (GC paused within chunks during the timed rounds)")
    if args.keep or args.samples:
        print(f"kept: {tmp}")
    else:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if overhead < 15 else 1


if __name__ == "__main__":
    sys.exit(main())
