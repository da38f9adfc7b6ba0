"""Yearly tax certificate (billing-rules.md §12), hand-computed.

Resident MARTIN Jeanne (stay from 01/01/2026), section EXA-HP, year 2026:

* A (issued 05/02/2026): hébergement 1 950,00 + dépendance 180,00 + TV 20,00 = 2 150,00; paid 1 000,00
  on 10/03/2026 → hébergement 1 000 × 1 950 / 2 150 = 906,976… → 906,98; dépendance
  1 000 × 180 / 2 150 = 83,720… → 83,72 (the TV share is left out).
* B (issued 05/03/2026, debtor the paying relative): hébergement 650,00 + dépendance 60,00 + extra
  10,00 = 720,00; paid in full by the relative on 20/03/2026 with 800,00 → 650,00 and 60,00; the
  80,00 left is a credit on the account: not paid.
* C (issued 06/03/2026): hébergement 100,00; a cheque of 100,00 on 25/03/2026 cancelled (reason) →
  nothing paid.
* Paid: hébergement 906,98 + 650,00 = 1 556,98; dépendance 83,72 + 60,00 = 143,72; NET 1 700,70.
* Aids: the département CD01 was invoiced APA 240,00 (lines of March) and social aid 1 500,00 less a
  credit note of 100,00 = 1 400,00; the housing allowance of the social-aid decision (150,00 a month
  from 16/11/2026): November 15/30 × 150 = 75,00, December 150,00 → 225,00. AIDES 1 865,00.
"""
import io
import re
from datetime import date
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from pypdf import PdfReader

from billing.models import Invoice, InvoiceLine, TaxCertificateSettings
from billing.services import payments as pay
from billing.services import tax_certificates as tax
from billing.services.issuing import invoices_issue
from core.models import Job
from payers.models import SocialAidDecision
from residents.models import Resident
from structures.models import SectionAccess
from tests.factories import RelativeFactory, SectionAccessFactory, UserFactory

D = Decimal
pytestmark = pytest.mark.django_db


def _invoice(setup, resident, issued, lines, *, relative=None, payer=None, group=None, kind=Invoice.Kind.INVOICE,
             credited=None):
    """An issued invoice with ``lines`` = [(product code or None, amount)], all dated in ``issued``'s month."""
    section = setup.section
    first = issued.replace(day=1)
    invoice = Invoice.objects.create(
        section=section, establishment=section.establishment, kind=kind,
        debtor_kind=(Invoice.DebtorKind.PAYER if payer else
                     Invoice.DebtorKind.RELATIVE if relative else Invoice.DebtorKind.RESIDENT),
        resident=resident, relative=relative, payer=payer, payer_group=group, credited_invoice=credited,
        date_from=first, date_to=issued, total=sum((D(a) for _c, a in lines), D("0")))
    for position, (code, amount) in enumerate(lines):
        InvoiceLine.objects.create(invoice=invoice, resident=resident, product=setup.products.get(code),
                                   label=code or "Divers", reason="manual", date_from=first, date_to=issued,
                                   quantity=D("1"), unit_price=D(amount), amount=D(amount), position=position)
    invoices_issue(invoice_ids=[invoice.pk], issue_date=issued)
    invoice.refresh_from_db()
    return invoice


@pytest.fixture
def tv(billing_setup):
    return billing_setup.product("TV", "Télévision", "other", "month", [(date(2025, 1, 1), "20.00")])


@pytest.fixture
def year_2026(billing_setup, tv):
    setup = billing_setup
    est = setup.establishment
    est.name, est.city, est.finess = "EHPAD Les Exemples", "Lyon", "690000001"
    est.save()
    stay = setup.stay(entry=date(2026, 1, 1), gir=2)
    Resident.objects.filter(pk=stay.resident_id).update(last_name="MARTIN", first_name="Jeanne", external_ref="R001",
                                                         civility="MME", birth_date=date(1935, 4, 2))
    resident = Resident.objects.get(pk=stay.resident_id)
    relative = RelativeFactory(resident=resident, is_payer=True, last_name="MARTIN", first_name="Paul",
                               email="paul.martin@example.org")
    cd01 = setup.payers["CD01"]
    a = _invoice(setup, resident, date(2026, 2, 5), [("HEB", "1950.00"), ("DEP12", "180.00"), ("TV", "20.00")])
    b = _invoice(setup, resident, date(2026, 3, 5), [("HEB", "650.00"), ("DEP12", "60.00"), (None, "10.00")],
                 relative=relative)
    c = _invoice(setup, resident, date(2026, 3, 6), [("HEB", "100.00")])
    apa = _invoice(setup, resident, date(2026, 3, 7), [("DEP12", "240.00")], payer=cd01,
                   group=cd01.groups.get(code="APA"))
    ash = _invoice(setup, resident, date(2026, 3, 8), [("HEB", "1500.00")], payer=cd01,
                   group=cd01.groups.get(code="ASH"))
    _invoice(setup, resident, date(2026, 3, 9), [("HEB", "-100.00")], payer=cd01, group=cd01.groups.get(code="ASH"),
             kind=Invoice.Kind.CREDIT_NOTE, credited=ash)
    pay.payment_record(section=setup.section, invoice=a, on=date(2026, 3, 10), amount=D("1000.00"), mode="cheque")
    pay.payment_record(section=setup.section, invoice=b, on=date(2026, 3, 20), amount=D("800.00"), mode="transfer")
    cheque = pay.payment_record(section=setup.section, invoice=c, on=date(2026, 3, 25), amount=D("100.00"),
                                mode="cheque", reference="123")
    pay.payment_cancel(payment=cheque, reason="chèque sans provision")
    SocialAidDecision.objects.create(stay=stay, payer=cd01, group=cd01.groups.get(code="ASH"),
                                     decision_reference="ASH-2026-17", valid_from=date(2026, 11, 16),
                                     monthly_resources=D("1200.00"), housing_allowance=D("150.00"))
    return {"setup": setup, "resident": resident, "relative": relative, "a": a, "b": b, "apa": apa}


def _text(pdf: bytes) -> str:
    return re.sub(r"\s+", " ", " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages))


def test_paid_split_pro_rata_aids_and_net(year_2026):
    cert = tax.tax_certificate_for(section=year_2026["setup"].section, resident=year_2026["resident"], year=2026)
    assert cert.accommodation == D("1556.98")
    assert cert.dependency == D("143.72")
    assert cert.net == D("1700.70")
    assert [(a.label, a.amount) for a in cert.aids] == [
        ("APA — Département 01", D("240.00")),
        ("Aide sociale — Département 01", D("1400.00")),
        ("Allocation logement (décision d'aide sociale ASH-2026-17)", D("225.00"))]
    assert cert.aids_total == D("1865.00")
    assert cert.stays == [(date(2026, 1, 1), None)]


def test_only_the_years_allocations_count(year_2026):
    setup = year_2026["setup"]
    # A payment of 2027 on the same invoice: not in 2026, and 2027 gets only it.
    pay.payment_record(section=setup.section, invoice=year_2026["a"], on=date(2027, 1, 10), amount=D("215.00"),
                       mode="cheque")
    cert = tax.tax_certificate_for(section=setup.section, resident=year_2026["resident"], year=2026)
    assert cert.net == D("1700.70")
    next_year = tax.tax_certificate_for(section=setup.section, resident=year_2026["resident"], year=2027)
    # 215 × 1950 / 2150 = 195,00 ; 215 × 180 / 2150 = 18,00
    assert (next_year.accommodation, next_year.dependency) == (D("195.00"), D("18.00"))
    assert [a.amount for a in next_year.aids] == [D("1800.00")]  # the open decision: 12 × 150,00


def test_apa_under_dotation_globale_is_not_listed(year_2026):
    # CD69 is under dotation globale: nothing is invoiced to it, so nothing is listed for it.
    cert = tax.tax_certificate_for(section=year_2026["setup"].section, resident=year_2026["resident"], year=2026)
    assert not any("Département 69" in a.label for a in cert.aids)


def test_housing_allowance_prorated_per_month(year_2026):
    decision = SocialAidDecision.objects.get()
    stay = decision.stay
    assert tax.housing_allowance_in_year(decision=decision, stay=stay, year=2026) == D("225.00")
    stay.end_date = date(2026, 12, 10)
    # 15/30 × 150 = 75,00 ; 10/31 × 150 = 48,387… → 48,39
    assert tax.housing_allowance_in_year(decision=decision, stay=stay, year=2026) == D("123.39")


def test_pdf_text(year_2026):
    cert = tax.tax_certificate_for(section=year_2026["setup"].section, resident=year_2026["resident"], year=2026)
    text = _text(tax.certificate_pdf(cert))
    for expected in ("Attestation fiscale — année 2026", "EHPAD Les Exemples", "FINESS 690000001",
                     "Mme MARTIN Jeanne", "02/04/1935", "depuis le 01/01/2026", "Hébergement 1 556,98 €",
                     "Dépendance 143,72 €", "1 700,70 €", "APA — Département 01 240,00 €",
                     "Allocation logement (décision d'aide sociale ASH-2026-17) 225,00 €", "1 865,00 €",
                     "199 quindecies", "10 000 €", "frais de soins ne sont pas compris"):
        assert expected in text.replace("\u202f", " ").replace("\u00a0", " "), expected


def test_section_template_is_used_and_checked(year_2026):
    section = year_2026["setup"].section
    with pytest.raises(Exception) as error:
        tax.settings_save(section=section, body="Bonjour {residant}", signatory="", mail_subject="x", mail_body="y")
    assert "{residant}" in str(error.value)
    tax.settings_save(section=section, body="Nous certifions que {resident} a réglé {net} en {annee}.",
                      signatory="La directrice, Mme DUPONT", mail_subject="Attestation {annee}", mail_body="Bonjour")
    cert = tax.tax_certificate_for(section=section, resident=year_2026["resident"], year=2026)
    text = _text(tax.certificate_pdf(cert)).replace("\u202f", " ").replace("\u00a0", " ")
    assert "Nous certifions que Mme MARTIN Jeanne a réglé 1 700,70 € en 2026." in text
    assert "La directrice, Mme DUPONT" in text


def test_csv_command(year_2026, billing_setup):
    empty = billing_setup.stay(entry=date(2026, 6, 1), gir=6)  # nothing paid, no aid: left out
    assert empty
    out = StringIO()
    call_command("tax_certificates", "--section", "EXA-HP", "--year", "2026", "--format", "csv", stdout=out)
    assert out.getvalue().splitlines() == ["REF_EXTERNE;NOM;HEBERGEMENT;DEPENDANCE;AIDES;NET",
                                           "R001;MARTIN Jeanne;1556,98;143,72;1865,00;1700,70"]


def test_pdf_command_writes_one_file_per_resident_and_the_print_file(year_2026, tmp_path):
    out = StringIO()
    folder = tmp_path / "attestations"
    call_command("tax_certificates", "--section", "EXA-HP", "--year", "2026", "-o", str(folder), stdout=out)
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["attestation-fiscale-2026-martin-jeanne.pdf", "attestations-fiscales-EXA-HP-2026.pdf"]
    assert "1 556,98" in _text((folder / names[1]).read_bytes()).replace("\u202f", " ").replace("\u00a0", " ")


def test_command_errors(year_2026):
    with pytest.raises(CommandError, match="Section inconnue"):
        call_command("tax_certificates", "--section", "NOPE", "--year", "2026")
    with pytest.raises(CommandError, match="Année invalide"):
        call_command("tax_certificates", "--section", "EXA-HP", "--year", "20x6")
    with pytest.raises(CommandError, match="Format inconnu"):
        call_command("tax_certificates", "--section", "EXA-HP", "--year", "2026", "--format", "xls")


def test_send_command_mails_the_paying_relative_with_the_certificate(year_2026, tmp_path):
    from tests.mailing.servers import SmtpServer

    setup = year_2026["setup"]
    est, org = setup.establishment, setup.establishment.organisation
    est.sender_name, est.sender_email = "Facturation", "facturation@exemples.example"
    est.save()
    org.mail_delay_seconds, org.mail_pause_every, org.mail_pause_seconds = 0, 0, 0
    with SmtpServer() as server:
        org.smtp_host, org.smtp_port, org.smtp_security = "127.0.0.1", server.port, "none"
        org.save()
        out = StringIO()
        call_command("tax_certificates", "--section", "EXA-HP", "--year", "2026", "--format", "csv", "--send",
                     "-o", str(tmp_path), stdout=out)
        assert len(server.received) == 1
        received = server.received[0]
    assert received.rcpt_tos == ["paul.martin@example.org"]
    message = received.message
    assert message["Subject"] == "Attestation fiscale 2026 — MARTIN Jeanne"
    attachment = next(message.iter_attachments())
    assert attachment.get_filename() == "attestation-fiscale-2026-martin-jeanne.pdf"
    assert "1 700,70" in _text(attachment.get_content()).replace("\u202f", " ").replace("\u00a0", " ")
    assert "ENVOYÉ" in out.getvalue()


def test_job_merges_the_section(year_2026, billing_setup, settings):
    other = billing_setup.stay(entry=date(2026, 1, 1), gir=6)
    Resident.objects.filter(pk=other.resident_id).update(last_name="ABEL", first_name="Louis")
    invoice = _invoice(billing_setup, other.resident, date(2026, 3, 11), [("HEB", "300.00")])
    pay.payment_record(section=billing_setup.section, invoice=invoice, on=date(2026, 4, 1), amount=D("300.00"),
                       mode="cheque")
    job = Job.objects.create(kind=tax.JOB_KIND, label="x", section=billing_setup.section, params={"year": 2026})
    from core.services.jobs import job_run

    job = job_run(job_id=job.pk, func=tax.tax_certificates_job)
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.result["count"] == 2 and job.progress_current == 2
    from django.core.files.storage import default_storage

    with default_storage.open(job.result["file"], "rb") as handle:
        reader = PdfReader(handle)
        texts = [p.extract_text() for p in reader.pages]
    assert len(texts) == 2 and "ABEL" in texts[0] and "MARTIN" in texts[1]


# ---------------------------------------------------------------- browser (scoping)

@pytest.fixture
def users(billing_setup):
    section = billing_setup.section
    made = {}
    for role in ("reader", "clerk", "manager"):
        user = UserFactory(username=f"u-{role}")
        SectionAccessFactory(user=user, section=section, role=getattr(SectionAccess.Role, role.upper()))
        made[role] = user
    made["stranger"] = UserFactory(username="u-stranger")
    return made


def _url(name, section, **kwargs):
    return reverse(f"billing:{name}", kwargs={"alias": section.alias, **kwargs})


def test_page_lists_the_year_and_refuses_strangers(client, year_2026, users):
    section = year_2026["setup"].section
    client.force_login(users["reader"])
    page = client.get(_url("tax-certificates", section) + "?annee=2026")
    assert page.status_code == 200
    body = page.content.decode()
    assert "MARTIN Jeanne" in body and "1 700,70" in body.replace("\u202f", " ").replace("\u00a0", " ")
    pdf = client.get(_url("tax-certificate-pdf", section, resident_pk=year_2026["resident"].pk, year=2026))
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    assert client.post(_url("tax-certificates", section), {"annee": "2026", "action": "print"}).status_code == 403
    client.force_login(users["stranger"])
    assert client.get(_url("tax-certificates", section) + "?annee=2026").status_code == 404
    assert client.get(_url("tax-certificate-pdf", section, resident_pk=year_2026["resident"].pk,
                           year=2026)).status_code == 404


def test_clerk_starts_the_batch_job(client, year_2026, users, django_capture_on_commit_callbacks, monkeypatch):
    from core import tasks

    monkeypatch.setattr(tasks.run_job, "delay", lambda pk: None)
    section = year_2026["setup"].section
    client.force_login(users["clerk"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(_url("tax-certificates", section), {"annee": "2026", "action": "send"})
    job = Job.objects.get(kind=tax.JOB_KIND)
    assert response.status_code == 302 and response["Location"] == reverse("job-detail", kwargs={"pk": job.pk})
    assert job.params == {"year": 2026, "send": True} and job.section == section


def test_only_managers_edit_the_texts(client, year_2026, users):
    section = year_2026["setup"].section
    data = {"body": "Attestation pour {resident} : {net}.", "signatory": "Le directeur",
            "mail_subject": "Attestation {annee}", "mail_body": "Bonjour {personne}"}
    client.force_login(users["clerk"])
    assert client.get(_url("tax-certificate-settings", section)).status_code == 403
    assert client.post(_url("tax-certificate-settings", section), data).status_code == 403
    client.force_login(users["manager"])
    page = client.get(_url("tax-certificate-settings", section))
    assert page.status_code == 200 and "199 quindecies" in page.content.decode()
    bad = client.post(_url("tax-certificate-settings", section), {**data, "body": "{inconnu}"})
    assert bad.status_code == 400 and "Mot-clé inconnu" in bad.content.decode()
    assert client.post(_url("tax-certificate-settings", section), data).status_code == 302
    assert TaxCertificateSettings.objects.get(section=section).signatory == "Le directeur"
