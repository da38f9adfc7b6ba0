"""The payments import allocates in bulk (``payments_record_bulk``): its query count does not grow
with the lines, and it gives exactly what recording the same payments one by one with
``payment_record`` gives — same allocations, paid amounts, credits and aged balances — with the
audit-log entries of every payment and allocation."""
from datetime import date
from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from billing.models import Invoice, InvoiceLine, Payment, PaymentAllocation
from billing.services import balances
from billing.services.issuing import invoices_issue
from billing.services.payments import (Debtor, NewPayment, allocation_order, allocation_split, debtor_credit,
                                       payment_record, payments_record_bulk)
from imports.models import ImportRun
from imports.services.payments_import import PaymentsImportError, payments_import_apply, payments_import_validate
from payers.models import Payer
from tests.billing.payment_helpers import paying_relative, resident_in
from tests.factories import SectionFactory, UserFactory

D = Decimal
pytestmark = pytest.mark.django_db
HEADER = "DATE;MONTANT;MODE;FACTURE;REF_EXTERNE;PAYEUR;REFERENCE\n"
RESIDENTS = 30


def _issue(section, specs, on):
    """Draft invoices ``(resident, relative, payer, total)`` issued together on ``on`` (due 15 days later)."""
    ids = []
    for resident, relative, payer, total in specs:
        kind = (Invoice.DebtorKind.PAYER if payer else Invoice.DebtorKind.RELATIVE if relative
                else Invoice.DebtorKind.RESIDENT)
        invoice = Invoice.objects.create(section=section, establishment=section.establishment, debtor_kind=kind,
                                         resident=resident, relative=relative, payer=payer,
                                         date_from=on.replace(day=1), date_to=on, total=total)
        InvoiceLine.objects.create(invoice=invoice, resident=resident, label="Hébergement", reason="manual",
                                   date_from=on.replace(day=1), date_to=on, quantity=D("1"), unit_price=total,
                                   amount=total)
        ids.append(invoice.pk)
    invoices_issue(invoice_ids=ids, issue_date=on)
    return list(Invoice.objects.filter(pk__in=ids).order_by("pk"))


@pytest.fixture
def site():
    section = SectionFactory(alias="BULK-HP")
    payer = Payer.objects.create(organisation=section.establishment.organisation, code="CD38", name="Département",
                                 kind="departement")
    people = []
    for i in range(RESIDENTS):
        resident = resident_in(section, last_name=f"RES{i:02d}", external_ref=f"B{i:03d}")
        relative = paying_relative(resident, last_name=f"FILS{i:02d}") if i % 5 == 0 else None
        people.append((resident, relative))
    # Two months each (the paying relative's when there is one), and the payer's share for one in six.
    specs = {month: [(r, rel, None, D(f"{base + i}.{i:02d}")) for i, (r, rel) in enumerate(people)]
             + [(r, None, payer, D(f"{40 + i}.00")) for i, (r, _rel) in enumerate(people) if i % 6 == 0]
             for month, base in ((1, 100), (2, 150))}
    jan = _issue(section, specs[1], date(2026, 1, 5))
    feb = _issue(section, specs[2], date(2026, 2, 5))
    return {"section": section, "people": people, "jan": jan, "feb": feb, "payer": payer}


def _csv(site, lines: int) -> bytes:
    """``lines`` payments: named invoices paid with an excess (it goes to the oldest due), in part,
    residents' references (oldest due first, credit when too much), the payer; residents come back
    (a second line sees what the first one allocated)."""
    rows = [HEADER]
    for j in range(lines):
        i = j % RESIDENTS
        resident, _relative = site["people"][i]
        jan, feb = site["jan"][i], site["feb"][i]
        kind = (j // RESIDENTS + i) % 4
        if j % 17 == 16:
            rows.append(f"20/03/2026;{j + 30},00;PAYEUR;;;CD38;PAY-{j}\n")
        elif kind == 0:
            rows.append(f"10/03/2026;{feb.total + D('25.50')};VIREMENT;{feb.number};;;VIR-{j}\n")
        elif kind == 1:
            rows.append(f"11/03/2026;{jan.total - D('0.01')};CHEQUE;{jan.number};;;CHQ-{j}\n")
        elif kind == 2:
            rows.append(f"12/03/2026;{D('180.00') + j};VIREMENT;;{resident.external_ref};;REF-{j}\n")
        else:
            rows.append(f"13/03/2026;{D('400.00') + j};ESPECES;;{resident.external_ref};;ESP-{j}\n")
    return "".join(rows).replace(".", ",").encode()


def _state(section):
    """Everything the allocation decides, in comparable form."""
    allocations = sorted(PaymentAllocation.objects.filter(invoice__section=section)
                         .values_list("payment__reference", "invoice__number", "amount", "date"))
    paid = dict(Invoice.objects.filter(section=section).values_list("number", "paid_amount"))
    debtors = {Debtor.of(p) for p in Payment.objects.filter(section=section)}
    credits = {d: debtor_credit(d) for d in debtors}
    rows = balances.balances_rows(section=section, on=date(2026, 4, 30))
    aged = [(r.facture, r.debiteur, r.reste, r.retard_jours) for r in rows]
    return allocations, paid, credits, aged, balances.balances_summary(rows)


def _import_queries(site, lines: int) -> int:
    """Queries of a whole import (validation, recording, allocation, run) of ``lines`` lines, rolled back."""
    with transaction.atomic():
        with CaptureQueriesContext(connection) as ctx:
            run = payments_import_apply(section=site["section"], data=_csv(site, lines), name="r.csv")
        assert run.status == ImportRun.Status.IMPORTED and run.summary["lines"] == lines
        assert Payment.objects.count() == lines
        transaction.set_rollback(True)
    return len(ctx.captured_queries)


def test_query_count_does_not_grow_with_the_lines(site):
    ten, fifty = _import_queries(site, 10), _import_queries(site, 50)
    assert ten < 40
    if connection.vendor == "postgresql":
        assert fifty == ten
    else:  # SQLite caps the rows of one INSERT (999 parameters): a few more bulk batches, never one per line
        assert fifty - ten <= 4


def test_bulk_equals_one_by_one(site):
    data = _csv(site, 50)
    planned = payments_import_validate(section=site["section"], data=data).planned
    clerk = UserFactory(username="bulk-clerk")
    with transaction.atomic():
        for line in planned:
            payment_record(section=site["section"], invoice=line.invoice, debtor=line.debtor, on=line.on,
                           amount=line.amount, mode=line.mode, reference=line.reference, user=clerk)
        one_by_one = _state(site["section"])
        logged_one_by_one = LogEntry.objects.filter(content_type__model__in=("payment", "paymentallocation"),
                                                    action=LogEntry.Action.CREATE).count()
        transaction.set_rollback(True)
    assert not Payment.objects.exists()
    run = payments_import_apply(section=site["section"], data=data, name="r.csv", user=clerk)
    assert run.status == ImportRun.Status.IMPORTED
    bulk = _state(site["section"])
    assert bulk[0] == one_by_one[0] and len(bulk[0]) > 50  # same allocations (excesses spread)
    assert bulk[1:] == one_by_one[1:]  # paid amounts, credits, aged balance and its totals
    assert any(c > 0 for c in bulk[2].values())  # some lines left a credit
    assert any(0 < inv.paid_amount < inv.total for inv in Invoice.objects.filter(section=site["section"]))
    # The cache equals the entries, and the audit log has every payment and allocation, with the actor.
    for invoice in Invoice.objects.filter(section=site["section"]):
        assert invoice.paid_amount == sum((a.amount for a in invoice.allocations.all()), D("0.00"))
    entries = LogEntry.objects.filter(content_type__model__in=("payment", "paymentallocation"),
                                      action=LogEntry.Action.CREATE)
    assert entries.count() == logged_one_by_one == 50 + PaymentAllocation.objects.count()
    payment = Payment.objects.get(reference="VIR-0")
    entry = LogEntry.objects.get_for_object(payment).get()
    assert entry.actor == clerk and entry.changes["amount"] == ["None", str(payment.amount)]
    assert entry.object_repr == str(payment)


def test_pure_rule_hand_computed(site):
    """100 on B (named, balance 40) → 40 on B, then oldest due: A (due 20/01, 30 left) 30, C 30 of 50; nothing left."""
    a, b, c = (Invoice(pk=1, number="A", total=D("50"), paid_amount=D("20"), due_date=date(2026, 1, 20)),
               Invoice(pk=2, number="B", total=D("40"), paid_amount=D("0"), due_date=date(2026, 3, 20)),
               Invoice(pk=3, number="C", total=D("50"), paid_amount=D("0"), due_date=date(2026, 2, 20)))
    order = allocation_order([c, b, a], first_id=2)
    assert [i.number for i in order] == ["B", "A", "C"]
    assert allocation_split(D("100"), order) == ([(b, D("40")), (a, D("30")), (c, D("30"))], D("0"))
    assert allocation_split(D("150"), order)[1] == D("30")  # the credit
    assert allocation_split(D("10"), allocation_order([c, b, a])) == ([(a, D("10"))], D("0"))


def test_bulk_checks_the_locked_rows_and_refuses_everything(site):
    """The named invoices are checked again once locked: one wrong line and nothing is written."""
    jan = site["jan"][1]
    line = NewPayment(row=3, on=date(2026, 3, 1), amount=D("10.00"), mode="cheque", debtor=Debtor.of(jan),
                      invoice=jan)
    other = site["jan"][2]
    wrong = NewPayment(row=4, on=date(2026, 3, 1), amount=D("10.00"), mode="cheque", debtor=Debtor.of(jan),
                       invoice=other)
    with pytest.raises(ValidationError) as exc:
        payments_record_bulk(section=site["section"], payments=[line, wrong])
    assert exc.value.messages == [f"Ligne 4 : La facture {other.number} n'est pas due par ce débiteur."]
    assert not Payment.objects.exists() and not PaymentAllocation.objects.exists()


def test_bulk_refusal_is_kept_in_the_import_history(site, monkeypatch):
    import imports.services.payments_import as service

    def refuse(**kwargs):
        raise ValidationError(["Ligne 2 : La facture X n'est pas une facture émise à régler."])

    monkeypatch.setattr(service, "payments_record_bulk", refuse)
    with pytest.raises(PaymentsImportError):
        payments_import_apply(section=site["section"], data=_csv(site, 3), name="r.csv")
    run = ImportRun.objects.get(kind="payments")
    assert run.status == ImportRun.Status.REJECTED
    assert run.report[0]["errors"][0]["message"].startswith("Ligne 2 : La facture X")
    assert not Payment.objects.exists()
