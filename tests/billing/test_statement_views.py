"""Statements in the browser and their documents: simulate / create / validate, PDF text (pypdf), XLSX
export through core.exports, e-mail through the outbox to a real SMTP server (payers without e-mail
reported), the payer file's Bordereaux tab (paid / left, red when partial) and the refusals."""
import io
from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse
from openpyxl import load_workbook
from pypdf import PdfReader

from billing.models import Invoice, Statement
from billing.services.generation import period_generate
from billing.services.issuing import period_issue
from billing.services.payments import payment_record
from billing.services.statement_documents import statements_send
from billing.services.statements import statements_create, statements_validate
from payers.models import Payer
from structures.models import SectionAccess
from tests.factories import SectionFactory, UserFactory
from tests.mailing.servers import SmtpServer

D = Decimal


@pytest.fixture
def april(april_issued):
    return april_issued


@pytest.fixture
def users(billing_setup):
    section = billing_setup.section
    made = {}
    for login, role in [("clerk", "clerk"), ("reader", "reader")]:
        made[login] = UserFactory(username=login)
        SectionAccess.objects.create(user=made[login], section=section, role=role)
    other = SectionFactory(establishment=billing_setup.establishment, alias="EXA-HT")
    made["other"] = UserFactory(username="other")
    SectionAccess.objects.create(user=made["other"], section=other, role="manager")
    return made


def url(name, **kwargs):
    return reverse(f"billing:{name}", kwargs={"alias": "EXA-HP", **kwargs})


def test_simulate_then_create_then_validate_in_the_browser(client, billing_setup, april, users):
    client.force_login(users["clerk"])
    page = client.get(url("period-statements", period_pk=april.pk), {"simuler": "1", "statement_date": "2026-05-03"})
    html = page.content.decode()
    assert "Simulation" in html and "CD01" in html and "aucune adresse e-mail" in html
    assert not Statement.objects.exists()
    response = client.post(url("period-statements", period_pk=april.pk),
                           {"action": "create", "statement_date": "2026-05-03"})
    assert response.status_code == 302
    statement = Statement.objects.get()
    total = Invoice.objects.filter(period=april, payer__code="CD01").get().total
    assert statement.total == total == D("720.00")  # 16 € × 30 + 8 € × 30
    client.post(url("period-statements", period_pk=april.pk), {"action": "validate", "statement": [statement.pk]})
    statement.refresh_from_db()
    assert statement.number == "EXA-BX-2026-000001" and statement.status == "validated"


def test_readers_see_but_cannot_create_and_other_sections_get_404(client, billing_setup, april, users):
    statement, = statements_create(period=april, statement_date=date(2026, 5, 3))
    client.force_login(users["reader"])
    assert client.get(url("period-statements", period_pk=april.pk)).status_code == 200
    assert client.post(url("period-statements", period_pk=april.pk),
                       {"action": "create", "statement_date": "2026-05-03"}).status_code == 403
    assert client.post(url("period-statements", period_pk=april.pk),
                       {"action": "validate", "statement": [statement.pk]}).status_code == 403
    assert client.get(url("statement-pdf", pk=statement.pk)).status_code == 200
    client.force_login(users["other"])
    assert client.get(url("statement-pdf", pk=statement.pk)).status_code == 404
    other = reverse("billing:statement-pdf", kwargs={"alias": "EXA-HT", "pk": statement.pk})
    assert client.get(other).status_code == 404
    statement.refresh_from_db()
    assert statement.status == "draft"


def test_pdf_and_xlsx_show_beneficiaries_days_amounts(client, billing_setup, april, users):
    statement, = statements_create(period=april, statement_date=date(2026, 5, 3))
    statements_validate(statements=[statement], today=date(2026, 5, 3))
    client.force_login(users["reader"])
    pdf = client.get(url("statement-pdf", pk=statement.pk)).content
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    assert "Bordereau n° EXA-BX-2026-000001" in text and "Département 01" in text
    assert "720,00" in text and "480,00" in text and "240,00" in text and "2 bénéficiaires" in text
    response = client.get(url("statements-export", period_pk=april.pk))
    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("BORDEREAU", "DATE", "PAYEUR")
    assert [r[0] for r in rows[1:]] == ["EXA-BX-2026-000001"] * 2
    assert sum(Decimal(str(r[9])) for r in rows[1:]) == D("720.00")
    assert {r[8] for r in rows[1:]} == {30}


def test_payer_tab_shows_paid_and_left_in_red_when_partial(client, billing_setup, april, users):
    statement, = statements_create(period=april, statement_date=date(2026, 5, 3))
    invoice = Invoice.objects.get(period=april, payer__code="CD01")
    payment_record(section=billing_setup.section, amount=D("500.00"), on=date(2026, 5, 20), mode="payer",
                   invoice=invoice)
    client.force_login(users["reader"])
    html = client.get(url("payer-statements", pk=billing_setup.payers["CD01"].pk)).content.decode()
    assert "500,00" in html and "720,00" in html and 'class="partial" data-partial="1">220,00' in html


def test_send_through_the_outbox_with_the_pdf_and_warns_without_email(billing_setup, april, eager_celery,
                                                                     django_capture_on_commit_callbacks):
    est = billing_setup.establishment
    est.sender_email = "facturation@exemples.example"
    est.save()
    org = est.organisation
    org.mail_delay_seconds, org.mail_pause_every, org.mail_pause_seconds = 0, 0, 0
    org.save()
    statement, = statements_create(period=april, statement_date=date(2026, 5, 3))
    statements_validate(statements=[statement], today=date(2026, 5, 3))
    statement = Statement.objects.select_related("payer", "establishment", "section", "period").get()
    campaign, without = statements_send(statements=[statement], start=False)
    assert campaign is None and without == [statement]  # CD01 has no e-mail
    Payer.objects.filter(pk=statement.payer_id).update(email="apa@ain.example")
    statement = Statement.objects.select_related("payer", "establishment", "section", "period").get()
    with SmtpServer() as server:
        org.smtp_host, org.smtp_port, org.smtp_security = "127.0.0.1", server.port, "none"
        org.save()
        with django_capture_on_commit_callbacks(execute=True):
            campaign, without = statements_send(statements=[statement])
    assert without == []
    received, = server.received
    assert received.rcpt_tos == ["apa@ain.example"]
    assert received.message["Subject"] == "Bordereau EXA-BX-2026-000001 — avril 2026"
    files = {part.get_filename(): part.get_content() for part in received.message.iter_attachments()}
    assert list(files) == ["EXA-BX-2026-000001.pdf"] and files["EXA-BX-2026-000001.pdf"].startswith(b"%PDF")
    statement.refresh_from_db()
    assert statement.last_sent_at is not None


def test_a_payer_payment_naming_its_statement_is_allocated_to_the_statements_invoices(client, billing_setup, april,
                                                                                       users):
    from billing.services.statements import statement_settlement

    may = billing_setup.period(date(2026, 5, 1), date(2026, 5, 31), label="mai 2026")
    period_generate(period=may)
    period_issue(period=may, issue_date=date(2026, 6, 2))
    first, = statements_create(period=april, statement_date=date(2026, 5, 3))
    second, = statements_create(period=may, statement_date=date(2026, 6, 3))
    statements_validate(statements=[first, second], today=date(2026, 6, 3))
    may_invoice = Invoice.objects.get(period=may, payer__code="CD01")
    payer = billing_setup.payers["CD01"]
    page_url = reverse("billing:payer_payment", kwargs={"alias": "EXA-HP", "payer": payer.pk})
    client.force_login(users["clerk"])
    form = {"on": "2026-06-20", "amount": "100,00", "mode": "transfer", "reference": "VIR CD01 BX MAI",
            "statement": second.pk}
    second.refresh_from_db()
    choice = client.get(page_url).content.decode()
    assert f'<option value="{second.pk}">{second.number}</option>' in choice
    page = client.post(page_url, {**form, "auto": "1"}).content.decode()
    # without the statement the oldest invoice (April's) would take it; with it, only May's is proposed
    assert f'value="{may_invoice.pk}" aria-label="{may_invoice.number}" checked' in page
    assert page.count("checked") == 1
    response = client.post(page_url, {**form, "save": "1", "pick": [may_invoice.pk],
                                      f"amount-{may_invoice.pk}": "100,00"})
    assert response.status_code == 302
    settled = statement_settlement([first, second])
    assert settled[second.pk] == (D("100.00"), second.total - D("100.00"))
    assert settled[first.pk] == (D("0.00"), first.total)
    tab = client.get(url("payer-statements", pk=payer.pk)).content.decode()
    assert f'class="partial" data-partial="1">{second.total - D("100.00")}'.replace(".", ",") in tab
    # another payer's statement is not offered (the form refuses it)
    other = Statement.objects.create(section=billing_setup.section, establishment=billing_setup.establishment,
                                     period=may, payer=billing_setup.payers["CD69"], statement_date=date(2026, 6, 3))
    refused = client.post(page_url, {**form, "statement": other.pk, "auto": "1"})
    assert refused.status_code == 400


def test_the_envois_tab_lists_what_was_mailed_to_the_payer(client, billing_setup, april, users, eager_celery):
    from mailing.models import OutgoingMessage

    est = billing_setup.establishment
    est.sender_email = "facturation@exemples.example"
    est.save()
    payer = billing_setup.payers["CD01"]
    statement, = statements_create(period=april, statement_date=date(2026, 5, 3))
    statements_validate(statements=[statement], today=date(2026, 5, 3))
    detail = reverse("payers:detail", kwargs={"alias": "EXA-HP", "pk": payer.pk})
    manager = UserFactory(username="manager")
    SectionAccess.objects.create(user=manager, section=billing_setup.section, role="manager")
    client.force_login(manager)
    page = client.get(detail, {"tab": "mails"}).content.decode()
    assert "Aucun courriel envoyé" in page and "ne reçoit rien par courriel" in page  # CD01 has no e-mail
    Payer.objects.filter(pk=payer.pk).update(email="apa@ain.example")
    statement = Statement.objects.select_related("payer", "establishment", "section", "period").get()
    statements_send(statements=[statement], start=False)
    message = OutgoingMessage.objects.get()
    # an unrelated message of the section is not listed
    OutgoingMessage.objects.create(organisation=est.organisation, section=billing_setup.section,
                                   sender_email="x@exemples.example", recipients=["y@exemples.example"],
                                   subject="Autre", body="…", related_key="billing.invoice:999999",
                                   message_id="<autre@exemples.example>")
    page = client.get(detail, {"tab": "mails"}).content.decode()
    assert f'data-key="{message.related_key}"' in page and "Bordereau EXA-BX-2026-000001" in page
    assert "apa@ain.example" in page and "Autre" not in page
    assert 'data-tab="mails"' in page
    # a manager of another section: 404 here, and the file seen from their section lists none of this one's mail
    client.force_login(users["other"])
    assert client.get(detail, {"tab": "mails"}).status_code == 404
    other_detail = reverse("payers:detail", kwargs={"alias": "EXA-HT", "pk": payer.pk})
    page = client.get(other_detail, {"tab": "mails"}).content.decode()
    assert "Aucun courriel envoyé" in page and message.related_key not in page
