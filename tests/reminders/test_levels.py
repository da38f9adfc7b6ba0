"""Reminder levels from each invoice's own history (billing-rules §10), on hand-built histories.

Invoice A: 100.00 € issued 05/01/2026, due 20/01/2026 (section delay 15 days). Delays 15 / 30 / 30:
level 1 from 04/02, level 2 30 days after level 1's print date, level 3 30 days after level 2's."""
import io
from datetime import date
from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from pypdf import PdfReader

from billing.services import payments as pay
from billing.services.issuing import credit_note_create
from reminders.models import InvoiceDispute, Reminder, ReminderLetter, ReminderRun, ReminderText
from reminders.services import proposal as prop
from reminders.services.letters import reminder_texts
from reminders.services.runs import reminder_cancel, run_create, run_select, run_validate
from tests.billing.payment_helpers import issued_invoice, resident_in
from tests.factories import SectionFactory

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.fixture
def setup():
    section = SectionFactory()
    resident = resident_in(section)
    a = issued_invoice(section, resident, "100.00", date(2026, 1, 5))
    return section, resident, a


def _rows(section, print_date, limit_date=None):
    return prop.proposal_rows(section=section, limit_date=limit_date or print_date, print_date=print_date)


def _send(section, print_date):
    run = run_create(section=section, print_date=print_date, limit_date=print_date)
    run_validate(run=run)
    return run


def _pdf_text(field) -> str:
    with field.open("rb") as handle:
        return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(handle.read())).pages)


def test_next_level_pure():
    delays = prop.ReminderDelays(level1_days=15, level2_days=30, level3_days=30)
    due = date(2026, 1, 20)
    assert prop.next_level([], due_date=due, print_date=date(2026, 2, 3), delays=delays) is None
    assert prop.next_level([], due_date=due, print_date=date(2026, 2, 4), delays=delays) == 1
    one = [(1, date(2026, 2, 5))]
    assert prop.next_level(one, due_date=due, print_date=date(2026, 3, 6), delays=delays) is None
    assert prop.next_level(one, due_date=due, print_date=date(2026, 3, 7), delays=delays) == 2
    # Never skipping a level: months later it is still level 2 after a level 1.
    assert prop.next_level(one, due_date=due, print_date=date(2027, 1, 1), delays=delays) == 2
    three = [(1, date(2026, 2, 5)), (2, date(2026, 3, 7)), (3, date(2026, 4, 6))]
    assert prop.next_level(three, due_date=due, print_date=date(2027, 1, 1), delays=delays) is None


def test_levels_one_two_three_each_counted_from_the_previous_letter(setup):
    section, resident, a = setup
    assert _rows(section, date(2026, 2, 3)) == []
    [row] = _rows(section, date(2026, 2, 5))
    assert (row.level, row.balance, row.days_late, row.exclusion) == (1, D("100.00"), 16, "")
    _send(section, date(2026, 2, 5))
    # Never the same level twice; level 2 only 30 days after the letter of 05/02.
    assert _rows(section, date(2026, 3, 6)) == []
    assert [r.level for r in _rows(section, date(2026, 3, 7))] == [2]
    _send(section, date(2026, 3, 9))
    assert _rows(section, date(2026, 4, 7)) == []
    assert [r.level for r in _rows(section, date(2026, 4, 8))] == [3]
    _send(section, date(2026, 4, 8))
    assert _rows(section, date(2026, 12, 1)) == []
    assert list(Reminder.objects.filter(invoice=a, status="sent").values_list("level", "print_date")) == [
        (1, date(2026, 2, 5)), (2, date(2026, 3, 9)), (3, date(2026, 4, 8))]
    with pytest.raises(IntegrityError), transaction.atomic():
        Reminder.objects.create(run=ReminderRun.objects.first(), invoice=a, level=1, amount=D("1"), balance=D("1"),
                                days_late=1, status="sent", print_date=date(2026, 5, 1))


def test_limit_date_takes_invoices_due_on_or_before_it(setup):
    section, resident, a = setup
    assert _rows(section, date(2026, 2, 5), limit_date=date(2026, 1, 19)) == []
    assert len(_rows(section, date(2026, 2, 5), limit_date=date(2026, 1, 20))) == 1
    run = run_create(section=section, print_date=date(2026, 2, 5))
    assert run.limit_date == date(2026, 2, 1)


def test_partial_payment_between_levels(setup):
    section, resident, a = setup
    _send(section, date(2026, 2, 5))
    pay.payment_record(section=section, on=date(2026, 2, 20), amount=D("40.00"), mode="cheque", invoice=a)
    [row] = _rows(section, date(2026, 3, 10))
    assert (row.level, row.amount, row.balance) == (2, D("100.00"), D("60.00"))
    run = _send(section, date(2026, 3, 10))
    letter = ReminderLetter.objects.get(run=run)
    assert letter.total_due == D("60.00")
    text = _pdf_text(letter.pdf)
    assert a.number in text and "60,00" in text and "Deuxième relance" in text
    assert "frais" not in text.lower()  # no fee, ever


def test_balance_is_the_one_on_the_print_date(setup):
    section, resident, a = setup
    # Paid after the print date but recorded before the proposal: never chased.
    pay.payment_record(section=section, on=date(2026, 2, 10), amount=D("100.00"), mode="cheque", invoice=a)
    [row] = _rows(section, date(2026, 2, 5))
    assert (row.exclusion, row.balance) == (prop.SETTLED, D("0.00"))


def test_credit_note_between_levels_lowers_the_balance(setup):
    section, resident, a = setup
    _send(section, date(2026, 2, 5))
    credit_note_create(invoice=a, lines={a.lines.get().pk: D("30.00")}, reason="erreur",
                       issue_date=date(2026, 2, 10))
    [row] = _rows(section, date(2026, 3, 10))
    assert (row.level, row.balance, row.exclusion) == (2, D("70.00"), "")


def test_credit_on_the_account_covering_it_excludes(setup):
    section, resident, a = setup
    debtor = pay.Debtor.of(a)
    # An unallocated payment of the debtor (on account) at least the balance.
    from billing.models import Payment
    Payment.objects.create(section=section, debtor_kind=a.debtor_kind, resident=resident, date=date(2026, 1, 2),
                           amount=D("150.00"), mode="cheque")
    assert pay.debtor_credit(debtor) == D("150.00")
    [row] = _rows(section, date(2026, 2, 5))
    assert row.exclusion == prop.CREDIT and row.exclusion_label == "avoir ou crédit au compte"


def test_full_credit_note_cancels_nothing_to_chase(setup):
    section, resident, a = setup
    credit_note_create(invoice=a, reason="erreur", issue_date=date(2026, 1, 25))
    assert _rows(section, date(2026, 2, 5)) == []


def test_payment_after_the_letter_is_prepared(setup):
    section, resident, a = setup
    b = issued_invoice(section, resident, "50.00", date(2026, 1, 6))
    run = run_create(section=section, print_date=date(2026, 2, 5))
    assert run.reminders.count() == 2
    pay.payment_record(section=section, on=date(2026, 2, 6), amount=D("100.00"), mode="cheque", invoice=a)
    result = run_validate(run=run)
    assert result["letters"] == 1 and result["sent"] == 1
    line_a = run.reminders.get(invoice=a)
    assert (line_a.status, line_a.exclusion, line_a.balance) == ("skipped", prop.SETTLED, D("0.00"))
    letter = ReminderLetter.objects.get(run=run)
    assert letter.total_due == D("50.00")
    text = _pdf_text(letter.pdf)
    assert b.number in text and a.number not in text
    # Validating twice does nothing more.
    run_validate(run=run)
    assert ReminderLetter.objects.filter(run=run).count() == 1


def test_disputed_invoice_is_not_reminded(setup):
    section, resident, a = setup
    InvoiceDispute.objects.create(invoice=a, comment="Conteste les journées d'absence")
    [row] = _rows(section, date(2026, 2, 5))
    assert (row.exclusion, row.exclusion_detail) == (prop.DISPUTED, "Conteste les journées d'absence")
    run = run_create(section=section, print_date=date(2026, 2, 5))
    run_validate(run=run)
    assert not ReminderLetter.objects.exists()
    assert run.reminders.get().status == "skipped"


def test_invoice_in_unsettled_debit_batch_is_not_reminded(setup, monkeypatch):
    section, resident, a = setup
    monkeypatch.setattr(prop, "unsettled_debit_invoice_ids", lambda ids: {a.pk} & set(ids))
    [row] = _rows(section, date(2026, 2, 5))
    assert row.exclusion == prop.DIRECT_DEBIT


def test_unticked_lines_are_not_sent(setup):
    section, resident, a = setup
    b = issued_invoice(section, resident, "50.00", date(2026, 1, 6))
    run = run_create(section=section, print_date=date(2026, 2, 5))
    run_select(run=run, selected_ids=[run.reminders.get(invoice=b).pk])
    run_validate(run=run)
    assert list(Reminder.objects.filter(status="sent").values_list("invoice_id", flat=True)) == [b.pk]
    # A is proposed again at level 1 next time.
    assert [(r.invoice.pk, r.level) for r in _rows(section, date(2026, 2, 6))] == [(a.pk, 1)]


def test_cancelling_a_reminder_is_audited_and_the_level_goes_back(setup):
    section, resident, a = setup
    _send(section, date(2026, 2, 5))
    reminder = Reminder.objects.get(status="sent")
    with pytest.raises(ValidationError):
        reminder_cancel(reminder=reminder, reason=" ")
    reminder_cancel(reminder=reminder, reason="Envoyée par erreur")
    reminder.refresh_from_db()
    assert (reminder.status, reminder.cancel_reason) == ("cancelled", "Envoyée par erreur")
    assert LogEntry.objects.get_for_object(reminder).filter(changes__icontains="cancelled").exists()
    with pytest.raises(ValueError):
        reminder.delete()
    assert [r.level for r in _rows(section, date(2026, 2, 6))] == [1]


def test_default_texts_created_on_first_use(setup):
    section, resident, a = setup
    texts = reminder_texts(section.establishment)
    assert sorted(texts) == [1, 2, 3] and texts[3].title == "Mise en demeure de payer"
    assert ReminderText.objects.filter(establishment=section.establishment).count() == 3
    assert prop.delays_for(section).days(1) == 15


def test_formal_notice_letter_and_registered_number(setup):
    from reminders.services.runs import letter_set_registered_number

    section, resident, a = setup
    _send(section, date(2026, 2, 5))
    letter1 = ReminderLetter.objects.get()
    with pytest.raises(ValidationError):
        letter_set_registered_number(letter=letter1, number="1A123")
    _send(section, date(2026, 3, 9))
    run = _send(section, date(2026, 4, 8))
    letter = ReminderLetter.objects.get(run=run)
    assert letter.level == 3
    assert "Mise en demeure" in _pdf_text(letter.pdf)
    letter_set_registered_number(letter=letter, number="1A 123 456 7890 1")
    letter.refresh_from_db()
    assert letter.registered_number == "1A 123 456 7890 1"
