"""Régularisation (billing-rules.md §6, « Changes after issue »): per stay and debtor of a period, what
the engine gives today from the final data against what was issued (invoices and rappels minus credit
notes), and the one action that settles the difference — a credit note for what is no longer due, an
invoice for what is newly due, each naming the period and the reason.

Generation leaves the (debtor, stay) pairs that already have issued lines to this module: a draft never
bills a day already issued to the same debtor for the same stay, and a share is never lost.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.money import ZERO, format_euros, round_money
from payers.models import Payer, PayerGroup
from residents.models import Relative

from ..models import BillingPeriod, Invoice, InvoiceLine, Product

COUNTED_STATUSES = (Invoice.Status.ISSUED, Invoice.Status.CANCELLED)
# Lines whose quantity is a number of days (credit notes and régularisations only carry amounts).
DAY_REASONS_EXCLUDED = (InvoiceLine.Reason.CREDIT, InvoiceLine.Reason.RAPPEL, InvoiceLine.Reason.MANUAL,
                        InvoiceLine.Reason.REGULARISATION, InvoiceLine.Reason.MONTHLY)
ABSENCE_REASONS = {"absence_hospital", "absence_psy", "absence_convenience", "absence_convenience_cap"}


def debtor_key(*, kind: str, resident_id, relative_id, payer_id, group_id) -> tuple:
    if kind == "payer":
        return ("payer", None, None, payer_id, group_id)
    return (kind, resident_id, relative_id, None, None)


def invoice_debtor_key(invoice) -> tuple:
    return debtor_key(kind=invoice.debtor_kind, resident_id=invoice.resident_id, relative_id=invoice.relative_id,
                      payer_id=invoice.payer_id, group_id=invoice.payer_group_id)


@dataclass
class Tally:
    amount: Decimal = ZERO
    days: Decimal = ZERO
    prices: set = field(default_factory=set)
    reasons: set = field(default_factory=set)

    def add(self, *, amount, quantity=None, unit_price=None, reason=None):
        self.amount += amount
        if quantity is not None:
            self.days += quantity
            self.prices.add(unit_price)
            self.reasons.add(reason)


@dataclass
class ProductDiff:
    product: Product
    issued: Decimal
    due: Decimal
    issued_days: Decimal
    due_days: Decimal

    @property
    def difference(self) -> Decimal:
        return self.due - self.issued

    @property
    def detail(self) -> str:
        return _("%(product)s : émis %(issued)s (%(idays)s j), dû %(due)s (%(ddays)s j)") % {
            "product": self.product.label, "issued": format_euros(self.issued), "idays": _days(self.issued_days),
            "due": format_euros(self.due), "ddays": _days(self.due_days)}


def _days(value: Decimal) -> str:
    if value == value.to_integral_value():
        return str(int(value))
    return f"{value.normalize():f}".replace(".", ",")


@dataclass
class Regularisation:
    """One debtor of one stay whose issued amount differs from what is due today."""

    key: tuple
    stay_id: int
    resident_id: int
    resident_name: str
    debtor_label: str
    products: list[ProductDiff]  # only the products whose amount differs
    reason: str
    issued: Decimal = ZERO  # every product of the debtor and stay
    due: Decimal = ZERO

    @property
    def difference(self) -> Decimal:
        return self.due - self.issued

    @property
    def details(self) -> list[str]:
        return [p.detail for p in self.products]


def issued_lines(*, period: BillingPeriod):
    """Every issued line (invoices, rappels, régularisations, credit notes) of the section dated in the period."""
    return (InvoiceLine.objects.filter(invoice__section_id=period.section_id, invoice__status__in=COUNTED_STATUSES,
                                       date_from__range=(period.start, period.end), stay__isnull=False)
            .exclude(reason=InvoiceLine.Reason.POCKET_MONEY)  # the quarterly settlement (§8) is no correction
            .select_related("invoice", "product"))


def issued_pairs(*, period: BillingPeriod) -> set[tuple]:
    """(debtor key, stay id) pairs that already have issued lines in the period: generation drafts none of them."""
    pairs = set()
    for row in (issued_lines(period=period).values(
            "stay_id", "invoice__debtor_kind", "invoice__resident_id", "invoice__relative_id", "invoice__payer_id",
            "invoice__payer_group_id").distinct()):
        pairs.add((debtor_key(kind=row["invoice__debtor_kind"], resident_id=row["invoice__resident_id"],
                              relative_id=row["invoice__relative_id"], payer_id=row["invoice__payer_id"],
                              group_id=row["invoice__payer_group_id"]), row["stay_id"]))
    return pairs


def _line_key(debtor) -> tuple:
    return debtor_key(kind=debtor.kind, resident_id=debtor.resident_id, relative_id=debtor.relative_id,
                      payer_id=debtor.payer_id, group_id=debtor.group_id)


def period_regularisations(*, period: BillingPeriod, lines=None, names=None) -> list[Regularisation]:
    """What differs, per issued (debtor, stay), between the engine on today's data and the issued lines."""
    from .generation import compute_period

    if lines is None:
        lines, _warnings, names = compute_period(section=period.section, start=period.start, end=period.end)
    names = names or {}
    due: dict[tuple, dict[int, Tally]] = defaultdict(lambda: defaultdict(Tally))
    products: dict[int, Product] = {}
    stay_resident: dict[int, int] = {}
    debtors_now: dict[int, set] = defaultdict(set)
    for line in lines:
        key = _line_key(line.debtor)
        products[line.product.pk] = line.product
        stay_resident[line.stay_id] = line.resident_id
        debtors_now[line.stay_id].add(key)
        daily = line.reason not in ("monthly", "ash_contribution")
        due[(key, line.stay_id)][line.product.pk].add(
            amount=line.amount, quantity=line.quantity if daily else None, unit_price=line.unit_price,
            reason=line.reason)
    issued: dict[tuple, dict[int, Tally]] = defaultdict(lambda: defaultdict(Tally))
    debtors_issued: dict[int, set] = defaultdict(set)
    for ln in issued_lines(period=period):
        key = invoice_debtor_key(ln.invoice)
        products[ln.product_id] = ln.product
        stay_resident.setdefault(ln.stay_id, ln.resident_id)
        if ln.amount:
            debtors_issued[ln.stay_id].add(key)
        daily = ln.reason not in DAY_REASONS_EXCLUDED and ln.reason != InvoiceLine.Reason.SOCIAL_AID_CONTRIBUTION
        issued[(key, ln.stay_id)][ln.product_id].add(
            amount=ln.amount, quantity=ln.quantity if daily else None, unit_price=ln.unit_price, reason=ln.reason)
    result = []
    labels = _debtor_labels({key for key, _stay in issued})
    resident_names = dict(names)
    missing = {r for r in stay_resident.values() if r not in resident_names}
    if missing:
        from residents.models import Resident

        resident_names.update({r.pk: r.full_name for r in Resident.objects.filter(pk__in=missing)})
    for pair in sorted(issued, key=lambda p: (resident_names.get(stay_resident.get(p[1]), ""), p[1], str(p[0]))):
        key, stay_id = pair
        now, before = due.get(pair, {}), issued[pair]
        diffs = []
        for product_id in sorted(set(now) | set(before), key=lambda pk: products[pk].code):
            n, b = now.get(product_id, Tally()), before.get(product_id, Tally())
            if round_money(n.amount) != round_money(b.amount):
                diffs.append(ProductDiff(products[product_id], round_money(b.amount), round_money(n.amount),
                                         b.days, n.days))
        if not diffs:
            continue
        resident_id = stay_resident.get(stay_id)
        reason = _reason(key=key, stay_id=stay_id, diffs=diffs, now=now, before=before, due=due, issued=issued,
                         debtors_now=debtors_now[stay_id],
                         debtors_issued=debtors_issued[stay_id], labels=labels)
        result.append(Regularisation(key=key, stay_id=stay_id, resident_id=resident_id,
                                     resident_name=resident_names.get(resident_id, ""),
                                     debtor_label=labels.get(key, ""), products=diffs, reason=reason,
                                     issued=round_money(sum((t.amount for t in before.values()), ZERO)),
                                     due=round_money(sum((t.amount for t in now.values()), ZERO))))
    return result


def _reason(*, key, stay_id, diffs, now, before, due, issued, debtors_now, debtors_issued, labels) -> str:
    """Best-effort French explanation of a difference, from the lines themselves."""
    reasons = []
    added = {k for k in debtors_now - debtors_issued if k[0] == "payer"}
    removed = {k for k in debtors_issued - debtors_now if k[0] == "payer"}

    # Another payer now takes (part of) a product this debtor was billed for: a coverage rule changed.
    moved = [d for d in diffs if d.difference < 0 and key[0] != "payer"]
    others = {k for (k, s), t in due.items() if s == stay_id and k != key and k[0] == "payer"
              and any(d.product.pk in t for d in moved)}
    if key[0] == "payer" and key in removed:
        reasons.append(_("règle de prise en charge supprimée"))
    elif added:
        reasons.append(_("règle de prise en charge ajoutée (%(payers)s)") % {
            "payers": ", ".join(sorted(_label(labels, k) for k in added))})
    elif removed:
        reasons.append(_("règle de prise en charge supprimée (%(payers)s)") % {
            "payers": ", ".join(sorted(_label(labels, k) for k in removed))})
    elif moved and others:
        reasons.append(_("règle de prise en charge ajoutée ou modifiée (%(payers)s)") % {
            "payers": ", ".join(sorted(_label(labels, k) for k in others))})
    dependency = [d for d in diffs if d.product.is_dependency]
    if any(not d.issued or not d.due for d in dependency):
        reasons.append(_("GIR modifié"))
    n_absence = set().union(*(t.reasons for t in now.values())) & ABSENCE_REASONS if now else set()
    b_absence = set().union(*(t.reasons for t in before.values())) & ABSENCE_REASONS if before else set()
    if n_absence - b_absence:
        reasons.append(_("absence saisie"))
    elif b_absence - n_absence:
        reasons.append(_("absence supprimée ou modifiée"))
    for d in diffs:
        n, b = now.get(d.product.pk, Tally()), before.get(d.product.pk, Tally())
        if n.days and b.days and n.days == b.days and n.prices != b.prices and not (n_absence ^ b_absence):
            reasons.append(_("tarif modifié"))
            break
    if not reasons and any(d.issued_days != d.due_days for d in diffs):
        reasons.append(_("jours facturés modifiés (dates du séjour, calendrier ou forfait)"))
    if not reasons:
        reasons.append(_("montant recalculé"))
    return "; ".join(dict.fromkeys(reasons))


def _label(labels: dict, key: tuple) -> str:
    if key not in labels:
        labels.update(_debtor_labels({key}))
    return labels[key]


def _debtor_labels(keys) -> dict[tuple, str]:
    from residents.models import Resident

    residents = Resident.objects.in_bulk({k[1] for k in keys if k[0] != "payer" and k[1]})
    relatives = Relative.objects.in_bulk({k[2] for k in keys if k[2]})
    payers = Payer.objects.in_bulk({k[3] for k in keys if k[3]})
    groups = PayerGroup.objects.in_bulk({k[4] for k in keys if k[4]})
    labels = {}
    for k in keys:
        if k[0] == "payer":
            payer = payers.get(k[3])
            labels[k] = (payer.name if payer else "") + (f" — {groups[k[4]].label}" if k[4] in groups else "")
        elif k[0] == "relative" and k[2] in relatives:
            labels[k] = str(relatives[k[2]])
        else:
            labels[k] = residents[k[1]].full_name if k[1] in residents else ""
    return labels


def _credited_by_line(invoice_ids) -> dict[tuple, Decimal]:
    """What earlier credit notes took from each (invoice, stay, product, dates) line."""
    credited = defaultdict(lambda: ZERO)
    for ln in InvoiceLine.objects.filter(invoice__credited_invoice_id__in=invoice_ids,
                                         invoice__status=Invoice.Status.ISSUED).select_related("invoice"):
        credited[(ln.invoice.credited_invoice_id, ln.stay_id, ln.product_id, ln.date_from, ln.date_to)] -= ln.amount
    return credited


@transaction.atomic
def period_regularise(*, period: BillingPeriod, user=None, issue_date: date | None = None, progress=None) -> dict:
    """Issue the credit notes and invoices that settle every régularisation of the period."""
    from .issuing import credit_note_create, invoices_issue

    period = BillingPeriod.objects.select_for_update(of=("self",)).select_related("section__establishment").get(
        pk=period.pk)  # of=self: never lock the section and establishment rows other sections share
    issue_date = issue_date or timezone.localdate()
    regularisations = period_regularisations(period=period)
    if progress:
        progress(1, 3, _("%(n)s régularisation(s) à émettre") % {"n": len(regularisations)})
    credit_notes, invoices = [], []
    # 1. What is no longer due: credit the issued lines of the same debtor, stay and product (latest first).
    to_credit: dict[int, dict[int, Decimal]] = defaultdict(dict)
    reasons_of_invoice: dict[int, list[str]] = defaultdict(list)
    for reg in regularisations:
        negative = [d for d in reg.products if d.difference < 0]
        if not negative:
            continue
        candidates = [ln for ln in issued_lines(period=period)
                      .filter(stay_id=reg.stay_id, invoice__status=Invoice.Status.ISSUED, amount__gt=0)
                      .exclude(invoice__kind=Invoice.Kind.CREDIT_NOTE)
                      .order_by("-invoice__issue_date", "-invoice_id", "-date_from", "-pk")
                      if invoice_debtor_key(ln.invoice) == reg.key]
        credited = _credited_by_line({ln.invoice_id for ln in candidates})
        for diff in negative:
            left = -diff.difference
            for ln in candidates:
                if ln.product_id != diff.product.pk or left <= 0:
                    continue
                k = (ln.invoice_id, ln.stay_id, ln.product_id, ln.date_from, ln.date_to)
                available = ln.amount - credited[k]
                if available <= 0:
                    continue
                take = min(available, left)
                credited[k] += take
                to_credit[ln.invoice_id][ln.pk] = to_credit[ln.invoice_id].get(ln.pk, ZERO) + take
                left -= take
                reasons_of_invoice[ln.invoice_id].append(reg.reason)
            if left > 0:
                raise ValidationError(_(
                    "Régularisation impossible pour %(debtor)s (%(resident)s, %(product)s) : il reste %(amount)s à "
                    "créditer mais plus aucune ligne émise à créditer.") % {
                    "debtor": reg.debtor_label, "resident": reg.resident_name, "product": diff.product.label,
                    "amount": format_euros(left)})
    for invoice_id, selection in to_credit.items():
        invoice = Invoice.objects.get(pk=invoice_id)
        motive = _("Régularisation %(period)s : %(reason)s") % {
            "period": period.label, "reason": "; ".join(dict.fromkeys(reasons_of_invoice[invoice_id]))}
        credit_notes.append(credit_note_create(invoice=invoice, user=user, lines=selection, reason=motive[:200],
                                               issue_date=issue_date))
    if progress:
        progress(2, 3, _("%(n)s avoir(s) émis") % {"n": len(credit_notes)})
    # 2. What is newly due: one invoice per debtor, one line per stay and product.
    by_debtor: dict[tuple, list[tuple[Regularisation, ProductDiff]]] = defaultdict(list)
    for reg in regularisations:
        for diff in reg.products:
            if diff.difference > 0:
                by_debtor[reg.key].append((reg, diff))
    section = period.section
    for key, items in by_debtor.items():
        kind, resident_id, relative_id, payer_id, group_id = key
        reasons = "; ".join(dict.fromkeys(reg.reason for reg, _d in items))
        invoice = Invoice.objects.create(
            period=period, section=section, establishment=section.establishment, kind=Invoice.Kind.INVOICE,
            debtor_kind=kind, resident_id=resident_id, relative_id=relative_id, payer_id=payer_id,
            payer_group_id=group_id, date_from=period.start, date_to=period.end,
            comment=(_("Régularisation %(period)s : %(reason)s") % {"period": period.label,
                                                                   "reason": reasons})[:200])
        rows, total = [], ZERO
        for position, (reg, diff) in enumerate(items):
            label = _("Régularisation %(period)s – %(product)s : %(reason)s") % {
                "period": period.label, "product": diff.product.label, "reason": reg.reason}
            if kind == "payer":
                label = f"{reg.resident_name} — {label}"
            rows.append(InvoiceLine(
                invoice=invoice, resident_id=reg.resident_id, stay_id=reg.stay_id, product=diff.product,
                label=label[:250], reason=InvoiceLine.Reason.REGULARISATION, date_from=period.start,
                date_to=period.end, quantity=Decimal("1"), unit_price=diff.difference, amount=diff.difference,
                vat_rate=_vat_rate(diff.product, section.establishment), position=position))
            total += diff.difference
        InvoiceLine.objects.bulk_create(rows)
        invoice.total = round_money(total)
        invoice.save(update_fields=["total"])
        invoices.append(invoice)
    if invoices:
        invoices_issue(invoice_ids=[i.pk for i in invoices], user=user, issue_date=issue_date)
        for invoice in invoices:
            invoice.refresh_from_db()
    if progress:
        progress(3, 3, _("%(n)s facture(s) de régularisation émise(s)") % {"n": len(invoices)})
    return {"regularisations": len(regularisations), "credit_notes": [c.number for c in credit_notes],
            "invoices": [i.number for i in invoices],
            "credited": str(sum((-c.total for c in credit_notes), ZERO)),
            "invoiced": str(sum((i.total for i in invoices), ZERO))}


def _vat_rate(product: Product, establishment) -> Decimal:
    from .generation import _vat_rate as rate

    return rate(product, establishment)


def period_regularise_job(*, job, progress) -> dict:
    """Job runner: params {"period_id": …, "issue_date": "AAAA-MM-JJ" (optional)}."""
    from core.services.jobs import JobError

    period = BillingPeriod.objects.filter(pk=job.params.get("period_id")).first()
    if period is None:
        raise JobError(_("Période introuvable."))
    issue_date = date.fromisoformat(job.params["issue_date"]) if job.params.get("issue_date") else None
    progress(0, 3, _("Calcul des régularisations"))
    try:
        return period_regularise(period=period, user=job.created_by if hasattr(job, "created_by") else None,
                                 issue_date=issue_date, progress=progress)
    except ValidationError as exc:
        raise JobError(" ".join(exc.messages)) from exc
