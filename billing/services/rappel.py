"""Rappel de tarifs (billing-rules.md §7): bill the difference between the tariff now in force and
the unit price already invoiced, for days of periods that were issued before the tariff changed.

How it works
------------
* **Invoiced side** — every *issued* line of the product in the section, on invoices of kind
  ``invoice`` or ``rappel`` (cancelled invoices, i.e. fully credited, are not "issued" and drop
  out), is spread over its days: per (debtor key, resident, day) the unit prices are **summed**, so
  a day billed 65.00 and later rappelled +2.00 counts as 67.00. Running a rappel twice therefore
  finds nothing the second time. Manual and credit lines are ignored; partial credit notes are
  not spread over days (reported as a warning to check by hand).
* **Expected side** — each billing period holding issued lines of the product is recomputed with
  today's data through the engine's day-level functions (the very steps ``compute_period`` runs:
  ``day_items`` → ``share_items``), which keeps one priced share per debtor and day (exact for
  half days and monthly products, which an aggregated line cannot give back).
* A day is in scope only if it was invoiced **and** is still billed to the same debtor with the
  same reason (presence, absence from day 4…). Days no longer billed, or billed for another
  reason (an absence recorded afterwards…), are not rappel business: they are counted in the
  warnings, never rappelled.
* Consecutive days with the same old price, new price, reason and stay form one rappel line:
  quantity × (new − old), ``unit_price`` = the difference, ``previous_unit_price`` = the old price.

Debtor families: **payants** = invoices to the resident or the paying relative; **aide sociale** =
invoices to a payer (any payer and group: département ASH, APA, caisses…), since those are the
parts billed to a third party on behalf of the resident.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from core.money import ZERO, format_euros, round_money
from core.formats import fr_date
from payers.models import Payer, PayerGroup
from residents.models import Relative, Resident

from ..models import BillingPeriod, Invoice, InvoiceLine, Product
from ..models.catalog import LODGING_KINDS
from . import engine
from .catalog import tariff_add, tariff_history
from .generation import REASON_SUFFIX, _invoice_key_of, _line_key, _vat_rate, load_context, load_stays
from .period_data import PeriodData
from .issuing import invoices_issue

HABILITATED_KINDS = LODGING_KINDS
# Monthly social-aid contributions do not depend on the tariff: a tariff rise under ASH is the
# département's (its daily share is compared like any other).
IGNORED_REASONS = (InvoiceLine.Reason.MANUAL, InvoiceLine.Reason.CREDIT, InvoiceLine.Reason.SOCIAL_AID_CONTRIBUTION,
                   InvoiceLine.Reason.POCKET_MONEY)
PAYANT_KINDS = (Invoice.DebtorKind.RESIDENT, Invoice.DebtorKind.RELATIVE)


# --------------------------------------------------------------------------------------------------
# Catch-up tariff for habilitated places (R314-35 CASF)
# --------------------------------------------------------------------------------------------------

def catchup_days(effect_date: date) -> tuple[int, int]:
    """(days elapsed since 1 January, days remaining until 31 December, effect day included)."""
    elapsed = (effect_date - date(effect_date.year, 1, 1)).days
    remaining = (date(effect_date.year, 12, 31) - effect_date).days + 1
    return elapsed, remaining


def catchup_tariff(*, old: Decimal, new: Decimal, effect_date: date) -> Decimal:
    """``new + (new − old) × elapsed / remaining``, to the cent (half up).
    65.00 → 67.00 effective 1 May 2026: 120 elapsed, 245 remaining → 67.98."""
    elapsed, remaining = catchup_days(effect_date)
    return round_money(Decimal(new) + (Decimal(new) - Decimal(old)) * Decimal(elapsed) / Decimal(remaining))


def catchup_tariff_create(*, product: Product, old: Decimal, new: Decimal, effect_date: date,
                          act_reference: str = ""):
    """Add the catch-up price as a dated tariff row (tariff_add's errors are raised as they are)."""
    price = catchup_tariff(old=old, new=new, effect_date=effect_date)
    elapsed, remaining = catchup_days(effect_date)
    note = _("Tarif de rattrapage R314-35 CASF : %(new)s + (%(new)s − %(old)s) × %(e)s / %(r)s") % {
        "new": new, "old": old, "e": elapsed, "r": remaining}
    reference = f"{act_reference} — {note}" if act_reference else note
    return tariff_add(product=product, valid_from=effect_date, price=price, act_reference=reference[:200])


def habilitated_warning(*, section, product: Product) -> str:
    if not (section.social_aid_habilitated and product.kind in HABILITATED_KINDS):
        return ""
    return _("Places habilitées à l'aide sociale : le droit (R314-35 CASF) interdit la régularisation rétroactive "
             "du tarif hébergement. L'écart entre l'ancien tarif appliqué depuis le 1er janvier et le nouveau tarif "
             "s'étale sur les jours restant de l'année par un tarif de rattrapage "
             "(nouveau + (nouveau − ancien) × jours écoulés / jours restants), à partir de la date d'effet ; "
             "l'année suivante repart du nouveau tarif. Ne générez pas de factures de rappel pour ces places.")


# --------------------------------------------------------------------------------------------------
# Detection
# --------------------------------------------------------------------------------------------------

@dataclass
class DayDiff:
    key: tuple  # debtor key, as generation._line_key
    resident_id: int | None
    stay_id: int | None
    day: date
    date_to: date  # = day, or the end of the month for monthly products
    quantity: Decimal
    old: Decimal
    new: Decimal
    reason: str
    period_id: int | None


@dataclass
class PriceChange:
    old: Decimal
    new: Decimal
    days: Decimal = Decimal("0")  # invoiced units (resident-days) concerned
    date_from: date | None = None
    date_to: date | None = None
    periods: list = field(default_factory=list)

    @property
    def difference(self) -> Decimal:
        return self.new - self.old


@dataclass
class Detection:
    product: Product
    history: list
    changes: list[PriceChange]
    periods: list[BillingPeriod]
    diffs: list[DayDiff]
    warnings: list[str]
    habilitated_warning: str
    names: dict

    @property
    def found(self) -> bool:
        return bool(self.diffs)


def _days(first: date, last: date):
    day = first
    while day <= last:
        yield day
        day += timedelta(days=1)


def _invoiced_days(*, section, product: Product):
    """{(key, resident_id, day): [summed unit price, base reason, period id, date_to]}."""
    monthly = product.unit == Product.Unit.MONTH
    invoiced: dict[tuple, list] = {}
    lines = (InvoiceLine.objects.filter(invoice__section=section, invoice__status=Invoice.Status.ISSUED,
                                        invoice__kind__in=[Invoice.Kind.INVOICE, Invoice.Kind.RAPPEL],
                                        product=product)
             .exclude(reason__in=IGNORED_REASONS).select_related("invoice").order_by("invoice_id", "position", "pk"))
    for line in lines:
        key = _invoice_key_of(line.invoice)
        days = [line.date_from] if monthly else _days(line.date_from, line.date_to)
        settled: set = invoiced.setdefault("settled", set())
        for day in days:
            if line.reason == InvoiceLine.Reason.REGULARISATION:
                # The day's debtor/product was settled by a régularisation (the whole period recomputed
                # with today's tariffs): a rappel would bill the difference a second time.
                settled.add((key, line.resident_id, day))
                continue
            entry = invoiced.setdefault((key, line.resident_id, day), [ZERO, None, None, line.date_to])
            entry[0] += line.unit_price
            if line.reason != InvoiceLine.Reason.RAPPEL:
                entry[1] = line.reason
                entry[2] = line.invoice.period_id
                entry[3] = line.date_to if monthly else day
    for k in invoiced.pop("settled", set()):
        if k in invoiced:
            invoiced[k][1] = None  # skipped by rappel_detect, like days with only rappel lines
    return invoiced


def _expected_days(*, section, period: BillingPeriod, product: Product, names: dict):
    """{(key, resident_id, day): (unit price, quantity, reason, stay id)} with today's data."""
    data = PeriodData(section=section, start=period.start, end=period.end)  # read once for both
    ctx = load_context(section=section, start=period.start, end=period.end, data=data)
    expected: dict[tuple, tuple] = {}
    warnings: list[str] = []
    for stay in load_stays(section=section, start=period.start, end=period.end, data=data):
        names[stay.resident_id] = stay.resident_name
        items = engine.day_items(stay=stay, ctx=ctx, start=period.start, end=period.end, warnings=warnings)
        if stay.social_aid:  # as in generation: the ASH département pays the hébergement
            stay.rules = engine.social_aid_rules(stay) + list(stay.rules)
        for share in engine.share_items(stay=stay, ctx=ctx, items=items):
            if not share.invoiced or share.item.product.pk != product.pk:
                continue
            k = (_line_key(share.debtor), stay.resident_id, share.item.day)
            if k in expected:
                price, qty, reason, stay_id = expected[k]
                expected[k] = (price + share.unit_price, qty, reason, stay_id)
            else:
                expected[k] = (share.unit_price, share.item.quantity, share.item.reason, stay.stay_id)
    return expected


def rappel_detect(*, section, product: Product) -> Detection:
    """Tariff history of the product and the invoiced days whose unit price differs from today's."""
    invoiced = _invoiced_days(section=section, product=product)
    period_ids = {entry[2] for entry in invoiced.values() if entry[2]}
    periods = list(BillingPeriod.objects.filter(section=section, pk__in=period_ids).order_by("start"))
    warnings: list[str] = []
    names: dict = {}
    expected: dict[tuple, tuple] = {}
    for period in periods:
        try:
            expected.update(_expected_days(section=section, period=period, product=product, names=names))
        except ValidationError as exc:
            warnings.append(_("Période %(label)s non recalculée : %(msg)s") % {"label": period.label,
                                                                               "msg": " ".join(exc.messages)})
    period_by_id = {p.pk: p for p in periods}
    diffs: list[DayDiff] = []
    not_billed = other_reason = 0
    for (key, resident_id, day), (price, reason, period_id, date_to) in sorted(
            invoiced.items(), key=lambda kv: (str(kv[0][0]), kv[0][1] or 0, kv[0][2])):
        if reason is None or period_id not in period_by_id:
            continue  # only rappel lines on that day, or outside the recomputed periods
        now = expected.get((key, resident_id, day))
        if now is None:
            not_billed += 1
            continue
        new_price, quantity, new_reason, stay_id = now
        if new_reason != reason:
            other_reason += 1
            continue
        if new_price != price:
            diffs.append(DayDiff(key=key, resident_id=resident_id, stay_id=stay_id, day=day, date_to=date_to,
                                 quantity=quantity, old=price, new=new_price, reason=reason, period_id=period_id))
    if not_billed:
        warnings.append(_("%(n)s journée(s) facturée(s) ne seraient plus facturées au même débiteur aujourd'hui "
                          "(séjour, forfait, GIR ou prise en charge modifiés) : hors rappel, à vérifier (avoir).")
                        % {"n": not_billed})
    if other_reason:
        warnings.append(_("%(n)s journée(s) facturée(s) ont aujourd'hui un autre motif (absence saisie après "
                          "l'émission…) : hors rappel, à corriger par avoir.") % {"n": other_reason})
    partial = (Invoice.objects.filter(section=section, kind=Invoice.Kind.CREDIT_NOTE, status=Invoice.Status.ISSUED,
                                      credited_invoice__status=Invoice.Status.ISSUED,
                                      credited_invoice__lines__product=product).distinct().count())
    if partial:
        warnings.append(_("%(n)s avoir(s) partiel(s) portent sur des factures de ce produit : ils ne sont pas "
                          "pris en compte dans le calcul des prix facturés, vérifiez les lignes concernées.")
                        % {"n": partial})
    changes: dict[tuple, PriceChange] = {}
    for d in diffs:
        change = changes.setdefault((d.old, d.new), PriceChange(old=d.old, new=d.new))
        change.days += d.quantity
        change.date_from = min(change.date_from or d.day, d.day)
        change.date_to = max(change.date_to or d.date_to, d.date_to)
        period = period_by_id[d.period_id]
        if period not in change.periods:
            change.periods.append(period)
    for change in changes.values():
        change.periods.sort(key=lambda p: p.start)
    return Detection(product=product, history=tariff_history(product),
                     changes=sorted(changes.values(), key=lambda c: (c.date_from, c.old, c.new)),
                     periods=[p for p in periods if any(p in c.periods for c in changes.values())],
                     diffs=diffs, warnings=warnings, habilitated_warning=habilitated_warning(section=section,
                                                                                            product=product),
                     names=names)


# --------------------------------------------------------------------------------------------------
# Preview
# --------------------------------------------------------------------------------------------------

@dataclass
class RappelLine:
    resident_id: int | None
    resident_name: str
    stay_id: int | None
    date_from: date
    date_to: date
    quantity: Decimal
    old: Decimal
    new: Decimal
    reason: str
    period_id: int | None
    label: str = ""

    @property
    def difference(self) -> Decimal:
        return self.new - self.old

    @property
    def amount(self) -> Decimal:
        return round_money(self.quantity * (self.new - self.old))


@dataclass
class RappelRow:
    key: tuple
    debtor_label: str
    lines: list[RappelLine]

    @property
    def debtor_kind(self) -> str:
        return self.key[0]

    @property
    def is_payer(self) -> bool:
        return self.key[0] == Invoice.DebtorKind.PAYER

    @property
    def total(self) -> Decimal:
        return sum((ln.amount for ln in self.lines), ZERO)

    @property
    def refused(self) -> bool:
        return self.total < 0

    @property
    def date_from(self) -> date:
        return min(ln.date_from for ln in self.lines)

    @property
    def date_to(self) -> date:
        return max(ln.date_to for ln in self.lines)


@dataclass
class Preview:
    detection: Detection
    rows: list[RappelRow]
    include_payants: bool
    include_social_aid: bool

    @property
    def generated_rows(self) -> list[RappelRow]:
        return [r for r in self.rows if not r.refused]

    @property
    def refused_rows(self) -> list[RappelRow]:
        return [r for r in self.rows if r.refused]

    @property
    def total(self) -> Decimal:
        return sum((r.total for r in self.generated_rows), ZERO)

    @property
    def line_count(self) -> int:
        return sum(len(r.lines) for r in self.rows)


def rappel_label(*, product: Product, line: RappelLine, for_payer: bool) -> str:
    """e.g. "Rappel Hébergement du 01/01/2026 au 31/01/2026 : 67,00 € au lieu de 65,00 €"."""
    name = product.label
    if line.reason in REASON_SUFFIX:
        name = f"{name} – {REASON_SUFFIX[line.reason]}"
    span = (_("du %(a)s au %(b)s") % {"a": fr_date(line.date_from), "b": fr_date(line.date_to)}
            if line.date_from != line.date_to else _("le %(a)s") % {"a": fr_date(line.date_from)})
    label = _("Rappel %(product)s %(span)s : %(new)s au lieu de %(old)s") % {
        "product": name, "span": span, "new": format_euros(line.new), "old": format_euros(line.old)}
    if for_payer and line.resident_name:
        label = f"{line.resident_name} — {label}"
    return label[:250]


def _debtor_labels(keys) -> dict:
    residents = Resident.objects.in_bulk({k[1] for k in keys if k[1]})
    relatives = Relative.objects.in_bulk({k[2] for k in keys if k[2]})
    payers = Payer.objects.in_bulk({k[3] for k in keys if k[3]})
    groups = PayerGroup.objects.in_bulk({k[4] for k in keys if k[4]})
    labels = {}
    for key in keys:
        kind, resident_id, relative_id, payer_id, group_id = key
        if kind == Invoice.DebtorKind.PAYER:
            payer = payers.get(payer_id)
            label = payer.name if payer else "?"
            if group_id in groups:
                label += f" — {groups[group_id].label}"
        elif kind == Invoice.DebtorKind.RELATIVE and relative_id in relatives:
            label = f"{relatives[relative_id]} ({residents[resident_id].full_name})" if resident_id in residents \
                else str(relatives[relative_id])
        else:
            label = residents[resident_id].full_name if resident_id in residents else "?"
        labels[key] = label
    return labels


def _merge(diffs: list[DayDiff], *, monthly: bool, names: dict) -> list[RappelLine]:
    lines: list[RappelLine] = []
    current: RappelLine | None = None
    for d in sorted(diffs, key=lambda x: (names.get(x.resident_id, ""), x.resident_id or 0, x.day)):
        if (current is not None and not monthly and current.resident_id == d.resident_id
                and current.stay_id == d.stay_id and current.old == d.old and current.new == d.new
                and current.reason == d.reason and current.date_to + timedelta(days=1) == d.day):
            current.date_to = d.day
            current.quantity += d.quantity
            current.period_id = d.period_id
            continue
        current = RappelLine(resident_id=d.resident_id, resident_name=names.get(d.resident_id, ""),
                             stay_id=d.stay_id, date_from=d.day, date_to=d.date_to, quantity=d.quantity,
                             old=d.old, new=d.new, reason=d.reason, period_id=d.period_id)
        lines.append(current)
    return lines


def rappel_preview(*, section, product: Product, include_payants: bool = True,
                   include_social_aid: bool = True, detection: Detection | None = None) -> Preview:
    """Rappel lines per debtor (one future rappel invoice per row; per payer group for payers)."""
    detection = detection or rappel_detect(section=section, product=product)
    by_key: dict[tuple, list[DayDiff]] = defaultdict(list)
    for d in detection.diffs:
        is_payer = d.key[0] == Invoice.DebtorKind.PAYER
        if (is_payer and include_social_aid) or (not is_payer and include_payants):
            by_key[d.key].append(d)
    labels = _debtor_labels(list(by_key))
    monthly = product.unit == Product.Unit.MONTH
    rows = []
    for key, diffs in by_key.items():
        lines = _merge(diffs, monthly=monthly, names=detection.names)
        for line in lines:
            line.label = rappel_label(product=product, line=line, for_payer=key[0] == Invoice.DebtorKind.PAYER)
        rows.append(RappelRow(key=key, debtor_label=labels[key], lines=lines))
    rows.sort(key=lambda r: (r.is_payer, r.debtor_label.upper(), r.key[1] or 0, r.key[3] or 0, r.key[4] or 0))
    return Preview(detection=detection, rows=rows, include_payants=include_payants,
                   include_social_aid=include_social_aid)


# --------------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------------

def rappel_drafts(*, section, product: Product):
    return Invoice.objects.filter(section=section, kind=Invoice.Kind.RAPPEL, status=Invoice.Status.DRAFT,
                                  lines__product=product).distinct()


@transaction.atomic
def rappel_generate(*, section, product: Product, include_payants: bool = True, include_social_aid: bool = True,
                    user=None, issue: bool = False, issue_date: date | None = None) -> dict:
    """Replace this product's rappel drafts in the section by fresh ones, one per debtor (per payer
    group for payers). A debtor whose total would be negative gets no invoice (a credit note is
    the tool for a refund) and is reported in ``refused``. Issued rappels are never touched."""
    if not (include_payants or include_social_aid):
        raise ValidationError(_("Cochez « payants » et/ou « aide sociale »."))
    establishment = section.establishment
    # Drafts are excluded from detection (only issued lines count), so they can go first.
    # (PostgreSQL refuses FOR UPDATE with DISTINCT: find the ids, then lock the rows.)
    draft_ids = list(rappel_drafts(section=section, product=product).values_list("pk", flat=True))
    drafts = list(Invoice.objects.select_for_update().filter(pk__in=draft_ids, status=Invoice.Status.DRAFT)
                  .values_list("pk", flat=True))
    InvoiceLine.objects.filter(invoice_id__in=drafts).delete()
    Invoice.objects.filter(pk__in=drafts).delete()
    preview = rappel_preview(section=section, product=product, include_payants=include_payants,
                             include_social_aid=include_social_aid)
    periods = {p.pk: p for p in preview.detection.periods}
    vat_rate = _vat_rate(product, establishment)
    created = []
    for row in preview.generated_rows:
        if row.total == 0 and all(ln.amount == 0 for ln in row.lines):
            continue
        kind, resident_id, relative_id, payer_id, group_id = row.key
        row_periods = [periods[ln.period_id] for ln in row.lines if ln.period_id in periods]
        invoice = Invoice.objects.create(
            period=max(row_periods, key=lambda p: p.start) if row_periods else None, section=section,
            establishment=establishment, kind=Invoice.Kind.RAPPEL, debtor_kind=kind, resident_id=resident_id,
            relative_id=relative_id, payer_id=payer_id, payer_group_id=group_id, date_from=row.date_from,
            date_to=row.date_to, total=round_money(row.total))
        InvoiceLine.objects.bulk_create([
            InvoiceLine(invoice=invoice, resident_id=ln.resident_id, stay_id=ln.stay_id, product=product,
                        label=ln.label, reason=InvoiceLine.Reason.RAPPEL, date_from=ln.date_from,
                        date_to=ln.date_to, quantity=ln.quantity, unit_price=ln.difference, amount=ln.amount,
                        vat_rate=vat_rate, previous_unit_price=ln.old, position=position)
            for position, ln in enumerate(row.lines)])
        created.append(invoice)
    issued = []
    if issue and created:
        issued = invoices_issue(invoice_ids=[i.pk for i in created], user=user, issue_date=issue_date)
    return {"invoices": created, "issued": issued, "replaced_drafts": len(drafts),
            "refused": [{"debtor": r.debtor_label, "total": r.total} for r in preview.refused_rows],
            "total": sum((i.total for i in created), ZERO), "warnings": preview.detection.warnings}
