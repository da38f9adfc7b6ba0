"""*Relevé de compte*: opening balance, entries in date order with a running balance, closing balance;
PDF text, XLSX cells, e-mail through the outbox, and the section scoping of the views.

Account of DURAND Marie (hand-computed): invoice A 100,00 (05/01/2026), cheque 100,00 (20/01),
invoice B 150,00 (05/02), transfer 200,00 (10/03: 150,00 on B, 50,00 credit), refund 50,00 (02/04).
From 01/02 to 31/03: opening 0,00; B → 150,00; transfer → -50,00; closing -50,00 (a credit).
"""
import io
import re
from datetime import date
from decimal import Decimal

import openpyxl
import pytest
from django.urls import reverse
from pypdf import PdfReader

from billing.services import payments as pay
from billing.services import account_statements as statements
from billing.services.payments import Debtor
from mailing.models import OutgoingMessage
from mailing.services.outbox import outbox_run
from structures.models import SectionAccess
from tests.billing.payment_helpers import issued_invoice, paying_relative, resident_in
from tests.factories import SectionAccessFactory, SectionFactory, UserFactory

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.fixture
def account():
    section = SectionFactory(alias="REL-HP")
    durand = resident_in(section, last_name="DURAND", first_name="Marie", external_ref="R010",
                         email="marie.durand@example.org")
    a = issued_invoice(section, durand, "100.00", date(2026, 1, 5))
    pay.payment_record(section=section, invoice=a, on=date(2026, 1, 20), amount=D("100.00"), mode="cheque",
                       reference="111")
    b = issued_invoice(section, durand, "150.00", date(2026, 2, 5))
    pay.payment_record(section=section, invoice=b, on=date(2026, 3, 10), amount=D("200.00"), mode="transfer",
                       reference="VIR DURAND")
    debtor = Debtor(section.pk, "resident", resident_id=durand.pk)
    pay.refund_record(debtor=debtor, on=date(2026, 4, 2), amount=D("50.00"), mode="cheque", reference="R-1")
    return {"section": section, "resident": durand, "a": a, "b": b}


def _text(pdf: bytes) -> str:
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)
    return re.sub(r"\s+", " ", text.replace("\u202f", " ").replace("\u00a0", " "))


def test_range_has_opening_running_and_closing_balances(account):
    st = statements.statement_build(section=account["section"], resident=account["resident"],
                                    start=date(2026, 2, 1), end=date(2026, 3, 31))
    assert st.opening == D("0.00")
    assert [(e["date"], e["reference"], e["balance"]) for e in st.entries] == [
        (date(2026, 2, 5), account["b"].number, D("150.00")), (date(2026, 3, 10), "VIR DURAND", D("-50.00"))]
    assert st.closing == D("-50.00")
    year = statements.statement_build(section=account["section"], resident=account["resident"],
                                      start=date(2026, 1, 1), end=date(2026, 12, 31))
    assert [e["balance"] for e in year.entries] == [D("100.00"), D("0.00"), D("150.00"), D("-50.00"), D("0.00")]
    later = statements.statement_build(section=account["section"], resident=account["resident"],
                                       start=date(2026, 3, 1), end=date(2026, 3, 31))
    assert later.opening == D("150.00") and later.closing == D("-50.00")


def test_start_after_end_is_refused(account):
    with pytest.raises(Exception, match="après la date de fin"):
        statements.statement_build(section=account["section"], resident=account["resident"],
                                   start=date(2026, 4, 1), end=date(2026, 3, 1))


def test_pdf_and_xlsx(account):
    st = statements.statement_build(section=account["section"], resident=account["resident"],
                                    start=date(2026, 2, 1), end=date(2026, 3, 31))
    text = _text(statements.statement_pdf(st))
    for expected in ("Relevé de compte", "Du 01/02/2026 au 31/03/2026", "DURAND Marie", "Solde d'ouverture 0,00 €",
                     f"05/02/2026 Facture {account['b'].number} 150,00 € 150,00 €",
                     "10/03/2026 Règlement virement VIR DURAND 200,00 € -50,00 €",
                     "50,00 € en votre faveur"):
        assert expected in text, expected
    book = openpyxl.load_workbook(io.BytesIO(statements.statement_xlsx(st)))
    rows = [list(r) for r in book.active.iter_rows(values_only=True)]
    assert rows[0] == ["DATE", "ECRITURE", "PIECE", "DEBIT", "CREDIT", "SOLDE"]
    assert rows[1][1] == "Solde au 01/02/2026" and rows[1][5] == 0
    assert rows[2][2:] == [account["b"].number, 150, None, 150]
    assert rows[3][2:] == ["VIR DURAND", None, 200, -50]
    assert rows[4][1] == "Solde au 31/03/2026" and rows[4][5] == -50


def test_paying_relative_account_is_its_own(account):
    relative = paying_relative(account["resident"], last_name="DURAND", first_name="Luc", email="luc@example.org")
    issued_invoice(account["section"], account["resident"], "80.00", date(2026, 4, 5), relative=relative)
    st = statements.statement_build(section=account["section"], resident=account["resident"], start=date(2026, 1, 1),
                                    end=date(2026, 12, 31), relative_id=relative.pk)
    assert [e["balance"] for e in st.entries] == [D("80.00")]
    assert statements.statement_recipients(st) == ["luc@example.org"]


def test_sent_through_the_outbox_with_the_pdf(account):
    from tests.mailing.servers import SmtpServer

    est = account["section"].establishment
    est.sender_name, est.sender_email = "Facturation", "facturation@exemples.example"
    est.save()
    org = est.organisation
    org.mail_delay_seconds, org.mail_pause_every, org.mail_pause_seconds = 0, 0, 0
    st = statements.statement_build(section=account["section"], resident=account["resident"],
                                    start=date(2026, 2, 1), end=date(2026, 3, 31))
    with SmtpServer() as server:
        org.smtp_host, org.smtp_port, org.smtp_security = "127.0.0.1", server.port, "none"
        org.save()
        campaign = statements.statement_send(statement=st, start=False)
        outbox_run(OutgoingMessage.objects.filter(campaign=campaign), progress=lambda r: None)
        assert len(server.received) == 1
        received = server.received[0]
    assert received.rcpt_tos == ["marie.durand@example.org"]
    assert received.message["Subject"] == "Relevé de compte du 01/02/2026 au 31/03/2026 — DURAND Marie"
    attachment = next(received.message.iter_attachments())
    assert "50,00 € en votre faveur" in _text(attachment.get_content())


def test_views_scoping(client, account):
    section = account["section"]
    reader, clerk, stranger = UserFactory(), UserFactory(), UserFactory()
    SectionAccessFactory(user=reader, section=section, role=SectionAccess.Role.READER)
    SectionAccessFactory(user=clerk, section=section, role=SectionAccess.Role.CLERK)
    kw = {"alias": section.alias, "pk": account["resident"].pk}
    pdf_url = reverse("billing:account-statement", kwargs={**kw, "fmt": "pdf"}) + "?du=2026-02-01&au=2026-03-31"
    xlsx_url = reverse("billing:account-statement", kwargs={**kw, "fmt": "xlsx"}) + "?du=2026-02-01&au=2026-03-31"
    send_url = reverse("billing:account-statement-send", kwargs=kw)
    client.force_login(reader)
    response = client.get(pdf_url)
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert client.get(xlsx_url).status_code == 200
    assert client.get(pdf_url.replace("du=2026-02-01", "du=2026-13-01")).status_code == 400
    page = client.get(reverse("billing:resident-account", kwargs=kw))
    assert "Relevé de compte du" in page.content.decode() and "statement-send" not in page.content.decode()
    assert client.post(send_url, {"du": "2026-02-01", "au": "2026-03-31"}).status_code == 403
    other = resident_in(SectionFactory(alias="REL-XX", establishment=section.establishment), last_name="AUTRE")
    foreign_relative = paying_relative(other)
    assert client.get(pdf_url + f"&proche={foreign_relative.pk}").status_code == 404
    client.force_login(stranger)
    assert client.get(pdf_url).status_code == 404
    client.force_login(clerk)
    response = client.post(send_url, {"du": "2026-02-01", "au": "2026-03-31", "email": "pas-une-adresse"})
    assert response.status_code == 302 and not OutgoingMessage.objects.exists()
