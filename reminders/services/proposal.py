"""Which invoices are due for which reminder level (billing-rules §10), and which must not be chased.

Each invoice moves 1 → 2 → 3 from its own history of *sent* reminders (cancelled ones do not
count): the next level is always the one after the last sent, never skipped nor repeated, and is
due ``delay(level)`` days after the previous letter's print date (level 1: after the due date).
A run takes the issued invoices due on or before the limit date, with their balance on the print
date. Exclusions (kept in the proposal with their reason, never sent): balance zero, waiting for a
social-aid decision (a family invoice of a resident with a ``payers.SocialAidApplication`` *en
attente*: the département will pay retroactively; a refused application brings the invoices back),
disputed, in a direct-debit batch not yet settled, covered by the debtor's credit. No fee is ever
added.

Constant number of queries whatever the number of invoices, debtors and sections: the candidates
with everything computed in SQL (balance on the print date, last sent level and its date, the level
due under each section's delays, the dispute comment, the pending social-aid flag), the delays,
unsettled debits, the pending applications' filing dates, and three for the credits. Python only
builds light tuples from the values and applies the credits in order.
"""
from __future__ import annotations

from collections import defaultdict, namedtuple
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import BooleanField, Case, CharField, DecimalField, F, Max, Q, QuerySet, Sum, Value, When
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_lazy as _

from billing.models import Invoice, Payment
from billing.services.payments import PAYABLE_KINDS, Debtor
from core.formats import fr_date
from core.money import ZERO, round_money
from payers.selectors import pending_filings, pending_resident_ids

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
    SOCIAL_AID: _("aide sociale en attente"),
}


def first_of_month(day: date) -> date:
    return day.replace(day=1)


def delays_for(section) -> ReminderDelays:
    """The section's delays (created with the §10 defaults 15 / 30 / 30 on first use)."""
    delays, _created = ReminderDelays.objects.get_or_create(section=section)
    return delays


def delays_for_sections(sections) -> dict[int, ReminderDelays]:
    """The delays of several sections at once (the missing ones created with the defaults)."""
    ids = [s.pk for s in sections]
    found = {d.section_id: d for d in ReminderDelays.objects.filter(section_id__in=ids)}
    missing = [ReminderDelays(section_id=pk) for pk in ids if pk not in found]
    if missing:
        ReminderDelays.objects.bulk_create(missing, ignore_conflicts=True)
        found.update({d.section_id: d for d in ReminderDelays.objects.filter(section_id__in=[m.section_id
                                                                                             for m in missing])})
    return found


def unsettled_debit_invoice_ids(invoice_ids) -> set[int]:
    """Invoices in a direct-debit batch not yet settled (``invoice_ids``: ids or an id queryset,
    sent as a subquery). Provided by ``sepa`` (layer 4, next to this one); only the import is guarded:
    an error inside the selector must surface, not be mistaken for "none"."""
    try:
        from sepa.selectors import invoices_in_unsettled_batches
    except ImportError:
        return set()
    return set(invoices_in_unsettled_batches(invoice_ids))


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


@dataclass(slots=True)
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
    last_level: int = 0
    last_printed: date | None = None

    @property
    def exclusion_label(self) -> str:
        return str(EXCLUSIONS.get(self.exclusion, "")) if self.exclusion else ""

    @property
    def is_excluded(self) -> bool:
        return bool(self.exclusion)


def next_level(history: list[tuple[int, date]], *, due_date: date, print_date: date, delays) -> int | None:
    """The level due on ``print_date`` for an invoice whose sent reminders are ``history``
    (``[(level, print_date)]``), or ``None``: one after the highest sent, ``delays.days(level)``
    after the previous letter (after the due date for level 1); nothing after level 3.
    (``proposal_rows`` applies the same rule to the levels read in SQL.)"""
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


_DebtorRow = namedtuple("_DebtorRow", "section_id debtor_kind resident_id relative_id payer_id")
_DEBTOR_FIELDS = _DebtorRow._fields


def debtor_credits(sections) -> dict[Debtor, Decimal]:
    """Every debtor's credit in the sections (unallocated payments and credit notes, less refunds),
    like ``billing.services.payments.debtor_credit`` but for all debtors in three queries (sums by
    grouped joins, read as values)."""
    if not isinstance(sections, (list, tuple, set, QuerySet)):
        sections = [sections]

    def allocated(relation):
        return Coalesce(Sum(f"{relation}__amount"), Value(ZERO), output_field=MONEY)

    credits: dict[Debtor, Decimal] = defaultdict(lambda: ZERO)
    for *who, amount, used in (Payment.objects.filter(section__in=sections, kind=Payment.Kind.PAYMENT,
                                                      cancelled_at__isnull=True)
                               .annotate(used=allocated("allocations")).filter(used__lt=F("amount"))
                               .values_list(*_DEBTOR_FIELDS, "amount", "used")):
        credits[Debtor.of(_DebtorRow(*who))] += amount - round_money(used)
    for *who, total, used in (Invoice.objects.filter(section__in=sections, kind=Invoice.Kind.CREDIT_NOTE,
                                                     status=Invoice.Status.ISSUED)
                              .annotate(used=allocated("credit_allocations"))
                              .values_list(*_DEBTOR_FIELDS, "total", "used")):
        left = -total - round_money(used)
        if left > 0:
            credits[Debtor.of(_DebtorRow(*who))] += left
    for *who, amount in (Payment.objects.filter(section__in=sections, kind=Payment.Kind.REFUND,
                                                cancelled_at__isnull=True).values_list(*_DEBTOR_FIELDS, "amount")):
        credits[Debtor.of(_DebtorRow(*who))] -= amount
    return {debtor: amount for debtor, amount in credits.items() if amount > 0}


INVOICE_FIELDS = ("pk", "number", "section_id", "debtor_kind", "resident_id", "relative_id", "payer_id",
                  "debtor_name", "issue_date", "due_date", "total", "paid_amount")
VALUE_FIELDS = INVOICE_FIELDS + ("resident_name", "paid_on", "dispute_comment", "aid_pending")
# Invoices a social-aid decision would have the département pay: the resident's own or a paying relative's.
FAMILY_KINDS = (Invoice.DebtorKind.RESIDENT, Invoice.DebtorKind.RELATIVE)


def aid_pending_flag() -> Case:
    """True for a family invoice of a resident with a pending social-aid application: ``resident_id IN
    (pending applications' residents)``, a subquery not correlated with the invoice (evaluated once)."""
    return Case(When(debtor_kind__in=FAMILY_KINDS, resident_id__in=pending_resident_ids(), then=Value(True)),
                default=Value(False), output_field=BooleanField())


def aid_pending_detail(application) -> str:
    """« dossier déposé le 12/01/2026 (CD38) », the exclusion's detail kept on the reminder line."""
    return _("dossier déposé le %(day)s (%(payer)s)") % {"day": fr_date(application.filed_on),
                                                          "payer": application.payer.code}


def _scope(sections, limit_date: date, prefix: str = "") -> dict:
    return {f"{prefix}section__in": [s.pk for s in sections], f"{prefix}kind__in": PAYABLE_KINDS,
            f"{prefix}status": Invoice.Status.ISSUED, f"{prefix}due_date__lte": limit_date}


def owed_invoices(*, sections, limit_date: date, print_date: date) -> QuerySet:
    """The issued invoices of ``sections`` due on or before ``limit_date`` and still owed on
    ``print_date``: allocations up to then summed in SQL (a join grouped per invoice, no correlated
    subquery: PostgreSQL plans it as hash joins, cheap enough not to trigger its JIT), with the
    dispute comment when the invoice is disputed and the pending social-aid flag."""
    paid_on = Coalesce(Sum("allocations__amount", filter=Q(allocations__date__lte=print_date)), Value(ZERO),
                       output_field=MONEY)
    return (Invoice.objects.filter(issue_date__lte=print_date, **_scope(sections, limit_date))
            .annotate(paid_on=paid_on,
                      dispute_comment=Case(When(dispute__is_disputed=True, then=F("dispute__comment")),
                                           default=Value(None), output_field=CharField()),
                      aid_pending=aid_pending_flag())
            .filter(paid_on__lt=F("total")))


def last_levels(*, sections, limit_date: date) -> dict[int, tuple[int, date]]:
    """``{invoice id: (last sent level, its print date)}`` for the invoices in scope (one grouped
    query). Level n+1 is printed at least ``delay`` days after level n, so the latest print date
    is the last level's."""
    return {invoice_id: (level, printed) for invoice_id, level, printed in (
        Reminder.objects.filter(status=Reminder.Status.SENT, **_scope(sections, limit_date, "invoice__"))
        .values("invoice_id").annotate(level=Max("level"), printed=Max("print_date")).order_by()
        .values_list("invoice_id", "level", "printed"))}


def proposal_rows(*, limit_date: date, print_date: date, section=None, sections=None) -> list[ProposalRow]:
    """Per debtor (sorted by name), the invoices due at a level on ``print_date``, with the
    excluded ones and their reason, for ``section`` or every section of ``sections`` (the caller
    scopes them: ``structures.access.sections_for``)."""
    sections = [section] if section is not None else list(sections or [])
    if not sections:
        return []
    delays = delays_for_sections(sections)
    values_rows = list(owed_invoices(sections=sections, limit_date=limit_date, print_date=print_date)
                       .order_by("due_date", "number").values_list(*VALUE_FIELDS))
    if not values_rows:
        return []
    levels = last_levels(sections=sections, limit_date=limit_date)
    # The first day each level is due, per section (next_level's rule, without a call per invoice).
    earliest = {pk: {level: print_date - timedelta(days=d.days(level)) for level in (1, 2, 3)}
                for pk, d in delays.items()}
    # Unsettled debits are few: read them for the sections' issued invoices (a subquery, no id list).
    debits = unsettled_debit_invoice_ids(Invoice.objects.filter(**_scope(sections, limit_date))
                                         .values_list("pk", flat=True))
    credits = debtor_credits(sections)
    # The filing date of each pending application, for the suspended lines (a few rows: one query).
    filings = pending_filings(Invoice.objects.filter(**_scope(sections, limit_date)).values("resident_id"))

    rows: list[ProposalRow] = []
    append = rows.append
    no_history = (0, None)
    for (pk, number, section_id, kind, resident_id, relative_id, payer_id, debtor_name, issue_date, due_date,
         total, paid_amount, resident_name, paid_on, dispute, aid_pending) in values_rows:
        last_level, last_printed = levels.get(pk, no_history)
        if last_level >= 3 or (last_printed or due_date) > earliest[section_id][last_level + 1]:
            continue
        ref = InvoiceRef(pk, number, section_id, kind, resident_id, relative_id, payer_id,
                         debtor_name or resident_name or number, issue_date, due_date, total, paid_amount)
        # A payment recorded since (even dated after the print date) is never chased.
        balance = min(round_money(total - paid_on), total - paid_amount)
        row = ProposalRow(ref, Debtor.of(ref), ref.debtor_name, last_level + 1, total, balance,
                          max((print_date - due_date).days, 0), last_level=last_level, last_printed=last_printed)
        if balance <= 0:
            row.exclusion = SETTLED
        elif aid_pending:
            row.exclusion = SOCIAL_AID
            application = filings.get(resident_id)
            row.exclusion_detail = aid_pending_detail(application) if application else ""
        elif dispute is not None:
            row.exclusion, row.exclusion_detail = DISPUTED, dispute
        elif pk in debits:
            row.exclusion = DIRECT_DEBIT
        elif credits:
            credit = credits.get(row.debtor, ZERO)
            if credit >= balance:
                credits[row.debtor] = credit - balance
                row.exclusion = CREDIT
        append(row)
    rows.sort(key=lambda r: (r.debtor_name.lower(), r.invoice.due_date, r.invoice.number))
    return rows
