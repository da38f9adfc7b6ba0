"""Invoice mailing throughput: 1 000 issued invoices with their PDFs, throttle 0, local SMTP sink.

    .venv/bin/python benchmarks/mailing_benchmark.py --invoices 1000

Builds its own data in a throw-away SQLite database (SEJOUR_VAR_DIR and DATABASE_URL point to a
temporary directory *before* Django starts): migrate, the demo association, then ``--invoices``
residents (each with a relative receiving the invoices) and as many issued invoices of one
period, each with a stored PDF (one real invoice rendered by WeasyPrint, its bytes stored once per
invoice — PDF rendering has its own benchmark). The SMTP sink (``mailing.sink``, Maildir on disk)
runs in a separate process so that the figures are the sender's alone.

Timed, in this process:

* ``queue``  — ``period_campaign_create``: recipients, placeholders, one outbox row per invoice;
* ``send``   — the campaign job exactly as Celery runs it (``core.services.jobs.job_run`` with the
  ``mailing.campaign_send`` runner): throttle row, claim, MIME with the PDF read from storage,
  SMTP over one reused connection, attempt log, ``Invoice.last_sent_at``, job progress.

Printed: messages per second, CPU seconds, resident memory before / after / peak (VmHWM), and a
check that the sink holds exactly one message per invoice.
"""
from __future__ import annotations

import argparse
import resource
import socket
import subprocess
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SINK = """
import sys, time
from pathlib import Path
from mailing.sink import sink_controller
controller = sink_controller(directory=Path(sys.argv[1]), port=int(sys.argv[2]))
controller.start()
print("ready", flush=True)
try:
    sys.stdin.read()
finally:
    controller.stop()
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invoices", type=int, default=1000)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()

    tmp = throwaway_environment(prefix="sejour-mail-bench-")

    import django

    django.setup()
    from datetime import date
    from decimal import Decimal

    from django.core.files.storage import default_storage
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from billing.models import BillingPeriod, Invoice
    from billing.services import mailing as mail_services
    from billing.services import pdf as pdf_services
    from billing.services.issuing import establishment_snapshot
    from core.services.jobs import JOB_RUNNERS, job_create, job_run
    from demo.services.seed import demo_seed
    from mailing.models import OutgoingMessage
    from mailing.services.campaigns import JOB_KIND
    from mailing.sink import sink_messages
    from residents.models import Relative, Resident

    t0 = time.perf_counter()
    call_command("migrate", verbosity=0)
    demo = demo_seed(residents=0, users=False)
    org, section = demo["organisation"], demo["sections"]["TIL-HP"]
    establishment = section.establishment
    n = args.invoices
    residents = Resident.objects.bulk_create([
        Resident(organisation=org, civility="MME", last_name=f"Résidente{i:04d}", first_name="Jeanne",
                 birth_date=date(1935, 1, 1), email=f"jeanne.{i}@residents.example" if i % 4 == 0 else "")
        for i in range(n)])
    Relative.objects.bulk_create([Relative(resident=r, last_name="Proche", first_name="Paul", relationship="FILS",
                                           email=f"proche.{i}@familles.example", receives_invoices=True)
                                  for i, r in enumerate(residents)])
    period = BillingPeriod.objects.create(section=section, start=date(2026, 11, 1), end=date(2026, 11, 30),
                                          accounting_date=date(2026, 11, 30), label="novembre 2026")
    snapshot = establishment_snapshot(establishment)
    invoices = Invoice.objects.bulk_create([
        Invoice(period=period, section=section, establishment=establishment, status=Invoice.Status.ISSUED,
                number=f"TIL-2026-{i + 1:06d}", debtor_kind=Invoice.DebtorKind.RESIDENT, resident=r,
                date_from=period.start, date_to=period.end, issue_date=date(2026, 12, 1),
                due_date=date(2026, 12, 16), total=Decimal("2340.10"), debtor_name=f"Mme {r.full_name}",
                establishment_snapshot=snapshot, payment_mode="cheque")
        for i, r in enumerate(residents)], batch_size=500)
    sample = pdf_services.invoices_for_render().get(pk=invoices[0].pk)
    pdf_bytes = pdf_services.invoice_render_pdf(sample)
    now = timezone.now()
    for invoice in invoices:
        name = default_storage.save(pdf_services.invoice_pdf_name(invoice), _content(pdf_bytes))
        invoice.pdf, invoice.pdf_rendered_at = name, now
    Invoice.objects.bulk_update(invoices, ["pdf", "pdf_rendered_at"], batch_size=500)
    org.mail_delay_seconds, org.mail_pause_every, org.mail_pause_seconds = 0, 0, 0
    port = free_port()
    org.smtp_host, org.smtp_port, org.smtp_security = "127.0.0.1", port, "none"
    org.save()
    print(f"data: {n} issued invoices, PDF of {len(pdf_bytes) / 1024:.0f} KiB each, built in "
          f"{time.perf_counter() - t0:.1f} s in {tmp} [{connection.vendor}]")

    sink_dir = tmp / "mailsink"
    sink = subprocess.Popen([sys.executable, "-c", SINK, str(sink_dir), str(port)], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert sink.stdout.readline().strip() == "ready"
    try:
        rss0 = rss_mib()
        t, c = time.perf_counter(), time.process_time()
        campaign = mail_services.period_campaign_create(
            period=period, invoice_ids=[i.pk for i in invoices], subject=establishment.mail_subject,
            body=establishment.mail_body)
        queue_time, queue_cpu = time.perf_counter() - t, time.process_time() - c
        job = job_create(kind=JOB_KIND, label="benchmark", section=section, params={"campaign_id": campaign.pk})
        rss1 = rss_mib()
        t, c = time.perf_counter(), time.process_time()
        job = job_run(job_id=job.pk, func=JOB_RUNNERS[JOB_KIND])
        send_time, send_cpu = time.perf_counter() - t, time.process_time() - c
        rss2, peak = rss_mib(), peak_rss_mib()
    finally:
        sink.stdin.close()
        sink.wait(timeout=30)
    sent = OutgoingMessage.objects.filter(campaign=campaign, status="sent").count()
    received = sink_messages(sink_dir)
    sizes = [f.stat().st_size for f in (sink_dir / "new").iterdir()] if (sink_dir / "new").exists() else []
    ids = {m["Message-ID"] for m in received}
    print(f"job: {job.status} — {job.message}")
    print(f"queue: {n} messages in {queue_time:.2f} s ({queue_cpu:.2f} s CPU)")
    print(f"send:  {sent} messages in {send_time:.2f} s = {sent / send_time:.0f} messages/s "
          f"({send_cpu:.2f} s CPU, {send_cpu / max(sent, 1) * 1000:.1f} ms CPU per message)")
    print(f"sink:  {len(received)} messages received, {len(ids)} distinct Message-IDs, "
          f"{(sum(sizes) / len(sizes) / 1024) if sizes else 0:.0f} KiB each on average")
    print(f"memory: RSS {rss0:.0f} MiB before queueing, {rss1:.0f} MiB before sending, {rss2:.0f} MiB after; "
          f"peak {peak:.0f} MiB (includes the WeasyPrint render of the sample PDF)")
    if not args.keep:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if sent == n == len(ids) else 1


def _content(data: bytes):
    from django.core.files.base import ContentFile

    return ContentFile(data)


if __name__ == "__main__":
    sys.exit(main())
