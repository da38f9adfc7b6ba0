"""Reminder screens: run form, proposal with « loupe », untick, validate (a job), letters,
registered number, histories, dispute flag, cancel — with the section refusals (404 / 403)."""
import io
from datetime import date

import pytest
from django.urls import reverse
from pypdf import PdfReader

from reminders.models import InvoiceDispute, Reminder, ReminderLetter, ReminderRun
from reminders.services.runs import run_create, run_validate
from structures.models import Section, SectionAccess
from tests.billing.payment_helpers import issued_invoice, resident_in
from tests.factories import SectionAccessFactory, SectionFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def site():
    section = SectionFactory(alias="REL-A")
    other = SectionFactory(alias="REL-B", establishment=section.establishment)
    martin = resident_in(section, last_name="MARTIN")
    durand = resident_in(section, last_name="DURAND")
    a = issued_invoice(section, martin, "100.00", date(2026, 1, 5))
    b = issued_invoice(section, durand, "80.00", date(2026, 1, 6))
    clerk = UserFactory(username="clerk")
    SectionAccessFactory(user=clerk, section=section, role=SectionAccess.Role.CLERK)
    reader = UserFactory(username="reader")
    SectionAccessFactory(user=reader, section=section, role=SectionAccess.Role.READER)
    outsider = UserFactory(username="outsider")
    SectionAccessFactory(user=outsider, section=other, role=SectionAccess.Role.CLERK)
    return {"section": section, "martin": martin, "durand": durand, "a": a, "b": b, "clerk": clerk,
            "reader": reader, "outsider": outsider}


def _url(name, **kwargs):
    return reverse(f"reminders:{name}", kwargs={"alias": "REL-A", **kwargs})


def _pdf_text(content: bytes) -> str:
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(content)).pages)


def test_run_preview_untick_validate_history(client, site, eager_celery, django_capture_on_commit_callbacks):
    client.force_login(site["clerk"])
    page = client.get(_url("runs")).content.decode()
    assert "Proposer les relances" in page
    response = client.post(_url("runs"), {"print_date": "2026-02-05", "limit_date": "2026-02-01"})
    run = ReminderRun.objects.get()
    assert response.status_code == 302 and response["Location"] == _url("run", pk=run.pk)
    page = client.get(_url("run", pk=run.pk)).content.decode()
    assert site["a"].number in page and site["b"].number in page and "loupe" in page
    line_a = run.reminders.get(invoice=site["a"])
    preview = client.get(_url("preview", pk=run.pk, line_pk=line_a.pk))
    assert preview["Content-Type"] == "application/pdf" and preview["Content-Disposition"].startswith("inline")
    text = _pdf_text(preview.content)
    assert site["a"].number in text and "100,00" in text and site["b"].number not in text
    # Untick B, validate.
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(_url("run", pk=run.pk), {"line": [line_a.pk], "validate": "1"})
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == "validated" and run.job.status == "succeeded"
    assert list(Reminder.objects.filter(status="sent").values_list("invoice_id", flat=True)) == [site["a"].pk]
    assert run.reminders.get(invoice=site["b"]).status == "skipped"
    page = client.get(_url("run", pk=run.pk)).content.decode()
    assert "à poster" in page and "Toutes les lettres à imprimer" in page
    merged = client.get(_url("merged-pdf", pk=run.pk))
    assert site["a"].number in _pdf_text(b"".join(merged.streaming_content))
    history = client.get(_url("invoice", pk=site["a"].pk)).content.decode()
    assert "1re relance" in history and "05/02/2026" in history
    resident_page = client.get(_url("resident", pk=site["martin"].pk)).content.decode()
    assert site["a"].number in resident_page
    assert site["a"].number in client.get(_url("runs")).content.decode()  # reminded, still unpaid
    invoice_page = client.get(reverse("billing:invoice-detail", kwargs={"alias": "REL-A", "pk": site["a"].pk}))
    assert "Niveau 1 atteint (relance du 05/02/2026)" in invoice_page.content.decode()


def test_dispute_flag_from_the_invoice(client, site):
    client.force_login(site["clerk"])
    response = client.post(_url("invoice", pk=site["a"].pk), {"is_disputed": "on", "comment": ""})
    assert "Indiquez pourquoi la facture est contestée." in response.content.decode()
    client.post(_url("invoice", pk=site["a"].pk), {"is_disputed": "on", "comment": "Conteste les absences"})
    assert InvoiceDispute.objects.get(invoice=site["a"]).comment == "Conteste les absences"
    run = run_create(section=site["section"], print_date=date(2026, 2, 5))
    assert run.reminders.get(invoice=site["a"]).exclusion == "disputed"
    client.post(_url("invoice", pk=site["a"].pk), {"comment": "réglé à l'amiable"})
    assert not InvoiceDispute.objects.get(invoice=site["a"]).is_disputed


def test_cancel_and_registered_number(client, site):
    client.force_login(site["clerk"])
    for day in (date(2026, 2, 5), date(2026, 3, 9), date(2026, 4, 8)):
        run_validate(run=run_create(section=site["section"], print_date=day))
    letter = ReminderLetter.objects.get(level=3, reminders__invoice=site["a"])
    client.post(_url("registered-number", pk=letter.pk), {"registered_number": "1A 234 567"})
    letter.refresh_from_db()
    assert letter.registered_number == "1A 234 567"
    third = Reminder.objects.get(invoice=site["a"], level=3)
    client.post(_url("invoice", pk=site["a"].pk), {"cancel": third.pk, "reason": "Envoyée par erreur"})
    third.refresh_from_db()
    assert third.status == "cancelled" and third.cancel_reason == "Envoyée par erreur"
    assert "Envoyée par erreur" in client.get(_url("invoice", pk=site["a"].pk)).content.decode()


def test_refusals(client, site):
    run = run_create(section=site["section"], print_date=date(2026, 2, 5))
    line = run.reminders.first()
    client.force_login(site["outsider"])
    for url in (_url("runs"), _url("run", pk=run.pk), _url("preview", pk=run.pk, line_pk=line.pk),
                _url("invoice", pk=site["a"].pk), _url("resident", pk=site["martin"].pk)):
        assert client.get(url).status_code == 404, url
    # A run of another section through one's own section: 404.
    other_run = run_create(section=SectionFactory(alias="REL-C"), print_date=date(2026, 2, 5))
    client.force_login(site["clerk"])
    assert client.get(_url("run", pk=other_run.pk)).status_code == 404
    client.force_login(site["reader"])
    assert client.get(_url("run", pk=run.pk)).status_code == 200
    assert client.post(_url("runs"), {"print_date": "2026-02-05"}).status_code == 403
    assert client.post(_url("run", pk=run.pk), {"validate": "1"}).status_code == 403
    assert client.post(_url("invoice", pk=site["a"].pk), {"is_disputed": "on", "comment": "x"}).status_code == 403
    assert ReminderRun.objects.get(pk=run.pk).status == "proposed"
    assert not InvoiceDispute.objects.exists()


def test_all_sections_only_those_the_user_bills(client, site):
    """« Toutes les sections »: one run per section where the user is a clerk; a section of the
    association the user only reads, or may not see, is never proposed."""
    section = site["section"]
    third = SectionFactory(alias="REL-C", establishment=section.establishment)
    read_only = SectionFactory(alias="REL-D", establishment=section.establishment)
    not_granted = Section.objects.get(alias="REL-B")
    SectionAccessFactory(user=site["clerk"], section=third, role=SectionAccess.Role.CLERK)
    SectionAccessFactory(user=site["clerk"], section=read_only, role=SectionAccess.Role.READER)
    mine = issued_invoice(third, resident_in(third), "70.00", date(2026, 1, 6))
    hidden = [issued_invoice(s, resident_in(s), "90.00", date(2026, 1, 6)) for s in (read_only, not_granted)]
    client.force_login(site["clerk"])
    response = client.post(_url("runs"), {"print_date": "2026-02-05", "limit_date": "2026-02-01",
                                          "all_sections": "on"})
    assert response.status_code == 302
    runs = {run.section.alias: run for run in ReminderRun.objects.select_related("section")}
    assert set(runs) == {"REL-A", "REL-C"}
    assert set(runs["REL-C"].reminders.values_list("invoice_id", flat=True)) == {mine.pk}
    assert set(runs["REL-A"].reminders.values_list("invoice_id", flat=True)) == {site["a"].pk, site["b"].pk}
    assert not Reminder.objects.filter(invoice__in=hidden).exists()
    page = client.get(_url("runs")).content.decode()
    assert "campagne(s) proposée(s) : REL-A, REL-C" in page
    assert reverse("reminders:run", kwargs={"alias": "REL-C", "pk": runs["REL-C"].pk}) in page


def test_account_tab_links_to_the_residents_reminder_history(client, site):
    """Registered in billing's panels (billing's template names no reminders URL)."""
    client.force_login(site["clerk"])
    page = client.get(reverse("billing:resident-account", kwargs={"alias": "REL-A", "pk": site["martin"].pk}))
    assert page.status_code == 200
    assert f'href="{_url("resident", pk=site["martin"].pk)}"' in page.content.decode()
