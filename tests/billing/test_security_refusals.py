"""French refusals instead of 500s or header injection: deleting a relative who is the debtor of an
issued invoice; a CR/LF typed in an e-mail subject."""
from django.db.models import QuerySet
from datetime import date

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from billing.models import BillingPeriod, Invoice
from billing.services.generation import period_generate
from billing.services.issuing import period_issue
from billing.views.mailing import MailSettingsForm, MailTextForm
from residents.models import Relative


@pytest.fixture
def issued(demo_with_residents):
    section = demo_with_residents["sections"]["TIL-HP"]
    period = BillingPeriod.objects.create(section=section, start=date(2026, 11, 1), end=date(2026, 11, 30),
                                          accounting_date=date(2026, 11, 30), label="novembre 2026")
    period_generate(period=period)
    period_issue(period=period, issue_date=date(2026, 12, 1))
    return Invoice.objects.filter(period=period, status="issued").order_by("number").first()


def test_deleting_the_debtor_of_an_issued_invoice_is_refused_in_french(client, issued):
    relative = Relative.objects.filter(resident=issued.resident).first() or Relative.objects.create(
        resident=issued.resident, last_name="Proche", first_name="Paul")
    QuerySet.update(Invoice.objects.filter(pk=issued.pk), relative=relative, debtor_kind="relative")  # fixture: bypasses the guard
    client.login(username="tilleuls", password="demo")
    url = reverse("residents:relative-delete", kwargs={"alias": "TIL-HP", "pk": issued.resident_id,
                                                       "relative_pk": relative.pk})
    response = client.post(url)
    assert response.status_code == 302
    texts = [str(m) for m in get_messages(response.wsgi_request)]
    assert any("Suppression refusée" in t and issued.number in t for t in texts), texts
    assert Relative.objects.filter(pk=relative.pk).exists()


@pytest.mark.parametrize("subject", ["Facture {numero}\r\nBcc: tous@example.org", "Facture\nsuite", "A\rB"])
def test_line_breaks_in_a_subject_are_refused(subject):
    form = MailTextForm(data={"subject": subject, "body": "Bonjour"})
    assert not form.is_valid()
    assert "une seule ligne" in str(form.errors["subject"])
    settings_form = MailSettingsForm(data={"sender_name": "F", "sender_email": "f@example.org",
                                           "mail_subject": subject, "mail_body": "Bonjour"})
    assert not settings_form.is_valid()
    assert "une seule ligne" in str(settings_form.errors["mail_subject"])


def test_a_one_line_subject_is_accepted():
    assert MailTextForm(data={"subject": "Facture {numero}", "body": "Bonjour"}).is_valid()
