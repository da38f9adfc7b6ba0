"""Which invoices are due for which reminder level (billing-rules §10), and which must not be chased.

Each invoice moves 1 → 2 → 3 from its own history of *sent* reminders (cancelled ones do not
count): the next level is always the one after the last sent, never skipped nor repeated, and is
due ``delay(level)`` days after the previous letter's print date (level 1: after the due date).
A run takes the issued invoices due on or before the limit date, with their balance on the print
date. Exclusions (kept in the proposal with their reason, never sent): balance zero, disputed,
in a direct-debit batch not yet settled, covered by the debtor's credit. Social-aid decisions have
no "pending" state in the model (``payers.SocialAidDecision`` records granted decisions only), so
that exclusion cannot be detected yet. No fee is ever added.

Constant number of queries whatever the number of invoices: candidates (allocations summed in SQL),
histories, disputes, unsettled debits, and three for the credits.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import DecimalField, F, OuterRef, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _

from billing.models import Invoice, Payment, PaymentAllocation
from billing.services.payments import PAYABLE_KINDS, Debtor
from core.money import ZERO, round_money

from ..models import InvoiceDispute, Reminder, ReminderDelays

MONEY = DecimalField(max_digits=12, decimal_places=2)

SETTLED = "settled"
DISPUTED = "disputed"
DIRECT_DEBIT = "direct_debit"
CREDIT = "credit"
SOCIAL_AID = "social_aid"
EXCLUSIONS = {
    SETTLED: _("solde nul"),
    DISPUTED: _("facture contestée"),
    DIRECT_DEBIT: _("prélèvement en cours"),
    CREDIT: _("avoir ou crédit au compte"),
    SOCIAL_AID: _("décision d'aide sociale en attente"),
}


def first_of_month(day: date) -> date:
    return day.replace(day=1)


def delays_for(section) -> ReminderDelays:
    """The section's delays (created with the §10 defaults 15 / 30 / 30 on first use)."""
    delays, _created = ReminderDelays.objects.get_or_create(section=section)
    return delays


def unsettled_debit_invoice_ids(invoice_ids: list[int]) -> set[int]:
    """Invoices in a direct-debit batch not yet settled.

    The ``sepa`` app (layer 4, next to this one) provides the selector; until it is there (it is
    being built on another branch) no invoice is considered in a debit batch. Only the import is
    guarded: an error inside the selector must surface, not be mistaken for "none".
    """
    try:
        from sepa.selectors import invoices_in_unsettled_batches
    except ImportError:
        return set()
    return set(invoices_in_unsettled_batches(invoice_ids))


@dataclass
class ProposalRow:
    invoice: InvoiceRef
    debtor: Debtor
    debtor_name: str
    level: int
    amount: Decimal
    balance: Decimal
    days_late: int
    exclusion: str = ""
    exclusion_detail: str = ""
    history: list = field(default_factory=list)

    @property
    def exclusion_label(self) -> str:
        return str(EXCLUSIONS.get(self.exclusion, "")) if self.exclusion else ""

    @property
    def is_excluded(self) -> bool:
        return bool(self.exclusion)


def next_level(history: list[tuple[int, date]], *, due_date: date, print_date: date, delays) -> int | None:
    """The level due on ``print_date`` for an invoice whose sent reminders are ``history``
    (``[(level, print_date)]``), or ``None``: one after the highest sent, ``delays.days(level)``
    after the previous letter (after the due date for level 1); nothing after level 3."""
    last_level, last_date = 0, due_date
    for level, printed in history:
        if level > last_level:
            last_level, last_date = level, printed
    if last_level >= 3:
        return None
    level = last_level + 1
    if print_date < last_date + timedelta(days=delays.days(level)):
        return None
    return level


def _allocated_until(on: date):
    return Coalesce(Subquery(PaymentAllocation.objects.filter(invoice=OuterRef("pk"), date__lte=on).order_by()
                             .values("invoice").annotate(s=Sum("amount")).values("s")[:1], output_field=MONEY),
                    Value(ZERO), output_field=MONEY)


def debtor_credits(section) -> dict[Debtor, Decimal]:
    """Every debtor's credit in the section (unallocated payments and credit notes, less refunds),
    like ``billing.services.payments.debtor_credit`` but for all debtors in three queries."""
    def allocated(field_name):
        return Coalesce(Subquery(PaymentAllocation.objects.filter(**{field_name: OuterRef("pk")}).order_by()
                                 .values(field_name).annotate(s=Sum("amount")).values("s")[:1], output_field=MONEY),
                        Value(ZERO), output_field=MONEY)

    credits: dict[Debtor, Decimal] = defaultdict(lambda: ZERO)
    for p in (Payment.objects.filter(section=section, kind=Payment.Kind.PAYMENT, cancelled_at__isnull=True)
              .annotate(allocated=allocated("payment")).filter(allocated__lt=F("amount"))):
        credits[Debtor.of(p)] += p.amount - round_money(p.allocated)
    for n in (Invoice.objects.filter(section=section, kind=Invoice.Kind.CREDIT_NOTE, status=Invoice.Status.ISSUED)
              .annotate(allocated=allocated("credit_note"))):
        left = -n.total - round_money(n.allocated)
        if left > 0:
            credits[Debtor.of(n)] += left
    for r in Payment.objects.filter(section=section, kind=Payment.Kind.REFUND, cancelled_at__isnull=True):
        credits[Debtor.of(r)] -= r.amount
    return {debtor: amount for debtor, amount in credits.items() if amount > 0}


@dataclass(frozen=True, slots=True)
class InvoiceRef:
    """What the proposal needs of an invoice (read as plain values: no model instances)."""

    pk: int
    number: str
    section_id: int
    debtor_kind: str
    resident_id: int | None
    relative_id: int | None
    payer_id: int | None
    debtor_name: str
    issue_date: date
    due_date: date
    total: Decimal
    paid_amount: Decimal


INVOICE_FIELDS = ("pk", "number", "section_id", "debtor_kind", "resident_id", "relative_id", "payer_id",
                  "debtor_name", "issue_date", "due_date", "total", "paid_amount")


def proposal_rows(*, section, limit_date: date, print_date: date) -> list[ProposalRow]:
    """Per debtor (sorted by name), the invoices due at a level on ``print_date``, with the
    excluded ones and their reason."""
    delays = delays_for(section)
    candidates = (Invoice.objects.filter(section=section, kind__in=PAYABLE_KINDS, status=Invoice.Status.ISSUED,
                                         due_date__lte=limit_date, issue_date__lte=print_date)
                  .annotate(paid_on=_allocated_until(print_date)).filter(paid_on__lt=F("total")))
    rows_values = list(candidates.order_by("due_date", "number")
                       .values_list(*INVOICE_FIELDS, "resident_name", "paid_on"))
    # Histories, disputes: joined on the same candidates in SQL (no list of ids sent back).
    scope = {"invoice__section": section, "invoice__kind__in": PAYABLE_KINDS,
             "invoice__status": Invoice.Status.ISSUED, "invoice__due_date__lte": limit_date}
    history: dict[int, list[tuple[int, date]]] = defaultdict(list)
    for invoice_id, level, printed in (Reminder.objects.filter(status=Reminder.Status.SENT, **scope)
                                       .values_list("invoice_id", "level", "print_date")):
        history[invoice_id].append((level, printed))
    disputes = dict(InvoiceDispute.objects.filter(is_disputed=True, **scope).values_list("invoice_id", "comment"))
    credits = debtor_credits(section)

    due: list[tuple[InvoiceRef, int, Decimal]] = []
    for values in rows_values:
        paid_on = values[-1]
        ref = InvoiceRef(*values[:7], values[7] or values[12] or values[1], *values[8:12])
        level = next_level(history.get(ref.pk, ()), due_date=ref.due_date, print_date=print_date, delays=delays)
        if level is not None:
            due.append((ref, level, round_money(ref.total - paid_on)))
    debits = unsettled_debit_invoice_ids([ref.pk for ref, _l, _b in due]) if due else set()

    rows: list[ProposalRow] = []
    for ref, level, balance in due:
        # A payment recorded since (even dated after the print date) is never chased.
        balance = min(balance, ref.total - ref.paid_amount)
        row = ProposalRow(invoice=ref, debtor=Debtor.of(ref), debtor_name=ref.debtor_name, level=level,
                          amount=ref.total, balance=balance, days_late=max((print_date - ref.due_date).days, 0),
                          history=sorted(history.get(ref.pk, ())))
        if balance <= 0:
            row.exclusion = SETTLED
        elif ref.pk in disputes:
            row.exclusion, row.exclusion_detail = DISPUTED, disputes[ref.pk]
        elif ref.pk in debits:
            row.exclusion = DIRECT_DEBIT
        elif credits.get(row.debtor, ZERO) >= balance:
            credits[row.debtor] -= balance
            row.exclusion = CREDIT
        rows.append(row)
    rows.sort(key=lambda r: (r.debtor_name.lower(), r.invoice.due_date, r.invoice.number))
    return rows
