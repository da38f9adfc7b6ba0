"""Payments, allocations and debtors' accounts (billing-rules.md §9).

* A payment goes first to the invoice it names, then — also for what exceeds that invoice's
  balance — to the debtor's other open invoices, oldest due date first (Code civil art. 1342-10);
  what is left is a credit on the debtor's account, offered on later invoices (``credit_apply``)
  or refunded (``refund_record``).
* A credit note is allocated the same way, starting with the invoice it corrects.
* Nothing is deleted: cancelling a payment (reason required) or re-allocating it adds negative
  allocations; the invoice's paid amount is the sum of its allocations.
* ``Invoice.paid_amount`` is the denormalised sum of the invoice's allocations, written in the same
  transaction as each allocation under a row lock of the invoice (``select_for_update``): it keeps
  « impayées » filters, ageing and exports to one query; ``invoice_paid_amount_check`` recomputes it.

An account is per section and debtor: a resident, a paying relative or a payer (``Debtor``).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.audit import log_changes_bulk, log_created_bulk
from core.money import ZERO, round_money

from ..models import Invoice
from ..models.payments import Payment, PaymentAllocation, PaymentBatch

PAYABLE_KINDS = (Invoice.Kind.INVOICE, Invoice.Kind.RAPPEL)


class PaymentState:
    TO_PAY = "to_pay"
    PARTIAL = "partial"
    PAID = "paid"
    CANCELLED = "cancelled"
    LABELS = {TO_PAY: gettext_lazy("À payer"), PARTIAL: gettext_lazy("Partiellement payée"),
              PAID: gettext_lazy("Payée"), CANCELLED: gettext_lazy("Annulée")}


def account_key(section_id: int, kind: str, resident_id, relative_id, payer_id) -> tuple:
    """The key of a debtor's account from an invoice's or a payment's fields — what ``Debtor.q``
    filters on (cheap: used on tens of thousands of rows read with ``values_list``)."""
    if kind == Invoice.DebtorKind.PAYER:
        return (section_id, kind, payer_id)
    if kind == Invoice.DebtorKind.RELATIVE:
        return (section_id, kind, relative_id)
    return (section_id, kind, resident_id)


@dataclass(frozen=True)
class Debtor:
    """Who owes (and pays) in a section: ``kind`` is an ``Invoice.DebtorKind``."""

    section_id: int
    kind: str
    resident_id: int | None = None
    relative_id: int | None = None
    payer_id: int | None = None

    @classmethod
    def of(cls, obj) -> Debtor:
        """The debtor of an invoice or a payment."""
        return cls.from_fields(obj.section_id, obj.debtor_kind, obj.resident_id, obj.relative_id, obj.payer_id)

    @classmethod
    def from_fields(cls, section_id: int, kind: str, resident_id, relative_id, payer_id) -> Debtor:
        """The debtor of an invoice's or a payment's fields (e.g. read with ``values_list``)."""
        if kind == Invoice.DebtorKind.PAYER:
            return cls(section_id, kind, payer_id=payer_id)
        if kind == Invoice.DebtorKind.RELATIVE:
            return cls(section_id, kind, resident_id=resident_id, relative_id=relative_id)
        return cls(section_id, kind, resident_id=resident_id)

    def q(self, prefix: str = "") -> Q:
        """Filter on invoices or payments of this debtor."""
        q = Q(**{f"{prefix}section_id": self.section_id, f"{prefix}debtor_kind": self.kind})
        if self.kind == Invoice.DebtorKind.PAYER:
            return q & Q(**{f"{prefix}payer_id": self.payer_id})
        if self.kind == Invoice.DebtorKind.RELATIVE:
            return q & Q(**{f"{prefix}relative_id": self.relative_id})
        return q & Q(**{f"{prefix}resident_id": self.resident_id})

    def account(self) -> tuple:
        """What ``q`` filters on: the key of the debtor's account (for grouping loaded rows)."""
        return account_key(self.section_id, self.kind, self.resident_id, self.relative_id, self.payer_id)

    def fields(self) -> dict:
        return {"section_id": self.section_id, "debtor_kind": self.kind, "resident_id": self.resident_id,
                "relative_id": self.relative_id, "payer_id": self.payer_id}


# ---------------------------------------------------------------- states

def invoice_payment_state(invoice: Invoice) -> str | None:
    """*à payer*, *partiellement payée*, *payée* or *annulée*; ``None`` for drafts and credit notes."""
    if invoice.kind == Invoice.Kind.CREDIT_NOTE or invoice.status == Invoice.Status.DRAFT:
        return None
    if invoice.status == Invoice.Status.CANCELLED:
        return PaymentState.CANCELLED
    if invoice.paid_amount >= invoice.total:
        return PaymentState.PAID
    if invoice.paid_amount > 0:
        return PaymentState.PARTIAL
    return PaymentState.TO_PAY


def unpaid_q(prefix: str = "") -> Q:
    """Issued invoices (not credit notes) with something left to pay."""
    return (Q(**{f"{prefix}status": Invoice.Status.ISSUED, f"{prefix}kind__in": PAYABLE_KINDS})
            & Q(**{f"{prefix}paid_amount__lt": F(f"{prefix}total")}))


def invoice_paid_amount_check(invoice: Invoice) -> Decimal:
    """The paid amount recomputed from the entries (the cache ``paid_amount`` must equal it)."""
    return round_money(PaymentAllocation.objects.filter(invoice=invoice).aggregate(s=Coalesce(Sum("amount"), ZERO))["s"])


# ---------------------------------------------------------------- allocation core

def _allocate(*, invoice: Invoice, amount: Decimal, on: date, user=None, payment: Payment | None = None,
              credit_note: Invoice | None = None) -> PaymentAllocation:
    """One allocation entry and the paid-amount cache, on an invoice row locked by the caller."""
    allocation = PaymentAllocation.objects.create(invoice=invoice, payment=payment, credit_note=credit_note, amount=amount,
                                           date=on, created_by=user if (user and user.is_authenticated) else None)
    Invoice.objects.filter(pk=invoice.pk).update(paid_amount=F("paid_amount") + amount, updated_at=timezone.now())
    invoice.paid_amount += amount
    return allocation


def allocation_order(invoices, first_id: int | None = None) -> list[Invoice]:
    """The order in which a payment or a credit note is allocated (§9): the named invoice
    (``first_id``) first, then oldest due date first (Code civil art. 1342-10), then oldest issue,
    then number."""
    return sorted(invoices, key=lambda i: (i.pk != first_id, i.due_date or date.max, i.issue_date or date.max,
                                           i.number, i.pk))


def allocation_split(amount: Decimal, invoices) -> tuple[list[tuple[Invoice, Decimal]], Decimal]:
    """THE allocation rule, pure (no query, nothing changed): ``amount`` put on ``invoices`` taken in
    the given order (see ``allocation_order``), each up to its balance (``total - paid_amount``),
    partial on the last one; returns ``([(invoice, part)], left)`` where ``left`` is the credit.
    Used by ``payment_record``, ``credit_note_allocate`` and the bulk path ``payments_record_bulk``."""
    left, parts = amount, []
    for invoice in invoices:
        if left <= 0:
            break
        balance = invoice.total - invoice.paid_amount
        if balance <= 0:
            continue
        part = min(left, balance)
        parts.append((invoice, part))
        left -= part
    return parts, left


def _lock_open_invoices(debtor: Debtor, *, first: Invoice | None = None) -> list[Invoice]:
    """The debtor's open invoices, row-locked (in primary-key order, so that concurrent allocations
    queue instead of deadlocking), returned in allocation order (``allocation_order``)."""
    q = debtor.q() & unpaid_q()
    if first is not None:
        q |= Q(pk=first.pk)
    invoices = Invoice.objects.select_for_update().filter(q).order_by("pk")
    return allocation_order(invoices, first.pk if first is not None else None)


def _distribute(*, debtor: Debtor, amount: Decimal, on: date, user=None, first: Invoice | None = None,
                payment: Payment | None = None, credit_note: Invoice | None = None) -> Decimal:
    """Allocate up to ``amount``; returns what is left (the credit)."""
    parts, left = allocation_split(amount, _lock_open_invoices(debtor, first=first))
    for invoice, part in parts:
        _allocate(invoice=invoice, amount=part, on=on, user=user, payment=payment, credit_note=credit_note)
    return left


def _check_payable(invoice: Invoice, section) -> None:
    if invoice.section_id != section.pk:
        raise ValidationError(_("La facture %(number)s n'appartient pas à cette section.") % {"number": invoice})
    if invoice.kind not in PAYABLE_KINDS or invoice.status != Invoice.Status.ISSUED:
        raise ValidationError(_("La facture %(number)s n'est pas une facture émise à régler.") % {"number": invoice})


def _amount(value, field: str = "amount") -> Decimal:
    try:
        amount = round_money(value)
    except ValueError as exc:
        raise ValidationError({field: _("Montant invalide : %(value)s") % {"value": value}}) from exc
    if amount <= 0:
        raise ValidationError({field: _("Le montant doit être positif (%(value)s).") % {"value": value}})
    return amount


# ---------------------------------------------------------------- payments

@transaction.atomic
def payment_record(*, section, on: date, amount, mode: str, invoice: Invoice | None = None,
                   debtor: Debtor | None = None, reference: str = "", bank: str = "", drawer: str = "",
                   comment: str = "", user=None, batch=None) -> Payment:
    """Record a payment and allocate it (named invoice first, then oldest due first, rest = credit).

    The debtor is the named invoice's, or ``debtor`` when no invoice is named."""
    amount = _amount(amount)
    if mode not in Payment.Mode.values:
        raise ValidationError({"mode": _("Mode de règlement inconnu : %(value)s") % {"value": mode}})
    if invoice is not None:
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        _check_payable(invoice, section)
        named_debtor = Debtor.of(invoice)
        if debtor is not None and debtor != named_debtor:
            raise ValidationError(_("La facture %(number)s n'est pas due par ce débiteur.") % {"number": invoice})
        debtor = named_debtor
    if debtor is None:
        raise ValidationError(_("Indiquez la facture ou le débiteur du règlement."))
    if debtor.section_id != section.pk:
        raise ValidationError(_("Ce débiteur n'appartient pas à cette section."))
    payment = Payment.objects.create(
        kind=Payment.Kind.PAYMENT, invoice=invoice, batch=batch, date=on, amount=amount, mode=mode, reference=reference[:80],
        bank=bank[:80], drawer=drawer[:120], comment=comment[:250],
        entered_by=user if (user and user.is_authenticated) else None, **debtor.fields())
    _distribute(debtor=debtor, amount=amount, on=on, user=user, first=invoice, payment=payment)
    return payment


BULK_BATCH = 1000


@dataclass
class NewPayment:
    """One payment to record with ``payments_record_bulk`` (``row``: its line, for messages)."""

    row: int
    on: date
    amount: Decimal
    mode: str
    debtor: Debtor
    invoice: Invoice | None = None
    reference: str = ""
    bank: str = ""
    drawer: str = ""
    comment: str = ""


def _lock_accounts(*, section, debtors, named_ids) -> tuple[dict[tuple, list[Invoice]], dict[int, Invoice]]:
    """The open invoices of every debtor (and the named invoices), row-locked in primary-key order
    like ``_lock_open_invoices``, in one query: ``({account key: [invoices]}, {pk: invoice})``."""
    ids: dict[str, set] = {}
    for debtor in debtors:
        ids.setdefault(debtor.kind, set()).add(debtor.account()[2])
    field = {Invoice.DebtorKind.PAYER: "payer_id", Invoice.DebtorKind.RELATIVE: "relative_id",
             Invoice.DebtorKind.RESIDENT: "resident_id"}
    accounts = Q(pk__in=[])
    for kind, values in ids.items():
        accounts |= Q(debtor_kind=kind, **{f"{field[kind]}__in": values})
    q = (Q(section=section) & unpaid_q() & accounts) | Q(pk__in=named_ids)
    by_pk = {i.pk: i for i in Invoice.objects.select_for_update().filter(q).order_by("pk")}
    by_account: dict[tuple, list[Invoice]] = {}
    for invoice in by_pk.values():
        by_account.setdefault(Debtor.of(invoice).account(), []).append(invoice)
    return by_account, by_pk


@transaction.atomic
def payments_record_bulk(*, section, payments: list[NewPayment], user=None) -> list[Payment]:
    """Record many payments (an import), allocated exactly as ``payment_record`` one after the other
    would — same order, same rule (``allocation_order`` + ``allocation_split``) — but in a number of
    queries that does not grow with the lines: the debtors' open invoices are loaded and locked once,
    the allocations computed in memory, then payments, allocations, the invoices' paid amounts and
    the audit-log entries are written in bulk. All or nothing (French message per line)."""
    if not payments:
        return []
    user = user if (user and user.is_authenticated) else None
    by_account, by_pk = _lock_accounts(section=section, debtors={p.debtor for p in payments},
                                       named_ids={p.invoice.pk for p in payments if p.invoice is not None})
    errors, created, allocations, touched = [], [], [], {}
    for line in payments:
        first, debtor = None, line.debtor
        try:
            amount = _amount(line.amount)
            if line.mode not in Payment.Mode.values:
                raise ValidationError(_("Mode de règlement inconnu : %(value)s") % {"value": line.mode})
            if line.invoice is not None:
                first = by_pk[line.invoice.pk]
                _check_payable(first, section)
                if Debtor.of(first) != debtor:
                    raise ValidationError(_("La facture %(number)s n'est pas due par ce débiteur.") % {"number": first})
            if debtor.section_id != section.pk:
                raise ValidationError(_("Ce débiteur n'appartient pas à cette section."))
        except ValidationError as exc:
            errors.extend(_("Ligne %(row)s : %(error)s") % {"row": line.row, "error": m} for m in exc.messages)
            continue
        payment = Payment(kind=Payment.Kind.PAYMENT, section=section, invoice=first, date=line.on, amount=amount,
                          mode=line.mode, reference=line.reference[:80], bank=line.bank[:80],
                          drawer=line.drawer[:120], comment=line.comment[:250], entered_by=user,
                          debtor_kind=debtor.kind, resident_id=debtor.resident_id, relative_id=debtor.relative_id,
                          payer_id=debtor.payer_id)
        created.append(payment)
        account = by_account.get(debtor.account(), [])
        parts, _left = allocation_split(amount, allocation_order(account, first.pk if first is not None else None))
        for invoice, part in parts:
            allocations.append(PaymentAllocation(invoice=invoice, payment=payment, amount=part, date=line.on,
                                                 created_by=user))
            invoice.paid_amount += part
            touched[invoice.pk] = invoice
    if errors:
        raise ValidationError(errors)
    Payment.objects.bulk_create(created, batch_size=BULK_BATCH)
    for allocation in allocations:
        allocation.payment_id = allocation.payment.pk
    PaymentAllocation.objects.bulk_create(allocations, batch_size=BULK_BATCH)
    # The paid-amount cache of the touched invoices (rows locked above) is, by definition, the sum of their
    # allocations: one UPDATE computing it in SQL (equal to the amounts computed in memory).
    allocated = (PaymentAllocation.objects.filter(invoice=OuterRef("pk")).order_by().values("invoice")
                 .annotate(s=Sum("amount")).values("s"))
    Invoice.objects.filter(pk__in=list(touched)).update(paid_amount=Coalesce(Subquery(allocated), ZERO),
                                                        updated_at=timezone.now())
    log_created_bulk(created + allocations, actor=user)
    return created


def payment_allocated(payment: Payment) -> Decimal:
    return round_money(payment.allocations.aggregate(s=Coalesce(Sum("amount"), ZERO))["s"])


def _reverse_allocations(*, allocations, on: date, user=None, payment=None, credit_note=None) -> None:
    """Cancel the net allocation of one source on each invoice by a negative entry."""
    nets: dict[int, Decimal] = {}
    for invoice_id, amount in allocations.values_list("invoice_id", "amount"):
        nets[invoice_id] = nets.get(invoice_id, ZERO) + amount
    invoices = {i.pk: i for i in Invoice.objects.select_for_update().filter(pk__in=nets).order_by("pk")}
    for invoice_id, net in nets.items():
        if net:
            _allocate(invoice=invoices[invoice_id], amount=-net, on=on, user=user, payment=payment,
                      credit_note=credit_note)


@transaction.atomic
def payment_cancel(*, payment: Payment, reason: str, user=None) -> Payment:
    """Cancel a payment (or a refund) entered by mistake: reason required, allocations reversed,
    the row kept (and audited)."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Le motif de l'annulation est obligatoire.")})
    payment = Payment.objects.select_for_update().get(pk=payment.pk)
    if payment.is_cancelled:
        raise ValidationError(_("Ce règlement est déjà annulé."))
    today = timezone.localdate()
    _reverse_allocations(allocations=payment.allocations.all(), on=today, user=user, payment=payment)
    payment.cancelled_at = timezone.now()
    payment.cancelled_by = user if (user and user.is_authenticated) else None
    payment.cancel_reason = reason[:250]
    payment.save(update_fields=["cancelled_at", "cancelled_by", "cancel_reason"])
    return payment


@transaction.atomic
def payments_cancel_many(*, reasons: dict[int, str], user=None) -> list[int]:
    """``payment_cancel`` for many payments at once (``{payment id: reason}``) in a constant number of
    queries — the same entries (negative allocations, paid-amount cache, cancelled row) and one
    audit-log entry per payment and per allocation (bulk writes send no model signals). Payments
    already cancelled are skipped; returns the ids cancelled."""
    if any(not (reason or "").strip() for reason in reasons.values()):
        raise ValidationError({"reason": _("Le motif de l'annulation est obligatoire.")})
    ids = list(Payment.objects.select_for_update().filter(pk__in=list(reasons), cancelled_at__isnull=True)
               .order_by("pk").values_list("pk", flat=True))
    if not ids:
        return []
    nets: dict[tuple[int, int], Decimal] = {}
    for payment_id, invoice_id, amount in PaymentAllocation.objects.filter(payment_id__in=ids).values_list(
            "payment_id", "invoice_id", "amount"):
        nets[(payment_id, invoice_id)] = nets.get((payment_id, invoice_id), ZERO) + amount
    nets = {key: net for key, net in nets.items() if net}
    now, today = timezone.now(), timezone.localdate()
    actor = user if (user and user.is_authenticated) else None
    invoice_ids = list(Invoice.objects.select_for_update().filter(
        pk__in={invoice_id for _payment, invoice_id in nets}).order_by("pk").values_list("pk", flat=True))
    allocations = PaymentAllocation.objects.bulk_create([
        PaymentAllocation(invoice_id=invoice_id, payment_id=payment_id, amount=-net, date=today, created_by=actor)
        for (payment_id, invoice_id), net in nets.items()], batch_size=1000)
    # The paid-amount cache of the locked invoices, recomputed from their entries in one statement.
    paid = (PaymentAllocation.objects.filter(invoice_id=OuterRef("pk")).order_by().values("invoice_id")
            .annotate(s=Sum("amount")).values("s"))
    Invoice.objects.filter(pk__in=invoice_ids).update(paid_amount=Coalesce(Subquery(paid), ZERO), updated_at=now)
    by_reason: dict[str, list[int]] = {}
    for pk in ids:
        by_reason.setdefault(reasons[pk].strip()[:250], []).append(pk)
    for reason, pks in by_reason.items():
        Payment.objects.filter(pk__in=pks).update(cancelled_at=now, cancelled_by=actor, cancel_reason=reason)
    log_changes_bulk(Payment, [
        (pk, f"Payment {pk}", {"cancelled_at": ["None", str(now)], "cancel_reason": ["", reason]})
        for reason, pks in by_reason.items() for pk in pks], actor=actor, timestamp=now)
    log_changes_bulk(PaymentAllocation, [
        (a.pk, a.amount, {"invoice": ["None", str(a.invoice_id)], "payment": ["None", str(a.payment_id)],
                          "amount": ["None", str(a.amount)]}) for a in allocations if a.pk],
        action="create", actor=actor, timestamp=now)
    return ids


@transaction.atomic
def payment_reallocate(*, payment: Payment, amounts: dict[int, Decimal], user=None) -> Payment:
    """Manual re-allocation: the payment's allocations are reversed, then it is put on the given
    invoices (``{invoice id: amount}``, each at most the invoice's balance); the rest is credit."""
    payment = Payment.objects.select_for_update().get(pk=payment.pk)
    if payment.is_cancelled or payment.kind != Payment.Kind.PAYMENT:
        raise ValidationError(_("Seul un règlement non annulé peut être réimputé."))
    debtor = Debtor.of(payment)
    wanted = {int(pk): _amount(value) for pk, value in amounts.items() if value not in (None, "") and
              round_money(value) != 0}
    if sum(wanted.values(), ZERO) > payment.amount:
        raise ValidationError(_("Le total imputé (%(total)s) dépasse le montant du règlement (%(amount)s).") % {
            "total": sum(wanted.values(), ZERO), "amount": payment.amount})
    today = timezone.localdate()
    _reverse_allocations(allocations=payment.allocations.all(), on=today, user=user, payment=payment)
    invoices = {i.pk: i for i in Invoice.objects.select_for_update().filter(debtor.q(), pk__in=wanted).order_by("pk")}
    for invoice_id, amount in wanted.items():
        invoice = invoices.get(invoice_id)
        if invoice is None:
            raise ValidationError(_("La facture n° %(id)s n'est pas due par ce débiteur.") % {"id": invoice_id})
        _check_payable(invoice, payment.section)
        if amount > invoice.total - invoice.paid_amount:
            raise ValidationError(_("%(amount)s dépasse le reste à régler de la facture %(number)s (%(balance)s).") % {
                "amount": amount, "number": invoice.number, "balance": invoice.total - invoice.paid_amount})
        _allocate(invoice=invoice, amount=amount, on=today, user=user, payment=payment)
    return payment


# ---------------------------------------------------------------- credit notes

@transaction.atomic
def credit_note_allocate(*, credit_note: Invoice, user=None) -> Decimal:
    """Allocate an issued credit note like a payment, starting with the invoice it corrects (even
    when the credit note has just cancelled it); returns what is left as credit."""
    credit_note = Invoice.objects.select_for_update().get(pk=credit_note.pk)
    if credit_note.kind != Invoice.Kind.CREDIT_NOTE or credit_note.status != Invoice.Status.ISSUED:
        raise ValidationError(_("Seul un avoir émis peut être imputé."))
    available = -credit_note.total - round_money(
        credit_note.credit_allocations.aggregate(s=Coalesce(Sum("amount"), ZERO))["s"])
    if available <= 0:
        return ZERO
    on = credit_note.issue_date or timezone.localdate()
    return _distribute(debtor=Debtor.of(credit_note), amount=available, on=on, user=user,
                       first=credit_note.credited_invoice, credit_note=credit_note)


# ---------------------------------------------------------------- credit on the account

def _credit_sources(debtor: Debtor, *, lock: bool = False) -> list[tuple[object, Decimal]]:
    """Unallocated payments and credit notes of the debtor, oldest first: ``[(source, available)]``."""
    payments = Payment.objects.filter(debtor.q(), kind=Payment.Kind.PAYMENT, cancelled_at__isnull=True)
    notes = Invoice.objects.filter(debtor.q(), kind=Invoice.Kind.CREDIT_NOTE, status=Invoice.Status.ISSUED)
    if lock:
        payments, notes = payments.select_for_update().order_by("pk"), notes.select_for_update().order_by("pk")
    sources = []
    allocated_p = dict(PaymentAllocation.objects.filter(payment__in=[p.pk for p in payments]).values("payment_id")
                       .annotate(s=Sum("amount")).values_list("payment_id", "s"))
    for p in payments:
        left = p.amount - round_money(allocated_p.get(p.pk) or ZERO)
        if left > 0:
            sources.append((p.date, p.pk, p, left))
    allocated_n = dict(PaymentAllocation.objects.filter(credit_note__in=[n.pk for n in notes]).values("credit_note_id")
                       .annotate(s=Sum("amount")).values_list("credit_note_id", "s"))
    for n in notes:
        left = -n.total - round_money(allocated_n.get(n.pk) or ZERO)
        if left > 0:
            sources.append((n.issue_date, n.pk, n, left))
    sources.sort(key=lambda s: (s[0], s[1]))
    return [(source, left) for _d, _pk, source, left in sources]


def _refunded(debtor: Debtor) -> Decimal:
    return round_money(Payment.objects.filter(debtor.q(), kind=Payment.Kind.REFUND, cancelled_at__isnull=True)
                       .aggregate(s=Coalesce(Sum("amount"), ZERO))["s"])


def debtor_credit(debtor: Debtor) -> Decimal:
    """The debtor's credit: unallocated payments and credit notes, less the refunds."""
    return max(sum((left for _s, left in _credit_sources(debtor)), ZERO) - _refunded(debtor), ZERO)


@transaction.atomic
def credit_apply(*, invoice: Invoice, user=None) -> Decimal:
    """Put the debtor's credit on ``invoice`` (oldest credit first); returns the amount applied."""
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    _check_payable(invoice, invoice.section)
    debtor = Debtor.of(invoice)
    sources = _credit_sources(debtor, lock=True)
    available = sum((left for _s, left in sources), ZERO) - _refunded(debtor)
    need = min(invoice.total - invoice.paid_amount, available)
    applied, today = ZERO, timezone.localdate()
    for source, left in sources:
        if need <= 0:
            break
        part = min(left, need)
        kwargs = {"payment": source} if isinstance(source, Payment) else {"credit_note": source}
        _allocate(invoice=invoice, amount=part, on=today, user=user, **kwargs)
        need -= part
        applied += part
    return applied


@transaction.atomic
def refund_record(*, debtor: Debtor, on: date, amount, mode: str, reference: str = "", comment: str = "",
                  user=None) -> Payment:
    """Refund (part of) the debtor's credit: an entry of its own, at most the credit."""
    amount = _amount(amount)
    if mode not in Payment.Mode.values:
        raise ValidationError({"mode": _("Mode de règlement inconnu : %(value)s") % {"value": mode}})
    _credit_sources(debtor, lock=True)  # queue behind concurrent allocations of the same credit
    credit = debtor_credit(debtor)
    if amount > credit:
        raise ValidationError({"amount": _("Le remboursement (%(amount)s) dépasse le crédit du débiteur "
                                           "(%(credit)s).") % {"amount": amount, "credit": credit}})
    return Payment.objects.create(kind=Payment.Kind.REFUND, date=on, amount=amount, mode=mode,
                                  reference=reference[:80], comment=comment[:250],
                                  entered_by=user if (user and user.is_authenticated) else None, **debtor.fields())


# ---------------------------------------------------------------- batches (fast keying)

@dataclass
class BatchLine:
    """One keyed line: ``row`` is its number on the screen (for messages)."""

    row: int
    invoice: Invoice
    amount: Decimal
    reference: str = ""
    bank: str = ""
    drawer: str = ""


@transaction.atomic
def payment_batch_record(*, section, on: date, mode: str, lines: list[BatchLine], user=None):
    """Record keyed payments as one batch, all or nothing (each allocated like ``payment_record``).
    A cheque batch prints the *bordereau de remise de chèques*."""
    if mode not in (Payment.Mode.CHEQUE, Payment.Mode.TRANSFER, Payment.Mode.CASH):
        raise ValidationError(_("Une remise regroupe des chèques, des virements ou des espèces (pas « %(mode)s »).")
                              % {"mode": mode})
    if not lines:
        raise ValidationError(_("Aucune ligne saisie."))
    errors = []
    batch = PaymentBatch.objects.create(section=section, date=on, mode=mode,
                                        created_by=user if (user and user.is_authenticated) else None)
    for line in lines:
        if mode == Payment.Mode.CHEQUE and not line.reference.strip():
            errors.append(_("Ligne %(row)s : le numéro du chèque est obligatoire.") % {"row": line.row})
            continue
        try:
            payment_record(section=section, invoice=line.invoice, on=on, amount=line.amount, mode=mode,
                           reference=line.reference.strip(), bank=line.bank.strip(),
                           drawer=line.drawer.strip(), user=user, batch=batch)
        except ValidationError as exc:
            errors.extend(_("Ligne %(row)s : %(error)s") % {"row": line.row, "error": m} for m in exc.messages)
    if errors:
        raise ValidationError(errors)
    return batch


def batch_deposit_rows(batch) -> tuple[list[Payment], Decimal]:
    """The batch's payments (cancelled ones left out) and their total, for the deposit slip."""
    payments = list(batch.payments.filter(cancelled_at__isnull=True).select_related("invoice").order_by("pk"))
    return payments, sum((p.amount for p in payments), ZERO)


def invoice_lookup(*, section, query: str, limit: int = 8) -> list[Invoice]:
    """Open invoices of the section matching what was typed: an invoice number (whole, or its end:
    « 12 » finds …-000012) or a name (debtor, resident); oldest due first."""
    query = (query or "").strip()
    if not query:
        return []
    base = Invoice.objects.filter(unpaid_q(), section=section).select_related("resident", "relative", "payer")
    exact = list(base.filter(number__iexact=query))
    if exact:
        return exact
    q = Q(debtor_name__icontains=query) | Q(resident__last_name__icontains=query)
    if query.isdigit():
        q |= Q(number__endswith=query.zfill(6))
    return list(base.filter(q).order_by("due_date", "number")[:limit])


# ---------------------------------------------------------------- a payment with chosen allocations

@transaction.atomic
def payment_record_allocated(*, section, debtor: Debtor, on: date, amount, mode: str, amounts: dict[int, Decimal],
                             reference: str = "", comment: str = "", user=None) -> Payment:
    """Record a payment put on the invoices the clerk chose (``{invoice id: amount}``, each at most the
    invoice's balance, all of ``debtor`` in ``section``); what is not allocated stays as credit.
    Used for a payer's payment spread over its beneficiaries' invoices."""
    amount = _amount(amount)
    if mode not in Payment.Mode.values:
        raise ValidationError({"mode": _("Mode de règlement inconnu : %(value)s") % {"value": mode}})
    if debtor.section_id != section.pk:
        raise ValidationError(_("Ce débiteur n'appartient pas à cette section."))
    wanted = {int(pk): _amount(value) for pk, value in amounts.items()}
    total = sum(wanted.values(), ZERO)
    if total > amount:
        raise ValidationError(_("Le total imputé (%(total)s) dépasse le montant du règlement (%(amount)s).") % {
            "total": total, "amount": amount})
    invoices = {i.pk: i for i in Invoice.objects.select_for_update().filter(debtor.q(), pk__in=wanted).order_by("pk")}
    payment = Payment.objects.create(
        kind=Payment.Kind.PAYMENT, date=on, amount=amount, mode=mode, reference=reference[:80], comment=comment[:250],
        entered_by=user if (user and user.is_authenticated) else None, **debtor.fields())
    for invoice_id, part in wanted.items():
        invoice = invoices.get(invoice_id)
        if invoice is None:
            raise ValidationError(_("La facture n° %(id)s n'est pas due par ce débiteur.") % {"id": invoice_id})
        _check_payable(invoice, section)
        if part > invoice.total - invoice.paid_amount:
            raise ValidationError(_("%(amount)s dépasse le reste à régler de la facture %(number)s (%(balance)s).") % {
                "amount": part, "number": invoice.number, "balance": invoice.total - invoice.paid_amount})
        _allocate(invoice=invoice, amount=part, on=on, user=user, payment=payment)
    return payment
