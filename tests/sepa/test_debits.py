"""Debit batches (billing-rules.md §11): selection, collection date, pain.008 against the XSD (both
versions), amendments, FRST → RCUR only when sent, settlement, an invoice never twice."""
from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from lxml import etree

from billing.models import Invoice, Payment
from billing.services.payments import payment_record
from billing.services.issuing import credit_note_create
from residents.models import PaymentMode
from sepa.models import DebitBatch, DebitLine
from structures.models import SepaVersion
from sepa.selectors import invoices_in_unsettled_batches
from sepa.services import debits as svc
from sepa.services.mandates import mandate_change_account, mandate_create, mandate_revoke
from tests.billing.payment_helpers import paying_relative, resident_in
from tests.factories import SectionFactory
from tests.sepa.helpers import IBAN_A, IBAN_A2, IBAN_B, active_mandate, creditor_for, debit_invoice, period_for

pytestmark = pytest.mark.django_db
TODAY = date(2026, 2, 2)
COLLECTION = date(2026, 2, 20)  # a Friday, 18 days later


@pytest.fixture
def setup():
    section = SectionFactory()
    creditor = creditor_for(section)
    period = period_for(section)
    return section, creditor, period


def _ns(batch):
    return {"p": f"urn:iso:std:iso:20022:tech:xsd:{batch.version}"}


def test_target_calendar():
    assert svc.target_business_day(date(2026, 2, 20))
    for closed in (date(2026, 2, 21), date(2026, 2, 22), date(2026, 1, 1), date(2026, 4, 3), date(2026, 4, 6),
                   date(2026, 5, 1), date(2026, 12, 25), date(2026, 12, 26)):
        assert not svc.target_business_day(closed), closed
    assert svc.target_business_day(date(2026, 7, 14))  # French holiday, TARGET open


def test_collection_date_refusals(setup):
    section, creditor, period = setup
    with pytest.raises(ValidationError, match="pré-notification est de 14 jours"):
        svc.collection_date_check(creditor=creditor, collection_date=date(2026, 2, 13), today=TODAY)
    with pytest.raises(ValidationError, match="jour ouvré TARGET"):
        svc.collection_date_check(creditor=creditor, collection_date=date(2026, 4, 6), today=TODAY)
    creditor.sepa_prenotification_days = 5
    svc.collection_date_check(creditor=creditor, collection_date=date(2026, 2, 9), today=TODAY)


def test_selection_and_exclusions(setup):
    section, creditor, period = setup
    ok = resident_in(section)
    active_mandate(section, ok)
    to_collect = debit_invoice(period, ok, "1500.00")
    none = resident_in(section)
    no_mandate = debit_invoice(period, none, "100.00")
    revoked = resident_in(section)
    mandate_revoke(mandate=active_mandate(section, revoked), on=date(2026, 1, 10), reason="Décès")
    inv_revoked = debit_invoice(period, revoked, "100.00")
    cheque = resident_in(section)
    debit_invoice(period, cheque, "100.00", mode=PaymentMode.CHEQUE)
    payer = resident_in(section)
    relative = paying_relative(payer)
    active_mandate(section, payer, IBAN_B, relative=relative)
    by_relative = debit_invoice(period, payer, "80.00", relative=relative)
    selection = svc.batch_selection(period=period)
    assert sorted((c.invoice.pk, c.amount, c.sequence_type) for c in selection.candidates) == [
        (to_collect.pk, Decimal("1500.00"), "FRST"), (by_relative.pk, Decimal("80.00"), "FRST")]
    reasons = {e.invoice.pk: e.reason for e in selection.exclusions}
    assert reasons == {no_mandate.pk: "Aucun mandat.", inv_revoked.pk: "Mandat révoqué."}


def test_batch_file_valid_for_both_versions(setup):
    section, creditor, period = setup
    for n in range(3):
        resident = resident_in(section)
        active_mandate(section, resident)
        debit_invoice(period, resident, f"{1000 + n}.50")
    taken = resident_in(section)
    mandate_create(establishment=section.establishment, resident=taken, iban=IBAN_B, account_holder="Repris",
                   rum="ANCIEN-42", signature_date=date(2020, 5, 1), last_collection_date=date(2025, 12, 5))
    debit_invoice(period, taken, "99.99")
    for version, bic_tag in ((SepaVersion.V08, "BICFI"), (SepaVersion.V02, "BIC")):
        creditor.sepa_version = version
        creditor.save()
        batch = svc.debit_batch_create(period=period, collection_date=COLLECTION, today=TODAY)
        batch = svc.debit_batch_generate(batch=batch)
        assert batch.status == DebitBatch.Status.GENERATED and batch.version == version
        root = etree.fromstring(batch.xml.encode())
        assert svc.xml_schema(version).validate(root)
        ns = _ns(batch)
        blocks = {b.findtext("p:PmtTpInf/p:SeqTp", namespaces=ns): int(b.findtext("p:NbOfTxs", namespaces=ns))
                  for b in root.iterfind(".//p:PmtInf", ns)}
        assert blocks == {"FRST": 3, "RCUR": 1}
        assert root.findtext(".//p:GrpHdr/p:CtrlSum", namespaces=ns) == "3104.49"
        assert root.find(f".//p:CdtrAgt/p:FinInstnId/p:{bic_tag}", ns).text == "BREDFRPPXXX"
        e2e = [e.text for e in root.iterfind(".//p:EndToEndId", ns)]
        numbers = list(Invoice.objects.filter(period=period).order_by("number").values_list("number", flat=True))
        assert sorted(e2e) == numbers
        remittances = [e.text for e in root.iterfind(".//p:Ustrd", ns)]
        assert all(r.startswith("Facture ") for r in remittances)
        assert root.findtext(".//p:Cdtr/p:PstlAdr/p:TwnNm", namespaces=ns) == "Lyon"
        totals = svc.debit_batch_totals(batch)
        assert totals["count"] == 4 and totals["total"] == Decimal("3104.49")
        assert totals["per_sequence"]["RCUR"] == {"count": 1, "total": Decimal("99.99")}
        svc.debit_batch_cancel(batch=batch)  # frees the invoices for the other version


def test_xsd_refuses_a_broken_file(setup):
    section, creditor, period = setup
    resident = resident_in(section)
    active_mandate(section, resident)
    debit_invoice(period, resident, "10.00")
    batch = svc.debit_batch_generate(batch=svc.debit_batch_create(period=period, collection_date=COLLECTION,
                                                                 today=TODAY))
    broken = batch.xml.replace("<SeqTp>FRST</SeqTp>", "<SeqTp>XXXX</SeqTp>").encode()
    with pytest.raises(ValidationError, match="ne respecte pas le schéma"):
        svc.xml_validate(broken, batch.version)


def test_frst_becomes_rcur_only_when_sent_then_settled(setup):
    section, creditor, period = setup
    resident = resident_in(section)
    mandate = active_mandate(section, resident)
    invoice = debit_invoice(period, resident, "1500.00")
    batch = svc.debit_batch_generate(batch=svc.debit_batch_create(period=period, collection_date=COLLECTION,
                                                                 today=TODAY))
    mandate.refresh_from_db()
    assert mandate.next_sequence_type == "FRST" and mandate.last_collection_date is None
    assert invoices_in_unsettled_batches([invoice.pk, 999999]) == {invoice.pk}
    with pytest.raises(ValidationError, match="Seul un lot envoyé"):
        svc.debit_batch_settle(batch=batch, today=COLLECTION)  # not sent yet
    svc.debit_batch_mark_sent(batch=batch)
    mandate.refresh_from_db()
    assert mandate.next_sequence_type == "RCUR" and mandate.last_collection_date == COLLECTION
    with pytest.raises(ValidationError, match="ne peut plus être annulé"):
        svc.debit_batch_cancel(batch=batch)
    with pytest.raises(ValidationError, match="à partir de sa date"):
        svc.debit_batch_settle(batch=batch, today=COLLECTION.replace(day=19))
    svc.debit_batch_settle(batch=batch, today=COLLECTION)
    invoice.refresh_from_db()
    assert invoice.paid_amount == Decimal("1500.00")
    payment = Payment.objects.get(invoice=invoice)
    assert payment.mode == Payment.Mode.DIRECT_DEBIT and payment.date == COLLECTION
    assert payment.reference == DebitLine.objects.get(invoice=invoice).end_to_end_id
    assert invoices_in_unsettled_batches([invoice.pk]) == set()


def test_batch_never_includes_an_invoice_twice(setup):
    section, creditor, period = setup
    resident = resident_in(section)
    active_mandate(section, resident)
    invoice = debit_invoice(period, resident, "10.00")
    batch = svc.debit_batch_create(period=period, collection_date=COLLECTION, today=TODAY)
    with pytest.raises(ValidationError, match="Aucune facture à prélever"):
        svc.debit_batch_create(period=period, collection_date=COLLECTION, today=TODAY)
    assert {e.reason for e in svc.batch_selection(period=period).exclusions} == {f"Déjà dans le lot n° {batch.pk}."}
    line = batch.lines.get()
    with pytest.raises(IntegrityError), transaction.atomic():  # the database refuses it too
        DebitLine.objects.create(batch=batch, invoice=invoice, mandate=line.mandate, amount=1, sequence_type="FRST",
                                 end_to_end_id="X", iban=IBAN_A, debtor_name="X", remittance="X")
    svc.debit_batch_cancel(batch=batch)
    again = svc.debit_batch_create(period=period, collection_date=COLLECTION, today=TODAY)
    assert again.lines.get().invoice == invoice


@pytest.mark.parametrize("new_iban, original", [(IBAN_A2, IBAN_A), (IBAN_B, "SMNDA")])
def test_amendment_after_an_iban_change(setup, new_iban, original):
    section, creditor, period = setup
    resident = resident_in(section)
    mandate = active_mandate(section, resident, IBAN_A, last_collection_date=date(2025, 12, 5))
    mandate_change_account(mandate=mandate, iban=new_iban, on=date(2026, 1, 15))
    mandate.refresh_from_db()
    assert mandate.rum and mandate.iban == new_iban and mandate.original_iban == IBAN_A
    assert list(mandate.accounts.values_list("iban", flat=True)) == [IBAN_A, new_iban]
    other = resident_in(section)
    active_mandate(section, other, IBAN_B)
    debit_invoice(period, resident, "10.00")
    debit_invoice(period, other, "20.00")
    for version in (SepaVersion.V08, SepaVersion.V02):
        creditor.sepa_version = version
        creditor.save()
        batch = svc.debit_batch_generate(batch=svc.debit_batch_create(period=period, collection_date=COLLECTION,
                                                                     today=TODAY))
        ns = _ns(batch)
        root = etree.fromstring(batch.xml.encode())
        related = {tx.findtext("p:DrctDbtTx/p:MndtRltdInf/p:MndtId", namespaces=ns): tx.find("p:DrctDbtTx/p:MndtRltdInf", ns)
                   for tx in root.iterfind(".//p:DrctDbtTxInf", ns)}
        amended = related.pop(mandate.rum)
        assert amended.findtext("p:AmdmntInd", namespaces=ns) == "true"
        account = amended.find("p:AmdmntInfDtls/p:OrgnlDbtrAcct/p:Id", ns)
        assert (account.findtext("p:IBAN", namespaces=ns) or account.findtext("p:Othr/p:Id", namespaces=ns)) == original
        assert [r.find("p:AmdmntInd", ns) for r in related.values()] == [None]
        if version == SepaVersion.V08:
            svc.debit_batch_cancel(batch=batch)
    svc.debit_batch_mark_sent(batch=batch)
    mandate.refresh_from_db()
    assert mandate.original_iban == ""  # consumed: the next batch carries no amendment


def test_frst_after_amendment_bank_option(setup):
    section, creditor, period = setup
    creditor.sepa_frst_after_amendment = True
    creditor.save()
    resident = resident_in(section)
    mandate = active_mandate(section, resident, IBAN_A, last_collection_date=date(2025, 12, 5))
    mandate_change_account(mandate=mandate, iban=IBAN_B)
    debit_invoice(period, resident, "10.00")
    batch = svc.debit_batch_create(period=period, collection_date=COLLECTION, today=TODAY)
    assert batch.lines.get().sequence_type == "FRST"


def test_zero_balance_and_credit_note_excluded(setup):
    section, creditor, period = setup
    resident = resident_in(section)
    active_mandate(section, resident)
    invoice = debit_invoice(period, resident, "10.00")
    paid = debit_invoice(period, resident, "20.00")
    payment_record(section=section, on=date(2026, 2, 1), amount="20.00", mode="cheque", invoice=paid)
    note = credit_note_create(invoice=invoice, lines={invoice.lines.get().pk: Decimal("4.00")}, reason="Erreur",
                              issue_date=date(2026, 1, 31))
    selection = svc.batch_selection(period=period)
    reasons = {e.invoice.pk: e.reason for e in selection.exclusions}
    assert reasons == {paid.pk: "Solde nul : déjà réglée.", note.pk: "Avoir : rien à prélever."}
    invoice.refresh_from_db()
    assert [(c.invoice.pk, c.amount) for c in selection.candidates] == [(invoice.pk, invoice.total - invoice.paid_amount)]


def test_batch_listing_rows_totals_and_spreadsheet_rows(setup, django_assert_num_queries):
    """``debit_batch_listing``: one row per active line sorted by sequence then debtor — an invoice's
    number and resident, an installment's remittance and its plan's resident —, the totals, and the
    spreadsheet rows with a total per sequence and the batch's; two queries whatever the size."""
    from sepa.services.installments import plan_create

    section, _creditor, period = setup
    zoe, adam, mensualised = resident_in(section, last_name="Zola"), resident_in(section, last_name="Abel"), \
        resident_in(section, last_name="Martin")
    zoe_mandate = active_mandate(section, zoe)
    adam_mandate = active_mandate(section, adam, IBAN_B, last_collection_date=date(2025, 12, 20))
    plan_mandate = active_mandate(section, mensualised, IBAN_A2)
    zoe_invoice, adam_invoice = debit_invoice(period, zoe, "1500.00"), debit_invoice(period, adam, "1234.56")
    plan = plan_create(section=section, resident=mensualised, yearly_amount="1200", first_month=date(2026, 1, 1),
                       installment_count=10, debit_day=10)
    batch = svc.debit_batch_create(period=period, collection_date=COLLECTION, today=TODAY)
    with django_assert_num_queries(2):
        listing = svc.debit_batch_listing(batch)
    remittance = f"Mensualisation 01/2026 échéance 1/10 {mensualised.full_name}"
    assert listing.rows == [
        (mensualised.last_name, plan_mandate.rum, "FRST", Decimal("120.00"), remittance, mensualised.full_name),
        (zoe.last_name, zoe_mandate.rum, "FRST", Decimal("1500.00"), zoe_invoice.number, zoe_invoice.resident_name),
        (adam.last_name, adam_mandate.rum, "RCUR", Decimal("1234.56"), adam_invoice.number, adam_invoice.resident_name)]
    assert listing.headers == ["Débiteur", "RUM", "Séquence", "Montant", "Facture", "Résident"]
    assert listing.totals["count"] == 3 and listing.totals["total"] == Decimal("2854.56")
    assert listing.spreadsheet_rows()[3:] == [
        (), ("Total FRST", "", "FRST", Decimal("1620.00"), "2 prélèvement(s)", ""),
        ("Total RCUR", "", "RCUR", Decimal("1234.56"), "1 prélèvement(s)", ""),
        ("Total du lot", "", "", Decimal("2854.56"), "3 prélèvement(s)", "")]
    svc.debit_batch_cancel(batch=batch)  # cancelled: its lines are no longer listed
    assert svc.debit_batch_listing(batch).rows == [] and svc.debit_batch_listing(batch).totals["count"] == 0
