"""*Restes à recouvrer*: what is still owed in a section on a date, aged by days past the due date
(0–30, 31–60, 61–90, > 90), and the unallocated credits (negative RESTE, no invoice).

Everything is computed from the entries as of ``on`` (invoices issued by then, allocations dated by
then, payments not cancelled by then), in a constant number of queries: one for the open invoices
(allocations summed in SQL), three for the credits (payments, credit notes, refunds with their
allocations summed in SQL).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db.models import DecimalField, F, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.exports import csv_bytes, xlsx_bytes
from core.money import ZERO, round_money

from ..models import Invoice, Payment, PaymentAllocation
from ..selectors import debtor_label, payment_debtor_label
from .payments import PAYABLE_KINDS

HEADERS = ("FACTURE", "DEBITEUR", "TYPE_DEBITEUR", "REF_EXTERNE", "DATE_EMISSION", "ECHEANCE", "MONTANT", "REGLE",
           "RESTE", "RETARD_JOURS")
BUCKETS = (("0_30", gettext_lazy("0 à 30 jours"), 0, 30), ("31_60", gettext_lazy("31 à 60 jours"), 31, 60),
           ("61_90", gettext_lazy("61 à 90 jours"), 61, 90), ("90_plus", gettext_lazy("plus de 90 jours"), 91, None))
XLSX_WIDTHS = (20, 36, 14, 14, 13, 13, 13, 13, 13, 13)
MONEY = DecimalField(max_digits=12, decimal_places=2)


@dataclass
class BalanceRow:
    facture: str
    debiteur: str
    type_debiteur: str
    ref_externe: str
    date_emission: date | None
    echeance: date | None
    montant: Decimal
    regle: Decimal
    reste: Decimal
    retard_jours: int | None
    invoice_id: int | None = None

    @property
    def bucket(self) -> str | None:
        if self.retard_jours is None:
            return None
        for key, _label, low, high in BUCKETS:
            if self.retard_jours >= low and (high is None or self.retard_jours <= high):
                return key
        return BUCKETS[0][0]

    def values(self) -> list:
        return [self.facture, self.debiteur, self.type_debiteur, self.ref_externe, self.date_emission, self.echeance,
                self.montant, self.regle, self.reste, self.retard_jours]


def _allocated_by(on: date, field: str):
    return Coalesce(Subquery(PaymentAllocation.objects.filter(**{field: OuterRef("pk")}, date__lte=on)
                             .order_by().values(field).annotate(s=Sum("amount")).values("s")[:1], output_field=MONEY),
                    Value(ZERO), output_field=MONEY)


def balances_rows(*, section, on: date, debtor_kind: str | None = None, payment_mode: str | None = None
                  ) -> list[BalanceRow]:
    """Open invoices (oldest due first) then unallocated credits, as of ``on``."""
    kinds = dict(Invoice.DebtorKind.choices)
    invoices = (Invoice.objects.filter(section=section, kind__in=PAYABLE_KINDS, issue_date__lte=on,
                                       status__in=(Invoice.Status.ISSUED, Invoice.Status.CANCELLED))
                .select_related("resident", "relative", "payer", "payer_group")
                .annotate(paid_on=_allocated_by(on, "invoice"))
                .filter(paid_on__lt=F("total")).order_by("due_date", "number"))
    if debtor_kind:
        invoices = invoices.filter(debtor_kind=debtor_kind)
    if payment_mode:
        invoices = invoices.filter(payment_mode=payment_mode)
    rows = []
    for inv in invoices:
        paid = round_money(inv.paid_on)
        delay = (on - inv.due_date).days if inv.due_date else 0
        rows.append(BalanceRow(inv.number, debtor_label(inv), str(kinds[inv.debtor_kind]),
                               inv.resident.external_ref if inv.resident else "", inv.issue_date, inv.due_date,
                               inv.total, paid, inv.total - paid, max(delay, 0), inv.pk))
    rows.extend(_credit_rows(section=section, on=on, debtor_kind=debtor_kind, payment_mode=payment_mode))
    return rows


def _credit_rows(*, section, on: date, debtor_kind=None, payment_mode=None) -> list[BalanceRow]:
    """One row per payment or credit note not (wholly) allocated on ``on``; refunds are taken
    from the debtor's oldest credits first."""
    from .payments import Debtor

    kinds = dict(Invoice.DebtorKind.choices)
    not_cancelled = Q(cancelled_at__isnull=True) | Q(cancelled_at__date__gt=on)
    payments = (Payment.objects.filter(not_cancelled, section=section, date__lte=on)
                .select_related("resident", "relative", "payer")
                .annotate(allocated=_allocated_by(on, "payment"))
                # Only what can make a credit row: refunds, and payments not wholly allocated (the
                # database skips the fully allocated ones instead of Python loading them all).
                .filter(Q(kind=Payment.Kind.REFUND) | Q(allocated__lt=F("amount"))).order_by("date", "pk"))
    notes = (Invoice.objects.filter(section=section, kind=Invoice.Kind.CREDIT_NOTE, issue_date__lte=on)
             .exclude(status=Invoice.Status.DRAFT).select_related("resident", "relative", "payer", "payer_group")
             .annotate(allocated=_allocated_by(on, "credit_note")).filter(allocated__lt=-F("total"))
             .order_by("issue_date", "pk"))
    if debtor_kind:
        payments, notes = payments.filter(debtor_kind=debtor_kind), notes.filter(debtor_kind=debtor_kind)
    sources: dict[Debtor, list] = {}
    refunds: dict[Debtor, Decimal] = {}
    for p in payments:
        if p.kind == Payment.Kind.REFUND:
            refunds[Debtor.of(p)] = refunds.get(Debtor.of(p), ZERO) + p.amount
            continue
        left = p.amount - round_money(p.allocated)
        if left > 0:
            sources.setdefault(Debtor.of(p), []).append(
                (p.date, BalanceRow("", payment_debtor_label(p), str(kinds[p.debtor_kind]),
                                    p.resident.external_ref if p.resident else "", p.date, None, p.amount,
                                    p.amount - left, -left, None), p.mode))
    for n in notes:
        left = -n.total - round_money(n.allocated)
        if left > 0:
            sources.setdefault(Debtor.of(n), []).append(
                (n.issue_date, BalanceRow("", debtor_label(n), str(kinds[n.debtor_kind]),
                                          n.resident.external_ref if n.resident else "", n.issue_date, None, -n.total,
                                          -n.total - left, -left, None), ""))
    rows = []
    for debtor, items in sources.items():
        refund = refunds.get(debtor, ZERO)
        for _day, row, mode in sorted(items, key=lambda i: i[0]):
            if refund > 0:
                used = min(refund, -row.reste)
                refund -= used
                row.reste += used
            if row.reste < 0 and (not payment_mode or mode == payment_mode):
                rows.append(row)
    return rows


def balances_summary(rows: list[BalanceRow]) -> dict:
    """Totals per age bucket, of the credits and overall."""
    buckets = {key: {"key": key, "label": str(label), "count": 0, "total": ZERO} for key, label, _l, _h in BUCKETS}
    credits = {"count": 0, "total": ZERO}
    for row in rows:
        if row.bucket:
            buckets[row.bucket]["count"] += 1
            buckets[row.bucket]["total"] += row.reste
        else:
            credits["count"] += 1
            credits["total"] += row.reste
    owed = sum((b["total"] for b in buckets.values()), ZERO)
    return {"buckets": list(buckets.values()), "owed": owed, "credits": credits, "net": owed + credits["total"]}


# ---------------------------------------------------------------- files

def _write_rows(fmt: str, headers, rows, *, sheet_title: str = "", widths=()) -> bytes:
    """CSV or XLSX of ``rows`` through the shared writer (formula-like texts neutralised)."""
    if fmt == "csv":
        return csv_bytes(itertools.chain([headers], rows))
    return xlsx_bytes(sheet_title or "Export", rows, headers=headers, widths=widths)


def balances_export(*, section, on: date, fmt: str, debtor_kind=None, payment_mode=None) -> bytes:
    if fmt not in ("csv", "xlsx"):
        raise ValueError(_("Format inconnu : « %(fmt)s » (formats possibles : csv, xlsx).") % {"fmt": fmt})
    rows = balances_rows(section=section, on=on, debtor_kind=debtor_kind, payment_mode=payment_mode)
    return _write_rows(fmt, HEADERS, (r.values() for r in rows), sheet_title=_("Restes à recouvrer"),
                       widths=XLSX_WIDTHS)


def balances_filename(section, on: date, fmt: str) -> str:
    return f"restes_{section.alias}_{on:%Y-%m-%d}.{fmt}"
