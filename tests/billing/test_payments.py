"""PaymentAllocation rules of billing-rules.md §9, on hand-computed amounts.

Three invoices of one resident: A 100.00 € issued 05/01 (due 20/01), B 150.00 € issued 05/02 (due
20/02), C 200.00 € issued 05/03 (due 20/03)."""
from django.db.models import QuerySet
from datetime import date
from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.core.exceptions import ValidationError
from django.db import connection

from billing.models import PaymentAllocation, Invoice, Payment
from billing.models.payments import PaymentDeleteError
from billing.services import payments as svc
from billing.services.issuing import credit_note_create
from billing.services.payments import Debtor, PaymentState
from tests.billing.payment_helpers import issued_invoice, paying_relative, resident_in
from tests.factories import SectionFactory, UserFactory

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.fixture
def abc():
    section = SectionFactory()
    resident = resident_in(section)
    a = issued_invoice(section, resident, "100.00", date(2026, 1, 5))
    b = issued_invoice(section, resident, "150.00", date(2026, 2, 5))
    c = issued_invoice(section, resident, "200.00", date(2026, 3, 5))
    return section, resident, a, b, c


def _fresh(*invoices):
    for invoice in invoices:
        invoice.refresh_from_db()
        # The cache equals the entries, always.
        assert invoice.paid_amount == svc.invoice_paid_amount_check(invoice)
    return invoices


def _pay(section, amount, *, invoice=None, debtor=None, on=date(2026, 4, 1), **kw):
    return svc.payment_record(section=section, on=on, amount=D(amount), mode=kw.pop("mode", "cheque"),
                              invoice=invoice, debtor=debtor, **kw)


def test_named_invoice_first_then_the_excess_oldest_due_first(abc):
    section, resident, a, b, c = abc
    _pay(section, "300.00", invoice=c, reference="1234567")
    _fresh(a, b, c)
    # C (named) 200 → paid; the 100 in excess goes to A (due 20/01), not B (due 20/02).
    assert (c.paid_amount, a.paid_amount, b.paid_amount) == (D("200.00"), D("100.00"), D("0.00"))
    assert [svc.invoice_payment_state(i) for i in (a, b, c)] == [PaymentState.PAID, PaymentState.TO_PAY,
                                                                  PaymentState.PAID]
    assert svc.debtor_credit(Debtor.of(a)) == D("0.00")


def test_no_invoice_named_oldest_due_first_with_partial(abc):
    section, resident, a, b, c = abc
    _pay(section, "180.55", debtor=Debtor.of(a))
    _fresh(a, b, c)
    assert (a.paid_amount, b.paid_amount, c.paid_amount) == (D("100.00"), D("80.55"), D("0.00"))
    assert b.balance == D("69.45")
    assert svc.invoice_payment_state(b) == PaymentState.PARTIAL


def test_named_invoice_already_paid_goes_oldest_first(abc):
    section, resident, a, b, c = abc
    _pay(section, "150.00", invoice=b)
    _pay(section, "60.00", invoice=b)  # B already paid: the whole cheque goes to A
    _fresh(a, b)
    assert (a.paid_amount, b.paid_amount) == (D("60.00"), D("150.00"))


def test_overpayment_is_a_credit_offered_on_the_next_invoice(abc):
    section, resident, a, b, c = abc
    _pay(section, "500.00", debtor=Debtor.of(a))
    _fresh(a, b, c)
    assert all(svc.invoice_payment_state(i) == PaymentState.PAID for i in (a, b, c))
    debtor = Debtor.of(a)
    assert svc.debtor_credit(debtor) == D("50.00")
    d = issued_invoice(section, resident, "120.00", date(2026, 4, 5))
    assert svc.credit_apply(invoice=d) == D("50.00")
    _fresh(d)
    assert d.balance == D("70.00") and svc.invoice_payment_state(d) == PaymentState.PARTIAL
    assert svc.debtor_credit(debtor) == D("0.00")
    assert svc.credit_apply(invoice=d) == D("0.00")


def test_other_debtors_are_not_touched(abc):
    section, resident, a, b, c = abc
    relative = paying_relative(resident)
    other = issued_invoice(section, resident_in(section), "40.00", date(2025, 11, 5))
    r1 = issued_invoice(section, resident, "80.00", date(2025, 12, 5), relative=relative)  # older, other debtor
    _pay(section, "100.00", debtor=Debtor.of(a))
    _fresh(a, r1, other)
    assert (a.paid_amount, r1.paid_amount, other.paid_amount) == (D("100.00"), D("0.00"), D("0.00"))
    _pay(section, "30.00", invoice=r1)
    _fresh(r1, b)
    assert r1.paid_amount == D("30.00") and b.paid_amount == D("0.00")


def test_invoice_of_another_section_is_refused(abc):
    section, resident, a, b, c = abc
    elsewhere = SectionFactory()
    with pytest.raises(ValidationError):
        _pay(elsewhere, "10.00", invoice=a)
    with pytest.raises(ValidationError):
        _pay(section, "0.00", invoice=a)
    with pytest.raises(ValidationError):
        _pay(section, "10.00", invoice=a, mode="bitcoin")
    assert not Payment.objects.exists()


def test_partial_credit_note_goes_to_the_invoice_it_corrects(abc):
    section, resident, a, b, c = abc
    line = b.lines.get()
    credit_note_create(invoice=b, lines={line.pk: D("30.00")}, reason="Erreur de tarif", issue_date=date(2026, 3, 1))
    _fresh(a, b)
    assert (a.paid_amount, b.paid_amount) == (D("0.00"), D("30.00"))
    assert b.balance == D("120.00") and svc.invoice_payment_state(b) == PaymentState.PARTIAL


def test_full_credit_note_on_a_partly_paid_invoice_leaves_a_credit(abc):
    section, resident, a, b, c = abc
    _pay(section, "40.00", invoice=a)
    _pay(section, "150.00", invoice=b)
    _pay(section, "200.00", invoice=c)
    credit_note = credit_note_create(invoice=a, reason="Facturé à tort", issue_date=date(2026, 4, 2))
    _fresh(a, b, c)
    # -100.00: 60.00 closes A (now cancelled); B and C are paid: 40.00 stays as credit.
    assert a.status == Invoice.Status.CANCELLED and a.paid_amount == D("100.00")
    assert svc.invoice_payment_state(a) == PaymentState.CANCELLED
    assert PaymentAllocation.objects.get(credit_note=credit_note).amount == D("60.00")
    assert svc.debtor_credit(Debtor.of(a)) == D("40.00")


def test_cancel_needs_a_reason_reverses_and_is_audited(abc):
    section, resident, a, b, c = abc
    user = UserFactory()
    payment = _pay(section, "120.00", debtor=Debtor.of(a), user=user)
    with pytest.raises(ValidationError):
        svc.payment_cancel(payment=payment, reason="  ")
    svc.payment_cancel(payment=payment, reason="Chèque saisi deux fois", user=user)
    _fresh(a, b)
    assert (a.paid_amount, b.paid_amount) == (D("0.00"), D("0.00"))
    payment.refresh_from_db()
    assert payment.cancelled_at and payment.cancel_reason == "Chèque saisi deux fois"
    # Entries kept: +100, +20, then -100, -20.
    assert sorted(payment.allocations.values_list("amount", flat=True)) == [D("-100.00"), D("-20.00"),
                                                                             D("20.00"), D("100.00")]
    assert LogEntry.objects.get_for_object(payment).filter(changes__icontains="cancel_reason").exists()
    with pytest.raises(ValidationError):
        svc.payment_cancel(payment=payment, reason="encore")
    with pytest.raises(PaymentDeleteError):
        payment.delete()
    with pytest.raises(PaymentDeleteError):
        Payment.objects.all().delete()
    with pytest.raises(PaymentDeleteError):
        PaymentAllocation.objects.all().delete()


def test_manual_reallocation(abc):
    section, resident, a, b, c = abc
    payment = _pay(section, "100.00", invoice=a)
    svc.payment_reallocate(payment=payment, amounts={b.pk: D("60.00")})
    _fresh(a, b)
    assert (a.paid_amount, b.paid_amount) == (D("0.00"), D("60.00"))
    assert svc.debtor_credit(Debtor.of(a)) == D("40.00")
    with pytest.raises(ValidationError):  # more than C's balance… and than the payment
        svc.payment_reallocate(payment=payment, amounts={c.pk: D("250.00")})
    foreign = issued_invoice(section, resident_in(section), "50.00", date(2026, 3, 5))
    with pytest.raises(ValidationError):
        svc.payment_reallocate(payment=payment, amounts={foreign.pk: D("10.00")})
    _fresh(a, b, foreign)
    assert (b.paid_amount, foreign.paid_amount) == (D("60.00"), D("0.00"))  # refused = rolled back


def test_refund_of_a_credit_is_an_entry_bounded_by_the_credit(abc):
    section, resident, a, b, c = abc
    _pay(section, "500.00", debtor=Debtor.of(a))
    debtor = Debtor.of(a)
    refund = svc.refund_record(debtor=debtor, on=date(2026, 4, 10), amount="30.00", mode="transfer")
    assert refund.kind == Payment.Kind.REFUND and refund.signed_amount == D("30.00")
    assert svc.debtor_credit(debtor) == D("20.00")
    with pytest.raises(ValidationError):
        svc.refund_record(debtor=debtor, on=date(2026, 4, 10), amount="20.01", mode="transfer")
    d = issued_invoice(section, resident, "120.00", date(2026, 4, 5))
    assert svc.credit_apply(invoice=d) == D("20.00")  # only what was not refunded


def test_journal_unpaid_filter(abc):
    from billing.services.journal import journal_queryset

    section, resident, a, b, c = abc
    _pay(section, "120.00", debtor=Debtor.of(a))
    from billing.models import BillingPeriod

    period = BillingPeriod.objects.create(section=section, start=date(2026, 1, 1), end=date(2026, 3, 31),
                                          accounting_date=date(2026, 3, 31), label="T1")
    QuerySet.update(Invoice.objects.filter(pk__in=[a.pk, b.pk, c.pk]), period=period)  # fixture: bypasses the issued-invoice guard
    assert {i.number for i in journal_queryset(period=period, unpaid=True)} == {b.number, c.number}
    assert journal_queryset(period=period).count() == 3


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql",
                    reason="row locks are only meaningful on PostgreSQL")
def test_concurrent_payments_never_overpay_an_invoice():
    import threading

    from django.db import connections

    section = SectionFactory()
    resident = resident_in(section)
    a = issued_invoice(section, resident, "100.00", date(2026, 1, 5))
    b = issued_invoice(section, resident, "150.00", date(2026, 2, 5))
    debtor, errors, barrier = Debtor.of(a), [], threading.Barrier(4)

    def worker():
        try:
            barrier.wait()
            for _ in range(5):
                _pay(section, "10.00", debtor=debtor)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    _fresh(a, b)
    # 20 × 10.00 = 200.00: A (oldest due) paid 100.00, B 100.00, never more than their totals.
    assert (a.paid_amount, b.paid_amount) == (D("100.00"), D("100.00"))
    assert svc.debtor_credit(debtor) == D("0.00")
