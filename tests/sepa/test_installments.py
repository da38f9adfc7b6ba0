"""Mensualisation (billing-rules.md §11, seed 004): schedule, rounding on the last installment,
postponing (seed example, the last one), estimate from the tariffs, installments in the monthly batch
(XSD, both versions) and the mensualised resident's invoices left out, settlement → payment allocated
oldest first, return → payment reversed and installment rejected, régularisation."""
from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from lxml import etree

from billing.models import Invoice, Payment
from billing.services.payments import Debtor, debtor_credit
from sepa.models import DebitLine, Installment, InstallmentPlan, Mandate
from sepa.services import debits
from sepa.services import installments as svc
from sepa.services.returns import returns_apply
from structures.models import SepaVersion
from tests.billing.payment_helpers import paying_relative, resident_in
from tests.factories import SectionFactory
from tests.sepa.helpers import IBAN_B, active_mandate, creditor_for, debit_invoice, period_for
from tests.sepa.test_returns import pain002

pytestmark = pytest.mark.django_db
D = Decimal
TODAY, COLLECTION = date(2026, 2, 2), date(2026, 2, 20)
JANUARY = date(2026, 1, 1)


def amounts(plan):
    return [(i.number, i.amount, i.state) for i in plan.installments.order_by("number")]


@pytest.fixture
def section():
    section = SectionFactory()
    creditor_for(section)
    return section


def test_spread_puts_the_rounding_on_the_last():
    assert svc.spread(D("100"), 10) == [D("10.00")] * 10
    assert svc.spread(D("100"), 9) == [D("11.11")] * 8 + [D("11.12")]
    assert svc.spread(D("100"), 3) == [D("33.33"), D("33.33"), D("33.34")]
    assert svc.spread(D("200"), 3) == [D("66.67"), D("66.67"), D("66.66")]
    tiny = svc.spread(D("0.05"), 9)  # half-up would give 0.01 × 8 and a negative last one
    assert sum(tiny) == D("0.05") and min(tiny) >= 0
    assert sum(svc.spread(D("1234.57"), 7)) == D("1234.57")


def test_seed_example_100_in_10_one_postponed(section):
    """Seed 004: 100 € in 10 installments, one postponed → 9 × 11,11 € with the rounding on the last."""
    resident = resident_in(section)
    plan = svc.plan_create(section=section, resident=resident, yearly_amount="100,00", first_month=JANUARY,
                           installment_count=10, debit_day=10)
    assert amounts(plan) == [(n, D("10.00"), "due") for n in range(1, 11)]
    assert [i.due_date for i in plan.installments.order_by("number")][:3] == [
        date(2026, 1, 10), date(2026, 2, 10), date(2026, 3, 10)]
    svc.installment_postpone(installment=plan.installments.get(number=1), on=date(2026, 1, 2))
    rows = amounts(plan)
    assert rows[0] == (1, D("10.00"), "postponed")
    assert [a for _n, a, _s in rows[1:]] == [D("11.11")] * 8 + [D("11.12")]
    assert sum(a for _n, a, s in rows if s == "due") == D("100.00")
    with pytest.raises(ValidationError, match="seule une échéance à venir"):
        svc.installment_postpone(installment=plan.installments.get(number=1))


def test_postponing_the_last_installment_moves_it_a_month_later(section):
    resident = resident_in(section)
    plan = svc.plan_create(section=section, resident=resident, yearly_amount=D("30"), first_month=JANUARY,
                           installment_count=3, debit_day=5)
    Installment.objects.filter(plan=plan, number__in=[1, 2]).update(state=Installment.State.COLLECTED)
    svc.installment_postpone(installment=plan.installments.get(number=3))
    assert amounts(plan) == [(1, D("10.00"), "collected"), (2, D("10.00"), "collected"),
                             (3, D("10.00"), "postponed"), (4, D("10.00"), "due")]
    assert plan.installments.get(number=4).due_date == date(2026, 4, 5)


def test_postpone_after_collections_spreads_what_is_left(section):
    resident = resident_in(section)
    plan = svc.plan_create(section=section, resident=resident, yearly_amount=D("100"), first_month=JANUARY,
                           installment_count=10, debit_day=10)
    Installment.objects.filter(plan=plan, number__lte=3).update(state=Installment.State.COLLECTED)
    svc.installment_postpone(installment=plan.installments.get(number=4))
    due = [a for _n, a, s in amounts(plan) if s == "due"]
    assert due == [D("11.67")] * 5 + [D("11.65")] and sum(due) == D("70.00")
    svc.plan_amount_change(plan=plan, yearly_amount="112,00")  # 82 € over the 6 open ones
    due = [a for _n, a, s in amounts(plan) if s == "due"]
    assert due == [D("13.67")] * 5 + [D("13.65")]


def test_plan_refusals(section):
    resident = resident_in(section)
    with pytest.raises(ValidationError, match="montant annuel doit être positif"):
        svc.plan_create(section=section, resident=resident, yearly_amount="0", first_month=JANUARY)
    with pytest.raises(ValidationError, match="Montant annuel invalide : « douze »"):
        svc.plan_create(section=section, resident=resident, yearly_amount="douze", first_month=JANUARY)
    with pytest.raises(ValidationError, match="Jour de prélèvement invalide : 31"):
        svc.plan_create(section=section, resident=resident, yearly_amount="100", first_month=JANUARY, debit_day=31)
    with pytest.raises(ValidationError, match="Nombre d'échéances invalide : 13"):
        svc.plan_create(section=section, resident=resident, yearly_amount="100", first_month=JANUARY,
                        installment_count=13)
    svc.plan_create(section=section, resident=resident, yearly_amount="100", first_month=JANUARY)
    with pytest.raises(ValidationError, match="déjà un échéancier en cours"):
        svc.plan_create(section=section, resident=resident, yearly_amount="100", first_month=JANUARY)
    other = resident_in(SectionFactory())
    with pytest.raises(ValidationError, match="aucun séjour dans cette section"):
        svc.plan_create(section=section, resident=other, yearly_amount="100", first_month=JANUARY)


def test_settings_defaults_and_stop(section):
    current = svc.installment_settings(section)
    assert current.pk is None and current.installment_count == 10 and "Échéancier" in current.title
    svc.installment_settings_save(section=section, installment_count=12, debit_day=5, title="Mon échéancier",
                                  header_text="En-tête", footer_text="Pied")
    resident = resident_in(section)
    plan = svc.plan_create(section=section, resident=resident, yearly_amount="1200", first_month=JANUARY)
    assert plan.installment_count == 12 and plan.debit_day == 5 and plan.installments.count() == 12
    Installment.objects.filter(plan=plan, number=1).update(state=Installment.State.COLLECTED)
    svc.plan_stop(plan=plan, on=date(2026, 2, 1))
    plan.refresh_from_db()
    assert plan.status == InstallmentPlan.Status.STOPPED
    assert {s for _n, _a, s in amounts(plan)} == {"collected", "cancelled"}
    with pytest.raises(ValidationError, match="est arrêté"):
        svc.plan_recompute(plan=plan)


def test_yearly_amount_estimate_from_the_tariffs(billing_setup):
    stay = billing_setup.stay(entry=date(2025, 6, 1))
    amount, note = svc.yearly_amount_estimate(section=billing_setup.section, resident=stay.resident, on=JANUARY)
    assert amount == D("65.00") * 365 + D("6.00") * 365 == D("25915.00")
    assert "Hébergement 65,00" in note and "ticket modérateur" in note and "× 365" in note
    with pytest.raises(ValidationError, match="pas de séjour en cours"):
        svc.yearly_amount_estimate(section=billing_setup.section, resident=stay.resident, on=date(2025, 1, 1))


# ------------------------------------------------------------------ debit batch

@pytest.fixture
def mensualised(section):
    """A mensualised resident with an active mandate (plan of 1 200 € in 10 from January) and a
    resident paying his invoice by direct debit."""
    period = period_for(section)
    resident = resident_in(section)
    active_mandate(section, resident)
    plan = svc.plan_create(section=section, resident=resident, yearly_amount="1200", first_month=JANUARY,
                           installment_count=10, debit_day=10)
    invoice = debit_invoice(period, resident, "150.00")
    other = resident_in(section)
    active_mandate(section, other, IBAN_B)
    other_invoice = debit_invoice(period, other, "80.00")
    return period, plan, invoice, other_invoice


def test_batch_includes_installments_and_excludes_mensualised_invoices(section, mensualised):
    period, plan, invoice, other_invoice = mensualised
    no_mandate = resident_in(section)
    svc.plan_create(section=section, resident=no_mandate, yearly_amount="600", first_month=JANUARY)
    selection = debits.batch_selection(period=period)
    first = plan.installments.get(number=1)
    assert [(c.invoice, c.installment, c.amount) for c in selection.candidates] == [
        (other_invoice, None, D("80.00")), (None, first, D("120.00"))]
    reasons = {e.label: e.reason for e in selection.exclusions}
    assert reasons[f"Facture {invoice.number} — {invoice.debtor_name}"].startswith("Mensualisé")
    assert reasons[f"Échéance 1 de {no_mandate.full_name}"] == "Aucun mandat."
    assert len(reasons) == 2  # February's installments are not due in January
    for version, _tag in ((SepaVersion.V08, "BICFI"), (SepaVersion.V02, "BIC")):
        section.establishment.sepa_version = version
        section.establishment.save()
        batch = debits.debit_batch_generate(batch=debits.debit_batch_create(
            period=period, collection_date=COLLECTION, today=TODAY))
        root = etree.fromstring(batch.xml.encode())
        assert debits.xml_schema(version).validate(root)
        ns = {"p": f"urn:iso:std:iso:20022:tech:xsd:{version}"}
        txs = {tx.findtext("p:PmtId/p:EndToEndId", namespaces=ns): tx for tx in root.iterfind(".//p:DrctDbtTxInf", ns)}
        assert set(txs) == {other_invoice.number, f"ECHEANCE-{plan.pk}-01"}
        tx = txs[f"ECHEANCE-{plan.pk}-01"]
        assert tx.findtext("p:InstdAmt", namespaces=ns) == "120.00"
        remittance = tx.findtext("p:RmtInf/p:Ustrd", namespaces=ns)
        assert remittance.startswith("Mensualisation 01/2026 echeance 1/10 ")  # sepaxml transliterates
        assert root.findtext(".//p:GrpHdr/p:CtrlSum", namespaces=ns) == "200.00"
        line = batch.lines.get(installment=first)
        assert line.invoice is None and line.end_to_end_id == f"ECHEANCE-{plan.pk}-01"
        with pytest.raises(ValidationError, match="déjà dans un lot"):
            svc.installment_postpone(installment=first)
        again = debits.batch_selection(period=period)
        assert f"Déjà dans le lot n° {batch.pk}." in {e.reason for e in again.exclusions if e.installment}
        if version == SepaVersion.V08:
            debits.debit_batch_cancel(batch=batch)  # the installment is free again for the other version
    assert DebitLine.objects.filter(installment=first, active=True).count() == 1


def test_an_installment_no_batch_collected_is_taken_by_the_next_months_batch(section, mensualised):
    period, plan, _invoice, _other = mensualised
    january, february = plan.installments.get(number=1), plan.installments.get(number=2)
    march_period = period_for(section, date(2026, 3, 1), date(2026, 3, 31))
    # No batch was built in January nor February: March's batch collects both, and March's own.
    picked = [c.installment for c in debits.batch_selection(period=march_period).candidates if c.installment]
    assert picked == [january, february, plan.installments.get(number=3)]
    # Once in a batch, an installment is never offered again by a later month.
    debits.debit_batch_generate(batch=debits.debit_batch_create(period=period, collection_date=COLLECTION,
                                                                today=TODAY))
    picked = [c.installment for c in debits.batch_selection(period=march_period).candidates if c.installment]
    assert january not in picked and february in picked


def test_settlement_credits_the_account_oldest_first_and_return_reverses(section, mensualised):
    period, plan, invoice, _other = mensualised
    resident = plan.resident
    older = debit_invoice(period_for(section, date(2025, 12, 1), date(2025, 12, 31)), resident, "30.00",
                          issued=date(2025, 12, 31))
    batch = debits.debit_batch_create(period=period, collection_date=COLLECTION, today=TODAY)
    debits.debit_batch_mark_sent(batch=debits.debit_batch_generate(batch=batch))
    debits.debit_batch_settle(batch=batch, today=COLLECTION)
    first = plan.installments.get(number=1)
    assert first.state == Installment.State.COLLECTED
    payment = Payment.objects.get(reference=f"ECHEANCE-{plan.pk}-01")
    assert payment.invoice is None and payment.amount == D("120.00") and payment.mode == Payment.Mode.DIRECT_DEBIT
    assert "échéance 1/10" in payment.comment
    older.refresh_from_db()
    invoice.refresh_from_db()
    assert older.paid_amount == D("30.00") and invoice.paid_amount == D("90.00")  # oldest due first (§9)
    debtor = Debtor(section.pk, Invoice.DebtorKind.RESIDENT, resident_id=resident.pk)
    assert debtor_credit(debtor) == D("0.00")
    regularisation = svc.plan_regularisation(plan, until=date(2026, 1, 31))
    assert (regularisation.received, regularisation.invoiced, regularisation.difference) == (
        D("120.00"), D("150.00"), D("-30.00"))  # December's invoice is before the plan year
    report = returns_apply(content=pain002("001.03", [(f"ECHEANCE-{plan.pk}-01", "AM04")]), on=date(2026, 2, 25))
    assert report.applied == [f"ECHEANCE-{plan.pk}-01"]
    first.refresh_from_db()
    payment.refresh_from_db()
    assert first.state == Installment.State.REJECTED and payment.cancelled_at is not None
    older.refresh_from_db()
    invoice.refresh_from_db()
    assert older.paid_amount == D("0.00") and invoice.paid_amount == D("0.00")
    assert returns_apply(content=pain002("001.03", [(f"ECHEANCE-{plan.pk}-01", "AM04")])).already
    regularisation = svc.plan_regularisation(plan, until=date(2026, 1, 31))
    assert (regularisation.received, regularisation.rejected) == (D("0.00"), D("120.00"))
    svc.plan_recompute(plan=plan)  # the rejected 120 € spread again over the 9 open installments
    assert [a for _n, a, s in amounts(plan) if s == "due"] == [D("133.33")] * 8 + [D("133.36")]


def test_installment_for_a_paying_relative_credits_the_relatives_account(section):
    period = period_for(section)
    resident = resident_in(section)
    relative = paying_relative(resident)
    active_mandate(section, resident, relative=relative)
    plan = svc.plan_create(section=section, resident=resident, relative=relative, yearly_amount="500",
                           first_month=JANUARY, installment_count=5)
    debit_invoice(period, resident, "40.00", relative=relative)
    batch = debits.debit_batch_create(period=period, collection_date=COLLECTION, today=TODAY)
    assert batch.lines.get().installment.plan == plan
    debits.debit_batch_mark_sent(batch=debits.debit_batch_generate(batch=batch))
    debits.debit_batch_settle(batch=batch, today=COLLECTION)
    payment = Payment.objects.get()
    assert payment.debtor_kind == Invoice.DebtorKind.RELATIVE and payment.relative == relative
    debtor = Debtor(section.pk, Invoice.DebtorKind.RELATIVE, resident_id=resident.pk, relative_id=relative.pk)
    assert debtor_credit(debtor) == D("60.00")  # 100 € received, 40 € invoiced: the rest is a credit


def test_command_lists_installment_exclusions(section, mensualised, capsys, tmp_path):
    period, plan, invoice, _other = mensualised
    out = tmp_path / "lot.xml"
    call_command("sepa_batch", "--section", section.alias, "--month", "2026-01", "-o", str(out))
    err = capsys.readouterr().err
    assert f"Exclue : Facture {invoice.number}" in err and "Mensualisé" in err
    assert f"ECHEANCE-{plan.pk}-01".encode() in out.read_bytes()


# ------------------------------------------------------------------ re-presentation of a returned installment

def _returned_first_installment(section, mensualised, code="AM04"):
    """January's batch sent and settled, then the plan's first installment returned by the bank."""
    period, plan, _invoice, _other = mensualised
    batch = debits.debit_batch_create(period=period, collection_date=COLLECTION, today=TODAY)
    debits.debit_batch_mark_sent(batch=debits.debit_batch_generate(batch=batch))
    debits.debit_batch_settle(batch=batch, today=COLLECTION)
    returns_apply(content=pain002("001.03", [(f"ECHEANCE-{plan.pk}-01", code)]), on=date(2026, 2, 25))
    first = plan.installments.get(number=1)
    assert first.state == Installment.State.REJECTED
    return batch, first


@pytest.mark.parametrize("version", [SepaVersion.V08, SepaVersion.V02])
def test_represented_installment_is_its_own_rcur_transaction_in_the_next_batch(section, mensualised, version):
    """« Représenter »: due again with its amount (the « Recalculer » spread taken back), once per return,
    audited; the next batch collects it as its own RCUR transaction with a new end-to-end id, in an
    XSD-valid file; settled it is *prélevée*; returned again it can be re-presented again (``-R2``)."""
    from auditlog.models import LogEntry

    from tests.factories import UserFactory

    section.establishment.sepa_version = version
    section.establishment.save()
    _period, plan, _invoice, _other = mensualised
    first_batch, first = _returned_first_installment(section, mensualised)
    svc.plan_recompute(plan=plan)  # the office first spread the 120 € over the open installments …
    assert [a for _n, a, s in amounts(plan) if s == "due"] == [D("133.33")] * 8 + [D("133.36")]
    user = UserFactory()
    svc.installment_represent(installment=first, user=user, on=date(2026, 2, 26))  # … then re-presents it
    first.refresh_from_db()
    assert (first.state, first.amount, first.representations, first.represented_on) == (
        Installment.State.DUE, D("120.00"), 1, date(2026, 2, 26))
    assert amounts(plan)[1:] == [(n, D("120.00"), "due") for n in range(2, 11)]  # never collected twice
    entry = LogEntry.objects.get_for_object(first).filter(changes__icontains="represented_on").get()
    assert entry.actor == user and entry.changes["state"] == ["rejected", "due"]
    with pytest.raises(ValidationError, match="déjà été représentée le 26/02/2026"):
        svc.installment_represent(installment=first)
    # the returned line stays in its batch's history
    assert first_batch.lines.get(installment=first).return_code == "AM04"

    february = period_for(section, date(2026, 2, 1), date(2026, 2, 28))
    batch = debits.debit_batch_generate(batch=debits.debit_batch_create(
        period=february, collection_date=date(2026, 3, 20), today=date(2026, 3, 2)))
    root = etree.fromstring(batch.xml.encode())
    assert debits.xml_schema(version).validate(root)
    ns = {"p": f"urn:iso:std:iso:20022:tech:xsd:{version}"}
    sequences = {tx.findtext("p:PmtId/p:EndToEndId", namespaces=ns): block.findtext("p:PmtTpInf/p:SeqTp", namespaces=ns)
                 for block in root.iterfind(".//p:PmtInf", ns) for tx in block.iterfind("p:DrctDbtTxInf", ns)}
    represented, second = f"ECHEANCE-{plan.pk}-01-R1", f"ECHEANCE-{plan.pk}-02"
    assert {e2e: seq for e2e, seq in sequences.items() if e2e.startswith("ECHEANCE")} == {
        represented: "RCUR", second: "RCUR"}  # the mandate was used: January's FRST was sent
    assert first_batch.lines.get(installment=first).sequence_type == "FRST"
    tx = next(t for t in root.iterfind(".//p:DrctDbtTxInf", ns)
              if t.findtext("p:PmtId/p:EndToEndId", namespaces=ns) == represented)
    assert tx.findtext("p:InstdAmt", namespaces=ns) == "120.00"
    remittance = tx.findtext("p:RmtInf/p:Ustrd", namespaces=ns)
    assert remittance.startswith("Mensualisation 01/2026 echeance 1/10 representee ")
    line = batch.lines.get(installment=first)
    assert (line.end_to_end_id, line.amount, line.sequence_type) == (represented, D("120.00"), "RCUR")
    debits.debit_batch_mark_sent(batch=batch)
    debits.debit_batch_settle(batch=batch, today=date(2026, 3, 20))
    first.refresh_from_db()
    assert first.state == Installment.State.COLLECTED
    assert Payment.objects.get(reference=represented, cancelled_at__isnull=True).amount == D("120.00")
    # Returned again: it can be re-presented once more, with yet another end-to-end id.
    assert returns_apply(content=pain002("001.03", [(represented, "AM04")]), on=date(2026, 3, 25)).applied == [
        represented]
    svc.installment_represent(installment=first)
    march = period_for(section, date(2026, 3, 1), date(2026, 3, 31))
    third = debits.debit_batch_create(period=march, collection_date=date(2026, 4, 20), today=date(2026, 4, 1))
    assert third.lines.get(installment=first).end_to_end_id == f"ECHEANCE-{plan.pk}-01-R2"


def test_representation_refusals(section, mensualised):
    _period, plan, _invoice, _other = mensualised
    with pytest.raises(ValidationError, match="est à venir : seule une échéance rejetée ou retournée"):
        svc.installment_represent(installment=plan.installments.get(number=2))
    _batch, first = _returned_first_installment(section, mensualised)
    mandate = Mandate.objects.get(resident=plan.resident)
    for status, reason in ((Mandate.Status.REVOKED, "mandat révoqué"),
                           (Mandate.Status.EXPIRED, r"mandat caduc \(36 mois sans prélèvement\)"),
                           (Mandate.Status.SUSPENDED, r"mandat suspendu après un rejet \(à revoir\)")):
        Mandate.objects.filter(pk=mandate.pk).update(status=status)
        with pytest.raises(ValidationError, match=f"L'échéance n° 1 ne peut pas être représentée : {reason}. "
                                                  f"Il faut un mandat actif de {plan.resident.full_name}"):
            svc.installment_represent(installment=first)
    first.refresh_from_db()
    assert (first.state, first.representations) == (Installment.State.REJECTED, 0)
    Mandate.objects.filter(pk=mandate.pk).update(status=Mandate.Status.ACTIVE)
    svc.plan_stop(plan=plan)
    with pytest.raises(ValidationError, match="est arrêté"):
        svc.installment_represent(installment=first)


def test_an_installment_refunded_at_the_debtors_request_is_not_represented(section, mensualised):
    _batch, first = _returned_first_installment(section, mensualised, code="MD06")
    with pytest.raises(ValidationError, match=r"remboursée au débiteur à sa demande \(MD06\)"):
        svc.installment_represent(installment=first)


def test_the_database_holds_an_installment_in_one_unreturned_active_line(section, mensualised):
    from django.db import IntegrityError, transaction

    first_batch, first = _returned_first_installment(section, mensualised)
    returned = first_batch.lines.get(installment=first)
    svc.installment_represent(installment=first)
    february = period_for(section, date(2026, 2, 1), date(2026, 2, 28))
    batch = debits.debit_batch_create(period=february, collection_date=date(2026, 3, 20), today=date(2026, 3, 2))
    line = batch.lines.get(installment=first)  # the returned line and the new one, both active
    assert DebitLine.objects.filter(installment=first, active=True).count() == 2
    line.pk, line.end_to_end_id = None, "DOUBLON"
    with pytest.raises(IntegrityError), transaction.atomic():  # two unreturned lines: refused
        line.save()
    assert returned.return_code == "AM04"
