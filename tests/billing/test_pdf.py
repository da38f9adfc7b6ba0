"""Invoice PDFs: content (mentions by legal status, payment means, French amounts), drafts,
the chunked job (stores files, idempotent), the merged print file, views and section scoping."""
from django.db.models import QuerySet
import io
import re
from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse
from pypdf import PdfReader

from billing.models import Invoice, InvoiceLine
from billing.services import pdf as pdf_services
from billing.services.generation import period_generate
from billing.services.issuing import credit_note_create, invoices_issue, period_issue
from core.models import Job
from core.services.jobs import JOB_RUNNERS, job_create, job_run
from core.tasks import run_job
from tests.factories import ResidentFactory

D = Decimal
APRIL = (date(2026, 4, 1), date(2026, 4, 30))


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"  # (also done by tests/conftest.py; kept explicit: files are asserted)


def text_of(data: bytes) -> str:
    reader = PdfReader(io.BytesIO(data))
    return re.sub(r"\s+", " ", " ".join(page.extract_text() for page in reader.pages))


def pages_of(data: bytes) -> int:
    return len(PdfReader(io.BytesIO(data)).pages)


def _establishment(setup, **fields):
    est = setup.establishment
    values = {"name": "EHPAD Les Exemples", "address": "3 rue des Lilas", "postal_code": "69008",
              "city": "Lyon", "iban": "FR7630006000011234567890189", "bic": "AGRIFRPPXXX",
              "creditor_id": "FR72ZZZ123456", "phone": "04 72 00 00 00", **fields}
    for key, value in values.items():
        setattr(est, key, value)
    est.save()
    return est


def _issued(setup, *, residents=1, payment_mode="cheque", legal_status="association"):
    _establishment(setup, legal_status=legal_status)
    stays = [setup.stay(gir=6) for _ in range(residents)]
    for stay in stays:
        stay.resident.payment_mode = payment_mode
        stay.resident.address, stay.resident.postal_code, stay.resident.city = "7 place Bellecour", "69002", "Lyon"
        stay.resident.save()
    period = setup.period(*APRIL, label="Avril 2026")
    period_generate(period=period)
    issued = period_issue(period=period, issue_date=date(2026, 5, 2))
    invoices = list(pdf_services.invoices_for_render().filter(pk__in=[i.pk for i in issued]).order_by("number"))
    return period, invoices


def test_issued_invoice_pdf_shows_identity_lines_and_french_amounts(billing_setup):
    _, [invoice] = _issued(billing_setup)
    data = pdf_services.invoice_render_pdf(invoice)
    assert data.startswith(b"%PDF")
    text = text_of(data)
    assert "FACTURE" in text and invoice.number in text
    assert "EHPAD Les Exemples" in text and "3 rue des Lilas" in text
    assert invoice.resident.full_name in text  # debtor (Mme NOM Jeanne) and resident
    assert "7 place Bellecour" in text and "69002 Lyon" in text
    assert "Période du 01/04/2026 au 30/04/2026" in text
    assert "Date d'émission : 02/05/2026" in text
    assert "Hébergement" in text and "Dépendance GIR 5-6 (talon)" in text
    assert "65,00 €" in text and "1 950,00 €" in text and "180,00 €" in text
    assert "Total à payer 2 130,00 €" in text
    assert "Exonération de TVA, article 261-7-1° b du CGI" in text
    assert "à payer au plus tard le 17/05/2026" in text
    assert "chèque à l'ordre de EHPAD Les Exemples" in text
    assert "Page 1 / 1" in text
    assert "BROUILLON" not in text


def test_public_establishment_mention_and_direct_debit(billing_setup):
    _, [invoice] = _issued(billing_setup, legal_status="public", payment_mode="direct_debit")
    text = text_of(pdf_services.invoice_render_pdf(invoice))
    assert "Établissement public — hors champ de la TVA (article 256 B du CGI)" in text
    assert "Exonération de TVA" not in text
    assert "Prélèvement SEPA le 17/05/2026" in text
    assert "IBAN" not in text and "chèque" not in text


def test_transfer_shows_establishment_bank_details(billing_setup):
    _, [invoice] = _issued(billing_setup, payment_mode="transfer")
    text = text_of(pdf_services.invoice_render_pdf(invoice))
    assert "IBAN FR7630006000011234567890189" in text and "BIC AGRIFRPPXXX" in text
    assert "Prélèvement SEPA" not in text


def test_commercial_establishment_shows_vat_per_rate(billing_setup):
    for product in billing_setup.products.values():
        product.vat_rate = D("5.50")
        product.save()
    _, [invoice] = _issued(billing_setup, legal_status="commercial")
    html = pdf_services.invoice_render_html(invoice)
    assert "Exonération" not in html and "hors champ" not in html
    text = text_of(pdf_services.invoice_render_pdf(invoice))
    # 2 130,00 TTC at 5,5 %: HT = 2 018,96, TVA = 111,04
    assert "Base HT à 5,5 % 2 018,96 €" in text
    assert "TVA à 5,5 % 111,04 €" in text
    assert "Total TTC 2 130,00 €" in text


def test_credit_note_title_and_credited_number(billing_setup):
    _, [invoice] = _issued(billing_setup)
    credit = credit_note_create(invoice=invoice, issue_date=date(2026, 5, 10), reason="Départ anticipé")
    credit = pdf_services.invoices_for_render().get(pk=credit.pk)
    text = text_of(pdf_services.invoice_render_pdf(credit))
    assert "AVOIR" in text and credit.number in text
    assert f"Avoir sur la facture n° {invoice.number} du 02/05/2026" in text
    assert "Motif : Départ anticipé" in text
    assert "Montant de l'avoir 2 130,00 €" in text
    assert "-1 950,00 €" in text


def test_rappel_shows_previous_unit_price(billing_setup):
    _establishment(billing_setup)
    stay = billing_setup.stay(gir=6)
    invoice = Invoice.objects.create(section=billing_setup.section, establishment=billing_setup.establishment,
                                     kind=Invoice.Kind.RAPPEL, debtor_kind="resident", resident=stay.resident,
                                     date_from=date(2026, 1, 1), date_to=date(2026, 1, 31), total=D("62.00"))
    InvoiceLine.objects.create(invoice=invoice, resident=stay.resident, label="Rappel hébergement",
                               reason=InvoiceLine.Reason.RAPPEL, date_from=date(2026, 1, 1),
                               date_to=date(2026, 1, 31), quantity=D("31"), unit_price=D("2.00"),
                               previous_unit_price=D("65.00"), amount=D("62.00"))
    invoices_issue(invoice_ids=[invoice.pk], issue_date=date(2026, 2, 3))
    invoice = pdf_services.invoices_for_render().get(pk=invoice.pk)
    text = text_of(pdf_services.invoice_render_pdf(invoice))
    assert "FACTURE DE RAPPEL" in text and "Ancien prix" in text
    assert "Rappel hébergement 01/01/2026 31/01/2026 31 65,00 € 2,00 € 62,00 €" in text


def test_draft_preview_has_watermark_and_is_not_stored(billing_setup):
    _establishment(billing_setup)
    billing_setup.stay(gir=6)
    period = billing_setup.period(*APRIL)
    period_generate(period=period)
    draft = pdf_services.invoices_for_render().get(period=period)
    text = text_of(pdf_services.invoice_render_pdf(draft))
    assert "BROUILLON" in text and f"Brouillon n° {draft.pk}" in text
    assert f"Mme {draft.resident.full_name}" in text  # the debtor the issue would copy
    assert "Total à payer 2 130,00 €" in text
    assert pdf_services.invoices_render_pdfs([draft.pk]) == {"total": 0, "rendered": 0, "skipped": 0}
    draft.refresh_from_db()
    assert not draft.pdf


def test_job_stores_files_and_is_idempotent(billing_setup, settings):
    period, invoices = _issued(billing_setup, residents=3)
    job = job_create(kind="billing.render_pdfs", label="PDF", section=billing_setup.section,
                     params={"period_id": period.pk})
    job = job_run(job_id=job.pk, func=JOB_RUNNERS["billing.render_pdfs"])
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.result["rendered"] == 3 and job.result["skipped"] == 0
    assert (job.progress_current, job.progress_total) == (3, 3)
    for invoice in invoices:
        invoice.refresh_from_db()
        assert invoice.pdf.name == f"invoices/2026/EXA/{invoice.number}.pdf"
        assert invoice.pdf_rendered_at is not None
        path = settings.MEDIA_ROOT / invoice.pdf.name
        assert path.read_bytes().startswith(b"%PDF")
        assert invoice.number in text_of(path.read_bytes())
    first_stamp = invoices[0].pdf_rendered_at
    again = job_run(job_id=job_create(kind="billing.render_pdfs", label="PDF", params={"period_id": period.pk}).pk,
                    func=JOB_RUNNERS["billing.render_pdfs"])
    assert again.result["rendered"] == 0 and again.result["skipped"] == 3
    invoices[0].refresh_from_db()
    assert invoices[0].pdf_rendered_at == first_stamp
    # A lost file is rendered again; force re-renders all, at the same names.
    (settings.MEDIA_ROOT / invoices[1].pdf.name).unlink()
    assert pdf_services.invoices_render_pdfs([i.pk for i in invoices])["rendered"] == 1
    assert pdf_services.invoices_render_pdfs([i.pk for i in invoices], force=True)["rendered"] == 3
    stored = sorted(p.name for p in (settings.MEDIA_ROOT / "invoices/2026/EXA").iterdir())
    assert stored == sorted(f"{i.number}.pdf" for i in invoices)


def test_job_with_invoice_ids_and_chunks(billing_setup):
    period, invoices = _issued(billing_setup, residents=3)
    calls = []
    result = pdf_services.invoices_render_pdfs([i.pk for i in invoices],
                                               progress=lambda *a: calls.append(a[:2]), chunk_size=2)
    assert result["rendered"] == 3
    assert calls == [(0, 3), (2, 3), (3, 3)]


def test_merged_pdf_page_count_is_the_sum(billing_setup, settings):
    period, invoices = _issued(billing_setup, residents=3)
    credit_note_create(invoice=invoices[0], issue_date=date(2026, 5, 10))
    merged = pdf_services.period_merged_pdf(period)  # renders the missing PDFs first
    stored = [i for i in Invoice.objects.filter(period=period).exclude(status="draft")]
    assert len(stored) == 4 and all(i.pdf for i in stored)
    expected = sum(pages_of((settings.MEDIA_ROOT / i.pdf.name).read_bytes()) for i in stored)
    assert pages_of(merged) == expected
    text = text_of(merged)
    assert all(i.number in text for i in stored)


def test_period_render_start_enqueues_job(billing_setup, django_capture_on_commit_callbacks, monkeypatch):
    sent = []
    monkeypatch.setattr(run_job, "delay", lambda job_id: sent.append(job_id))
    period, _ = _issued(billing_setup)
    with django_capture_on_commit_callbacks(execute=True):
        job = pdf_services.period_render_pdfs_start(period, None)
    assert sent == [job.pk]
    assert job.kind == "billing.render_pdfs" and job.params == {"period_id": period.pk}
    assert job.section == billing_setup.section


# --- Views -----------------------------------------------------------------------------------------
def _demo_invoice(demo, alias):
    section = demo["sections"][alias]
    resident = ResidentFactory(organisation=section.establishment.organisation, payment_mode="direct_debit")
    invoice = Invoice.objects.create(section=section, establishment=section.establishment, debtor_kind="resident",
                                     resident=resident, date_from=date(2026, 4, 1), date_to=date(2026, 4, 30),
                                     total=D("150.00"))
    InvoiceLine.objects.create(invoice=invoice, resident=resident, label="Location téléviseur",
                               date_from=date(2026, 4, 1), date_to=date(2026, 4, 30), quantity=D("10"),
                               unit_price=D("15.00"), amount=D("150.00"))
    return invoice


def test_views_scoping_and_roles(client, demo, django_capture_on_commit_callbacks, monkeypatch):
    sent = []
    monkeypatch.setattr(run_job, "delay", lambda job_id: sent.append(job_id))
    from billing.models import BillingPeriod

    ver = _demo_invoice(demo, "VER-HP")
    til = _demo_invoice(demo, "TIL-HP")
    period = BillingPeriod.objects.create(section=demo["sections"]["VER-HP"], start=date(2026, 4, 1),
                                          end=date(2026, 4, 30), accounting_date=date(2026, 4, 30), label="Avril 2026")
    Invoice.objects.filter(pk=ver.pk).update(period=period)  # still a draft: an issued invoice can't move
    invoices_issue(invoice_ids=[ver.pk, til.pk], issue_date=date(2026, 5, 2))
    ver.refresh_from_db()
    url = lambda alias, inv: reverse("billing:invoice-pdf", kwargs={"alias": alias, "pk": inv.pk})  # noqa: E731

    client.force_login(demo["users"]["tilleuls"])
    assert client.get(url("TIL-HP", ver)).status_code == 404  # another section's invoice via my section
    assert client.get(url("VER-HP", ver)).status_code == 404  # a section I may not read
    response = client.get(url("TIL-HP", til))
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert "EHPAD Les Tilleuls" in text_of(b"".join(response.streaming_content))

    client.force_login(demo["users"]["direction"])  # reader everywhere
    response = client.get(url("VER-HP", ver))
    assert response.status_code == 200
    text = text_of(b"".join(response.streaming_content))
    assert ver.number in text and "EHPAD Le Verger" in text
    assert "Établissement public — hors champ de la TVA" in text and "Prélèvement SEPA le 17/05/2026" in text
    ver.refresh_from_db()
    assert ver.pdf.name == f"invoices/2026/VER/{ver.number}.pdf"  # rendered on first download, stored

    # Draft preview: watermark, nothing stored.
    draft = _demo_invoice(demo, "VER-HP")
    response = client.get(url("VER-HP", draft))
    assert response.status_code == 200 and "BROUILLON" in text_of(response.content)
    draft.refresh_from_db()
    assert not draft.pdf

    # Period print file and render job.
    period_url = reverse("billing:period-pdf", kwargs={"alias": "VER-HP", "period_pk": period.pk})
    response = client.get(period_url)
    assert response.status_code == 200 and pages_of(response.content) == 1
    assert client.get(reverse("billing:period-pdf", kwargs={"alias": "TIL-HP", "period_pk": period.pk})
                      ).status_code == 404
    render_url = reverse("billing:period-render-pdfs", kwargs={"alias": "VER-HP", "period_pk": period.pk})
    assert client.post(render_url).status_code == 403  # reader
    client.force_login(demo["users"]["verger"])  # clerk
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(render_url)
    job = Job.objects.get(kind="billing.render_pdfs")
    assert response.status_code == 302 and response["Location"] == reverse("job-detail", kwargs={"pk": job.pk})
    assert sent == [job.pk] and job.section == demo["sections"]["VER-HP"]
    client.force_login(demo["users"]["tilleuls"])
    assert client.post(reverse("billing:period-render-pdfs", kwargs={"alias": "TIL-HP", "period_pk": period.pk})
                       ).status_code == 404


def _png(width=4, height=2) -> bytes:
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\x20\x60\xa0" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_logo_is_drawn_and_remote_urls_are_refused(billing_setup, settings):
    from django.core.files.base import ContentFile

    est = _establishment(billing_setup)
    est.logo.save("logo.png", ContentFile(_png()), save=True)
    _, [invoice] = _issued(billing_setup)
    assert invoice.establishment_snapshot["logo"] == est.logo.name
    data = pdf_services.invoice_render_pdf(invoice)
    assert len(PdfReader(io.BytesIO(data)).pages[0].images) == 1
    # Only local media/static files and data: URLs are fetched.
    fetcher = pdf_services._url_fetcher()
    with pytest.raises(ValueError):
        fetcher.fetch("https://example.com/x.png")
    with pytest.raises(ValueError):
        fetcher.fetch("file:///etc/passwd")
    assert fetcher.fetch((settings.MEDIA_ROOT / est.logo.name).as_uri()) is not None


def test_pdf_being_rendered_shows_a_french_page_that_retries(client, demo, monkeypatch):
    """While the PDF job renders a period, downloading one of its PDFs (or the print file) answers
    « PDF en préparation » and retries by itself — no second rendering in the request, no 500."""
    from billing.models import BillingPeriod

    monkeypatch.setattr(run_job, "delay", lambda job_id: None)
    til = _demo_invoice(demo, "TIL-HP")
    invoices_issue(invoice_ids=[til.pk], issue_date=date(2026, 5, 2))
    period = BillingPeriod.objects.create(section=demo["sections"]["TIL-HP"], start=date(2026, 4, 1),
                                          end=date(2026, 4, 30), accounting_date=date(2026, 4, 30), label="Avril 2026")
    QuerySet.update(Invoice.objects.filter(pk=til.pk), period=period)  # fixture: bypasses the issued-invoice guard
    job = pdf_services.period_render_pdfs_start(period)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, progress_total=1)
    monkeypatch.setattr(pdf_services, "invoice_store_pdf",
                        lambda *a, **kw: pytest.fail("rendered in the request while the job renders it"))
    client.force_login(demo["users"]["tilleuls"])
    for url in (reverse("billing:invoice-pdf", kwargs={"alias": "TIL-HP", "pk": til.pk}),
                reverse("billing:period-pdf", kwargs={"alias": "TIL-HP", "period_pk": period.pk})):
        response = client.get(url)
        html = response.content.decode()
        assert response.status_code == 202, url
        assert "PDF en préparation" in html and '<meta http-equiv="refresh" content="3">' in html
        assert response["Refresh"] == "3"
    # Once the job is done (file stored), the same address gives the PDF.
    monkeypatch.undo()
    monkeypatch.setattr(run_job, "delay", lambda job_id: None)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.PENDING)
    job_run(job_id=job.pk, func=JOB_RUNNERS["billing.render_pdfs"])
    response = client.get(reverse("billing:invoice-pdf", kwargs={"alias": "TIL-HP", "pk": til.pk}))
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
