"""``seed_demo --payments``: VER-HP October–December 2025 issued (series VER 2025, the TIL 2026 numbers
untouched) with payments — some partial, some late, one credit — and idempotent."""
from io import StringIO

import pytest
from django.core.management import call_command

from billing.models import Invoice, Payment
from billing.services.payments import PaymentState, invoice_payment_state, invoice_paid_amount_check
from billing.services.balances import balances_rows
from structures.models import Section


@pytest.mark.django_db
def test_demo_has_partial_late_and_credit_payments():
    out = StringIO()
    call_command("seed_demo", "--residents", "30", "--payments", stdout=out)
    assert "Règlements de démonstration" in out.getvalue()
    invoices = list(Invoice.objects.filter(section__alias="VER-HP", issue_date__year=2025))
    assert invoices and not Invoice.objects.filter(issue_date__year=2026).exists()
    assert {i.number[:8] for i in invoices} == {"VER-2025"}
    states = {invoice_payment_state(i) for i in invoices if i.debtor_kind != "payer"}
    assert {PaymentState.PAID, PaymentState.PARTIAL, PaymentState.TO_PAY} <= states
    assert all(invoice_paid_amount_check(i) == i.paid_amount for i in invoices)
    late = [p for p in Payment.objects.filter(section__alias="VER-HP") if p.invoice and p.date > p.invoice.due_date]
    assert late
    section = Section.objects.get(alias="VER-HP")
    from datetime import date

    credits = [r for r in balances_rows(section=section, on=date(2026, 2, 1)) if not r.facture]
    assert len(credits) == 1 and credits[0].reste == -25
    before = (Invoice.objects.count(), Payment.objects.count())
    call_command("seed_demo", "--residents", "30", "--payments", stdout=StringIO())
    assert (Invoice.objects.count(), Payment.objects.count()) == before


@pytest.mark.django_db
def test_demo_has_sent_debit_batches_and_one_return():
    from sepa.models import DebitBatch, DebitLine

    out = StringIO()
    call_command("seed_demo", "--residents", "30", "--payments", stdout=out)
    assert "lot(s) de prélèvements, 1 rejet(s)" in out.getvalue()
    batches = list(DebitBatch.objects.filter(section__alias="VER-HP").order_by("collection_date"))
    assert [b.status for b in batches] == ["settled", "settled", "sent"]
    assert all(b.xml and b.message_id for b in batches)
    returned = DebitLine.objects.get(return_code__isnull=False, return_code__gt="")
    assert returned.return_code == "AM04" and returned.batch.period.start.month == 11
    assert returned.payment.cancelled_at and "Provision insuffisante" in returned.payment.cancel_reason
    assert invoice_payment_state(returned.invoice) == PaymentState.TO_PAY
    debit_payments = Payment.objects.filter(section__alias="VER-HP", mode="direct_debit")
    assert debit_payments.count() == DebitLine.objects.filter(batch__status="settled").count()
    call_command("seed_demo", "--residents", "30", "--payments", stdout=StringIO())
    assert DebitBatch.objects.count() == 3


@pytest.mark.django_db
def test_demo_has_late_invoices_at_each_reminder_level():
    from datetime import date

    from reminders.models import Reminder
    from reminders.services.proposal import proposal_rows

    out = StringIO()
    call_command("seed_demo", "--residents", "30", "--payments", stdout=out)
    assert "Relances de démonstration" in out.getvalue()
    section = Section.objects.get(alias="VER-HP")
    assert set(Reminder.objects.filter(status="sent").values_list("level", flat=True)) == {1, 2}
    rows = [r for r in proposal_rows(section=section, limit_date=date(2026, 3, 1), print_date=date(2026, 3, 2))
            if not r.is_excluded]
    assert {r.level for r in rows} == {1, 2, 3}
    before = Reminder.objects.count()
    call_command("seed_demo", "--residents", "30", "--payments", stdout=StringIO())
    assert Reminder.objects.count() == before
