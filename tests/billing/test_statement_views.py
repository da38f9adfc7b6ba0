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
def eager_celery():
    from config.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture
def april(billing_setup):
    for gir in (1, 3):
        stay = billing_setup.stay(gir=gir, domicile="01")
        billing_setup.apa(stay, "CD01")
    period = billing_setup.period(date(2026, 4, 1), date(2026, 4, 30), label="avril 2026")
    period_generate(period=period)
    period_issue(period=period, issue_date=date(2026, 5, 2))
    return period


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
