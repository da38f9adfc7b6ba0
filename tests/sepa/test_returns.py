"""Returns and rejects: pain.002 (.001.03, .001.10) and camt.054, matched on the end-to-end id, one
payment reversed, §11 mandate actions, idempotent, bad files refused whole."""
from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from billing.models import Payment
from sepa.models import Mandate
from sepa.services import debits
from sepa.services.returns import returns_apply
from tests.billing.payment_helpers import resident_in
from tests.factories import SectionFactory
from tests.sepa.helpers import active_mandate, creditor_for, debit_invoice, period_for

pytestmark = pytest.mark.django_db
TODAY, COLLECTION = date(2026, 2, 2), date(2026, 2, 20)


def pain002(version, rows):
    txs = "".join(f"<TxInfAndSts><OrgnlEndToEndId>{e2e}</OrgnlEndToEndId><TxSts>RJCT</TxSts>"
                  f"<StsRsnInf><Rsn><Cd>{code}</Cd></Rsn></StsRsnInf></TxInfAndSts>" for e2e, code in rows)
    return (f'<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.{version}">'
            f"<CstmrPmtStsRpt><OrgnlPmtInfAndSts>{txs}</OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>").encode()


def camt054(rows):
    txs = "".join(f"<TxDtls><Refs><EndToEndId>{e2e}</EndToEndId></Refs><Amt Ccy=\"EUR\">{amount}</Amt>"
                  f"<RtrInf><Rsn><Cd>{code}</Cd></Rsn></RtrInf></TxDtls>" for e2e, code, amount in rows)
    return (f'<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.054.001.08">'
            f"<BkToCstmrDbtCdtNtfctn><Ntfctn><Ntry><NtryDtls>{txs}</NtryDtls></Ntry></Ntfctn>"
            f"</BkToCstmrDbtCdtNtfctn></Document>").encode()


@pytest.fixture
def settled():
    section = SectionFactory()
    creditor_for(section)
    period = period_for(section)
    invoices, mandates = [], []
    for total in ("100.00", "200.00", "300.00"):
        resident = resident_in(section)
        mandates.append(active_mandate(section, resident))
        invoices.append(debit_invoice(period, resident, total))
    batch = debits.debit_batch_create(period=period, collection_date=COLLECTION, today=TODAY)
    debits.debit_batch_mark_sent(batch=debits.debit_batch_generate(batch=batch))
    debits.debit_batch_settle(batch=batch, today=COLLECTION)
    return invoices, mandates


def test_pain002_reverses_one_payment_and_is_idempotent(settled, tmp_path):
    invoices, mandates = settled
    content = pain002("001.03", [(invoices[0].number, "AM04"), (invoices[1].number, "MD07"), ("INCONNU-1", "AC01")])
    report = returns_apply(content=content, on=COLLECTION)
    assert report.applied == [invoices[0].number, invoices[1].number] and report.unmatched == ["INCONNU-1"]
    for invoice in invoices:
        invoice.refresh_from_db()
    assert [i.paid_amount for i in invoices] == [Decimal("0.00"), Decimal("0.00"), Decimal("300.00")]
    cancelled = Payment.objects.filter(cancelled_at__isnull=False)
    assert cancelled.count() == 2
    assert "Provision insuffisante" in cancelled.get(invoice=invoices[0]).cancel_reason
    statuses = [Mandate.objects.get(pk=m.pk).status for m in mandates]
    assert statuses == [Mandate.Status.ACTIVE, Mandate.Status.SUSPENDED, Mandate.Status.ACTIVE]
    again = returns_apply(content=content, on=COLLECTION)
    assert again.applied == [] and len(again.already) == 2
    assert Payment.objects.filter(cancelled_at__isnull=False).count() == 2
    path = tmp_path / "rejets.xml"
    path.write_bytes(content)
    call_command("sepa_returns", str(path))  # third time: still nothing changes
    assert Payment.objects.filter(cancelled_at__isnull=False).count() == 2


def test_pain002_v10_and_camt054(settled):
    invoices, mandates = settled
    returns_apply(content=pain002("001.10", [(invoices[0].number, "MS03")]))
    returns_apply(content=camt054([(invoices[2].number, "MD06", "300.00")]))
    for invoice in invoices:
        invoice.refresh_from_db()
    assert [i.paid_amount for i in invoices] == [Decimal("0.00"), Decimal("200.00"), Decimal("0.00")]
    assert "remboursé au débiteur" in Payment.objects.get(invoice=invoices[2]).cancel_reason
    assert Mandate.objects.filter(status=Mandate.Status.SUSPENDED).count() == 0


def test_bad_files_refused_whole(settled, tmp_path):
    invoices, mandates = settled
    with pytest.raises(ValidationError, match="XML invalide"):
        returns_apply(content=b"<Document><oops>")
    with pytest.raises(ValidationError, match="ni un pain.002 ni un camt.054"):
        returns_apply(content=b'<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.008.001.08"/>')
    incomplete = pain002("001.03", [(invoices[0].number, "AM04")]).replace(b"<Cd>AM04</Cd>", b"")
    with pytest.raises(ValidationError, match="sans référence de bout en bout ou sans motif"):
        returns_apply(content=incomplete)
    assert not Payment.objects.filter(cancelled_at__isnull=False).exists()
    path = tmp_path / "x.xml"
    path.write_bytes(b"pas du xml")
    with pytest.raises(CommandError, match="refusé, rien n'a été appliqué"):
        call_command("sepa_returns", str(path))


def test_reject_before_settlement_is_not_collected():
    section = SectionFactory()
    creditor_for(section)
    period = period_for(section)
    resident = resident_in(section)
    active_mandate(section, resident)
    invoice = debit_invoice(period, resident, "50.00")
    batch = debits.debit_batch_create(period=period, collection_date=COLLECTION, today=TODAY)
    debits.debit_batch_mark_sent(batch=debits.debit_batch_generate(batch=batch))
    returns_apply(content=pain002("001.03", [(invoice.number, "AC04")]))
    debits.debit_batch_settle(batch=batch, today=COLLECTION)
    invoice.refresh_from_db()
    assert invoice.paid_amount == Decimal("0.00") and not Payment.objects.exists()


def test_returns_screen(settled, client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from structures.models import SectionAccess
    from tests.factories import SectionAccessFactory, UserFactory

    invoices, mandates = settled
    section = invoices[0].section
    url = f"/s/{section.alias}/prelevements/retours/"
    reader = UserFactory()
    SectionAccessFactory(user=reader, section=section, role=SectionAccess.Role.READER)
    client.force_login(reader)
    upload = SimpleUploadedFile("rejets.xml", pain002("001.03", [(invoices[0].number, "AM04")]))
    assert client.post(url, {"file": upload}).status_code == 403
    clerk = UserFactory()
    SectionAccessFactory(user=clerk, section=section)
    client.force_login(clerk)
    upload = SimpleUploadedFile("rejets.xml", pain002("001.03", [(invoices[0].number, "AM04"), ("X-9", "AM04")]))
    page = client.post(url, {"file": upload}, follow=True).content.decode()
    assert "1 rejet(s) ou retour(s) appliqué(s)" in page and "Sans correspondance : X-9" in page
    page = client.post(url, {"file": SimpleUploadedFile("x.xml", b"<a")}, follow=True).content.decode()
    assert "refusé, rien n&#x27;a été appliqué" in page or "refusé, rien n'a été appliqué" in page


def test_bulk_reversal_keeps_the_entries_and_the_audit_trail(settled):
    """The returns are applied in bulk (``payments_cancel_many``): the same entries as ``payment_cancel``
    — one negative allocation per payment, the paid-amount cache equal to the entries — an audit-log
    row per cancelled payment and per new allocation, and a constant number of queries."""
    from auditlog.models import LogEntry
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from billing.models import PaymentAllocation
    from billing.services.payments import invoice_paid_amount_check

    invoices, _mandates = settled
    with CaptureQueriesContext(connection) as two:
        returns_apply(content=pain002("001.03", [(invoices[0].number, "AM04"), (invoices[1].number, "AM04")]),
                      on=COLLECTION)
    for invoice in invoices:
        invoice.refresh_from_db()
        assert invoice_paid_amount_check(invoice) == invoice.paid_amount
    negatives = PaymentAllocation.objects.filter(amount__lt=0)
    assert sorted(a.amount for a in negatives) == [Decimal("-200.00"), Decimal("-100.00")]
    cancelled = list(Payment.objects.filter(cancelled_at__isnull=False))
    payment_logs = LogEntry.objects.filter(content_type__model="payment", action=LogEntry.Action.UPDATE)
    assert {int(e.object_pk) for e in payment_logs} == {p.pk for p in cancelled}
    assert all("Provision insuffisante" in e.changes["cancel_reason"][1] for e in payment_logs)
    allocation_logs = LogEntry.objects.filter(content_type__model="paymentallocation", action=LogEntry.Action.CREATE,
                                              object_pk__in=[str(a.pk) for a in negatives])
    assert allocation_logs.count() == 2
    with CaptureQueriesContext(connection) as one:
        returns_apply(content=pain002("001.03", [(invoices[2].number, "AM04")]), on=COLLECTION)
    assert len(one) == len(two)  # the same statements for one line or two
