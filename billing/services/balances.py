"""*Restes à recouvrer*: what is still owed in a section on a date, aged by days past the due date
(0–30, 31–60, 61–90, > 90), and the unallocated credits (negative RESTE, no invoice).

Everything is computed from the entries as of ``on`` (invoices issued by then, allocations dated by
then, payments not cancelled by then), in a constant number of queries whatever the number of
sections and rows: two for the open invoices (the allocations dated after ``on``, summed per invoice,
then the invoices whose paid-amount cache less those is below their total, read as tuples), two
for the credits (payments and refunds, credit notes, with their allocations summed in SQL).
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
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
from .payments import PAYABLE_KINDS, Debtor, account_key

HEADERS = ("FACTURE", "DEBITEUR", "TYPE_DEBITEUR", "REF_EXTERNE", "DATE_EMISSION", "ECHEANCE", "MONTANT", "REGLE",
           "RESTE", "RETARD_JOURS")
BUCKETS = (("0_30", gettext_lazy("0 à 30 jours"), 0, 30), ("31_60", gettext_lazy("31 à 60 jours"), 31, 60),
           ("61_90", gettext_lazy("61 à 90 jours"), 61, 90), ("90_plus", gettext_lazy("plus de 90 jours"), 91, None))
HEADERS_ALL = ("SECTION", *HEADERS)
XLSX_WIDTHS = (20, 36, 14, 14, 13, 13, 13, 13, 13, 13)
MONEY = DecimalField(max_digits=12, decimal_places=2)


def bucket_of(days: int | None) -> str | None:
    """The age bucket of a number of days late (``None`` for a credit)."""
    if days is None:
        return None
    for key, _label, _low, high in BUCKETS:
        if high is None or days <= high:
            return key
    return None


@dataclass(slots=True)
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
    section: str = ""  # the section's alias (association-wide lists)
    debtor: tuple = ()  # the debtor's account (``Debtor.account()``), to group rows per debtor
    bucket: str | None = field(init=False)

    def __post_init__(self):
        self.bucket = bucket_of(self.retard_jours)

    def values(self) -> list:
        return [self.facture, self.debiteur, self.type_debiteur, self.ref_externe, self.date_emission, self.echeance,
                self.montant, self.regle, self.reste, self.retard_jours]


def _allocated_by(on: date, field: str):
    """What was allocated to or from each row by ``on`` (one correlated sum per row: use it on few rows)."""
    return Coalesce(Subquery(PaymentAllocation.objects.filter(**{field: OuterRef("pk")}, date__lte=on)
                             .order_by().values(field).annotate(s=Sum("amount")).values("s")[:1], output_field=MONEY),
                    Value(ZERO), output_field=MONEY)


def balances_rows(*, section, on: date, debtor_kind: str | None = None, payment_mode: str | None = None
                  ) -> list[BalanceRow]:
    """Open invoices (oldest due first) then unallocated credits of one section, as of ``on``."""
    return balances_rows_for_sections(sections=[section], on=on, debtor_kind=debtor_kind, payment_mode=payment_mode)


INVOICE_VALUES = ("pk", "section_id", "number", "debtor_name", "debtor_kind", "resident_id", "relative_id", "payer_id",
                  "resident__external_ref", "issue_date", "due_date", "total", "paid_amount")


def balances_rows_for_sections(*, sections, on: date, debtor_kind: str | None = None,
                               payment_mode: str | None = None) -> list[BalanceRow]:
    """Open invoices (oldest due first) then unallocated credits of several sections (the association's
    *restes à recouvrer*: pass ``access.sections_for(user)``), as of ``on``, in five queries whatever the
    number of sections and rows. The open invoices are read as tuples (``values_list``), not model
    instances; days late and buckets are computed in one light loop."""
    section_ids = [s.pk for s in sections]
    aliases = {s.pk: s.alias for s in sections}
    kinds = {key: str(label) for key, label in Invoice.DebtorKind.choices}
    # An invoice's paid amount on ``on`` is its cache ``paid_amount`` (the sum of all its allocations) less
    # what was allocated after ``on`` (nothing when ``on`` is today): the open invoices are those whose cache
    # is below the total, plus those with later allocations — a plain scan, no sum per invoice.
    later = PaymentAllocation.objects.filter(date__gt=on)
    later_paid = dict(later.filter(invoice__section_id__in=section_ids).order_by().values("invoice_id")
                      .annotate(s=Sum("amount")).values_list("invoice_id", "s"))
    invoices = (Invoice.objects.filter(section_id__in=section_ids, kind__in=PAYABLE_KINDS, issue_date__lte=on,
                                       status__in=(Invoice.Status.ISSUED, Invoice.Status.CANCELLED))
                .filter(Q(paid_amount__lt=F("total")) | Q(pk__in=later.values("invoice_id"))).order_by())
    if debtor_kind:
        invoices = invoices.filter(debtor_kind=debtor_kind)
    if payment_mode:
        invoices = invoices.filter(payment_mode=payment_mode)
    rows, unnamed = [], []
    for (pk, section_id, number, name, kind, resident_id, relative_id, payer_id, ref, issued, due, total,
         paid) in invoices.values_list(*INVOICE_VALUES):
        if pk in later_paid:
            paid = round_money(paid - later_paid[pk])
            if paid >= total:
                continue
        delay = (on - due).days if due else 0
        rows.append(BalanceRow(number, name, kinds[kind], ref or "", issued, due, total, paid, total - paid,
                               delay if delay > 0 else 0, pk, aliases[section_id],
                               account_key(section_id, kind, resident_id, relative_id, payer_id)))
        if not name:
            unnamed.append(rows[-1])
    rows.sort(key=lambda r: (r.echeance is None, r.echeance or on, r.facture))  # oldest due first (sorted here:
    # PostgreSQL would spill 50 000 rows to disk)
    if unnamed:  # issued invoices carry their debtor's name; older rows without it: their labels in one query
        labels = {inv.pk: debtor_label(inv) for inv in Invoice.objects.filter(pk__in=[r.invoice_id for r in unnamed])
                  .select_related("resident", "relative", "payer", "payer_group")}
        for row in unnamed:
            row.debiteur = labels[row.invoice_id]
    rows.extend(_credit_rows(section_ids=section_ids, aliases=aliases, on=on, debtor_kind=debtor_kind,
                             payment_mode=payment_mode))
    return rows


ID_CHUNK = 10_000


def _credit_rows(*, section_ids, aliases, on: date, debtor_kind=None, payment_mode=None) -> list[BalanceRow]:
    """One row per payment or credit note not (wholly) allocated on ``on``; refunds are taken
    from the debtor's oldest credits first."""
    kinds = dict(Invoice.DebtorKind.choices)
    not_cancelled = Q(cancelled_at__isnull=True) | Q(cancelled_at__date__gt=on)
    payments = Payment.objects.filter(not_cancelled, section_id__in=section_ids, date__lte=on)
    notes = (Invoice.objects.filter(section_id__in=section_ids, kind=Invoice.Kind.CREDIT_NOTE, issue_date__lte=on)
             .exclude(status=Invoice.Status.DRAFT))
    if debtor_kind:
        payments, notes = payments.filter(debtor_kind=debtor_kind), notes.filter(debtor_kind=debtor_kind)
    # Only what can make a credit row: refunds, and payments not wholly allocated — found by one narrow
    # GROUP BY of the payments with their allocations, then read with their debtors. (No sum per row in a
    # WHERE over big tables: PostgreSQL would cost it for every row and spend seconds compiling it — JIT.)
    allocated = dict(payments.order_by()
                     .annotate(allocated=Coalesce(Sum("allocations__amount", filter=Q(allocations__date__lte=on)),
                                                  Value(ZERO), output_field=MONEY))
                     .filter(Q(kind=Payment.Kind.REFUND) | Q(allocated__lt=F("amount")))
                     .values_list("pk", "allocated"))
    ids = list(allocated)  # read in chunks: SQLite caps the parameters of one statement
    payments = sorted((p for i in range(0, len(ids), ID_CHUNK) for p in Payment.objects.filter(
        pk__in=ids[i:i + ID_CHUNK]).select_related("resident", "relative", "payer")), key=lambda p: (p.date, p.pk))
    # Credit notes are few: each with what was allocated from it (the rows without credit left are skipped below).
    notes = (notes.select_related("resident", "relative", "payer", "payer_group")
             .annotate(allocated=_allocated_by(on, "credit_note")).order_by("issue_date", "pk"))
    sources: dict[Debtor, list] = {}
    refunds: dict[Debtor, Decimal] = {}
    for p in payments:
        if p.kind == Payment.Kind.REFUND:
            refunds[Debtor.of(p)] = refunds.get(Debtor.of(p), ZERO) + p.amount
            continue
        left = p.amount - round_money(allocated[p.pk])
        if left > 0:
            sources.setdefault(Debtor.of(p), []).append(
                (p.date, BalanceRow("", payment_debtor_label(p), str(kinds[p.debtor_kind]),
                                    p.resident.external_ref if p.resident else "", p.date, None, p.amount,
                                    p.amount - left, -left, None, None, aliases[p.section_id],
                                    Debtor.of(p).account()), p.mode))
    for n in notes:
        left = -n.total - round_money(n.allocated)
        if left > 0:
            sources.setdefault(Debtor.of(n), []).append(
                (n.issue_date, BalanceRow("", debtor_label(n), str(kinds[n.debtor_kind]),
                                          n.resident.external_ref if n.resident else "", n.issue_date, None, -n.total,
                                          -n.total - left, -left, None, None, aliases[n.section_id],
                                          Debtor.of(n).account()), ""))
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


def balances_export(*, on: date, fmt: str, section=None, sections=None, debtor_kind=None, payment_mode=None) -> bytes:
    """The rows of one ``section`` (``HEADERS``), or of several ``sections`` with the section's alias
    first (``HEADERS_ALL``)."""
    if fmt not in ("csv", "xlsx"):
        raise ValueError(_("Format inconnu : « %(fmt)s » (formats possibles : csv, xlsx).") % {"fmt": fmt})
    if sections is None:
        rows = balances_rows(section=section, on=on, debtor_kind=debtor_kind, payment_mode=payment_mode)
        return _write_rows(fmt, HEADERS, (r.values() for r in rows), sheet_title=_("Restes à recouvrer"),
                           widths=XLSX_WIDTHS)
    rows = balances_rows_for_sections(sections=sections, on=on, debtor_kind=debtor_kind, payment_mode=payment_mode)
    return _write_rows(fmt, HEADERS_ALL, ([r.section, *r.values()] for r in rows),
                       sheet_title=_("Restes à recouvrer"), widths=(12, *XLSX_WIDTHS))


def balances_filename(section, on: date, fmt: str) -> str:
    return f"restes_{section.alias if section else 'association'}_{on:%Y-%m-%d}.{fmt}"


# ---------------------------------------------------------------- the association

def balances_by_section(rows: list[BalanceRow]) -> list[dict]:
    """``balances_summary`` of each section present in ``rows`` (alias order)."""
    grouped: dict[str, list[BalanceRow]] = {}
    for row in rows:
        grouped.setdefault(row.section, []).append(row)
    return [{"section": alias, **balances_summary(grouped[alias])} for alias in sorted(grouped)]


def balances_by_debtor(rows: list[BalanceRow]) -> list[dict]:
    """One line per debtor (section, account) with a balance: what is owed per age bucket, the
    credits and the net, sorted by section and debtor name."""
    debtors: dict[tuple, dict] = {}
    for row in rows:
        line = debtors.get((row.section, row.debtor))
        if line is None:
            line = debtors[(row.section, row.debtor)] = {
                "section": row.section, "debiteur": row.debiteur, "type_debiteur": row.type_debiteur,
                "ref_externe": row.ref_externe, "credits": ZERO, "net": ZERO,
                **{key: ZERO for key, _label, _l, _h in BUCKETS}}
        line[row.bucket or "credits"] += row.reste
        line["net"] += row.reste
    return sorted((d for d in debtors.values() if d["net"] or any(d[key] for key, *_r in BUCKETS)),
                  key=lambda d: (d["section"], d["debiteur"].casefold()))
