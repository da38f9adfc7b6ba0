"""Billing on the tableau de bord (imported at start-up by ``StructuresConfig.ready``): per section
the month's period status, pre-flight checks, totals, occupancy rate and the billed amounts of the
last 12 months; the to-dos of the month; « Générer tout » / « Émettre tout » for managers.

Queries are per dashboard, not per section, except the pre-flight checks (one ``period_checks``
per section whose month is still open)."""
from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

from django.db.models import Count, Sum
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from core.money import format_euros
from structures import access
from structures.dashboard import (Action, Chart, Fact, Link, Todo, register_actions, register_charts, register_facts,
                                  register_links, register_todos)

from ..models import BillingPeriod, Invoice, InvoiceLine
from ..models.catalog import ACCOMMODATION_SCOPE_KINDS
from . import checks as check_services
from .calendars import month_bounds
from .periods import MONTHS

# Invoices that count as billed: issued (or issued then cancelled) invoices and rappels, minus
# issued credit notes (their totals are negative). Drafts are not billed yet.
BILLED_STATUSES = (Invoice.Status.ISSUED, Invoice.Status.CANCELLED)


def period_stale_drafts(period: BillingPeriod) -> int | None:
    """Drafts made stale by a later change (tariff, calendar, absence, stay, GIR, package, coverage,
    import) since generation: 1 when the period carries the « brouillons à régénérer » flag, else 0."""
    return int(period.drafts_stale_since is not None)


def month_periods(*, sections, year: int, month: int) -> dict[int, BillingPeriod]:
    """Each section's period for the month, chosen as ``periods.period_for_month`` does, in one query."""
    start, end = month_bounds(year, month)
    candidates = defaultdict(list)
    for period in BillingPeriod.objects.filter(section__in=sections, start__lte=end, end__gte=start):
        candidates[period.section_id].append(period)
    chosen = {}
    for section_id, periods in candidates.items():
        chosen[section_id] = (
            next((p for p in periods if p.start == start), None)
            or max((p for p in periods if p.start <= start and p.end >= end), key=lambda p: p.start, default=None)
            or min(periods, key=lambda p: p.start))
    return chosen


def _count_days(intervals: list[tuple[date, date]]) -> int:
    """Days covered by the union of ``intervals`` (inclusive ends)."""
    days, current_end = 0, None
    for first, last in sorted(intervals):
        if current_end is not None and first <= current_end:
            if last > current_end:
                days += (last - current_end).days
                current_end = last
            continue
        days += (last - first).days + 1
        current_end = last
    return days


def billed_days(*, periods: dict[int, BillingPeriod], year: int, month: int) -> dict[int, int]:
    """Per section, the resident-days of the month billed for a place (hébergement, temporary stay,
    day care; reserved days of an absence included; a day split between payers counts once)."""
    start, end = month_bounds(year, month)
    per_resident = defaultdict(list)
    rows = (InvoiceLine.objects
            .filter(invoice__period__in=list(periods.values()), invoice__kind=Invoice.Kind.INVOICE,
                    invoice__status__in=(Invoice.Status.DRAFT, Invoice.Status.ISSUED),
                    product__kind__in=ACCOMMODATION_SCOPE_KINDS, resident__isnull=False,
                    date_from__lte=end, date_to__gte=start)
            .values_list("invoice__section_id", "resident_id", "date_from", "date_to"))
    for section_id, resident_id, first, last in rows:
        per_resident[(section_id, resident_id)].append((max(first, start), min(last, end)))
    days = defaultdict(int)
    for (section_id, _resident), intervals in per_resident.items():
        days[section_id] += _count_days(intervals)
    return days


def occupancy_rate(*, days: int, places: int | None, year: int, month: int) -> Decimal | None:
    """Days billed ÷ (places × days of the month), in percent with one decimal; None without places."""
    if not places:
        return None
    start, end = month_bounds(year, month)
    capacity = places * ((end - start).days + 1)
    return (Decimal(days) * 100 / capacity).quantize(Decimal("0.1"))


def billed_by_month(*, sections, year: int, month: int, months: int = 12) -> dict[int, list[tuple[date, Decimal]]]:
    """Per section, the net amount billed for each of the ``months`` months ending with (year, month),
    by month of service (an invoice's ``date_from``; a credit note counts in its invoice's month)."""
    index = year * 12 + month - 1
    firsts = [date((index - k) // 12, (index - k) % 12 + 1, 1) for k in range(months - 1, -1, -1)]
    _, last_day = month_bounds(year, month)
    sums = defaultdict(lambda: Decimal("0.00"))
    rows = (Invoice.objects.filter(section__in=sections, status__in=BILLED_STATUSES,
                                   date_from__gte=firsts[0], date_from__lte=last_day)
            .values_list("section_id", "date_from", "total"))
    for section_id, day, total in rows:
        sums[(section_id, day.year, day.month)] += total
    return {s.pk: [(first, sums[(s.pk, first.year, first.month)]) for first in firsts] for s in sections}


def _bars(series: list[tuple[date, Decimal]]) -> dict:
    top = max((value for _, value in series), default=Decimal("0")) or Decimal("1")
    width, gap, height = 20, 4, 60
    bars = []
    for n, (first, value) in enumerate(series):
        h = int(max(value, Decimal("0")) * height / top) if value > 0 else 0
        bars.append({"x": n * (width + gap), "y": height - h, "width": width, "height": h,
                     "label": f"{first.month:02d}/{first.year}", "short": MONTHS[first.month - 1][0].upper(),
                     "value": format_euros(value), "current": n == len(series) - 1})
    return {"bars": bars, "view_width": len(series) * (width + gap), "view_height": height + 14,
            "text_y": height + 12}


def _period_url(section, period) -> str:
    if period is None:
        return reverse("billing:periods", kwargs={"alias": section.alias})
    return reverse("billing:period-detail", kwargs={"alias": section.alias, "period_pk": period.pk})


def _month_state(*, sections, year: int, month: int) -> dict:
    """Everything the facts and the to-dos need, computed once per request and dashboard."""
    periods = month_periods(sections=sections, year=year, month=month)
    counts = defaultdict(lambda: {"n": 0, "total": Decimal("0.00")})
    for row in (Invoice.objects.filter(period__in=list(periods.values()))
                .values("section_id", "status").annotate(n=Count("pk"), total=Sum("total"))):
        counts[(row["section_id"], row["status"])] = {"n": row["n"], "total": row["total"] or Decimal("0.00")}
    no_pdf = dict(Invoice.objects.filter(period__in=list(periods.values()), status=Invoice.Status.ISSUED, pdf="")
                  .values("section_id").annotate(n=Count("pk")).values_list("section_id", "n"))
    checks = {}
    start, end = month_bounds(year, month)
    for section in sections:
        period = periods.get(section.pk)
        if period is not None and period.status != BillingPeriod.Status.OPEN:
            continue
        # The month not opened yet is checked as it would be once opened (an unsaved period).
        checks[section.pk] = check_services.period_checks(
            period=period or BillingPeriod(section=section, start=start, end=end, accounting_date=end))
    return {"periods": periods, "counts": counts, "no_pdf": no_pdf, "checks": checks,
            "days": billed_days(periods=periods, year=year, month=month)}


def _state(*, sections, year, month, shared) -> dict:
    # The facts, charts and to-dos of one dashboard share one computation.
    if "billing" not in shared:
        shared["billing"] = _month_state(sections=sections, year=year, month=month)
    return shared["billing"]


def _status(period, counts, section) -> tuple[str, str]:
    if period is None:
        return _("non ouverte"), "warning"
    if period.status == BillingPeriod.Status.CLOSED:
        return _("clôturée"), "ok"
    drafts = counts[(section.pk, Invoice.Status.DRAFT)]["n"]
    issued = counts[(section.pk, Invoice.Status.ISSUED)]["n"] + counts[(section.pk, Invoice.Status.CANCELLED)]["n"]
    if period.generated_at is None and not issued:
        return _("ouverte, à générer"), "warning"
    if drafts:
        return ngettext("générée, %(n)s brouillon à émettre", "générée, %(n)s brouillons à émettre", drafts) % {
            "n": drafts}, "warning"
    return _("émise"), "ok"


@register_facts(order=10)
def billing_facts(*, user, sections, year, month, shared) -> dict:
    state = _state(sections=sections, year=year, month=month, shared=shared)
    periods, counts = state["periods"], state["counts"]
    facts = {}
    for section in sections:
        period = periods.get(section.pk)
        status, level = _status(period, counts, section)
        rows = [Fact(_("Période"), status, _period_url(section, period), level, key="period")]
        checks = state["checks"].get(section.pk)
        if checks is not None:
            errors = sum(1 for c in checks if c.level == "error")
            rows.append(Fact(_("Contrôles avant génération"),
                             _("%(errors)s bloquant(s), %(warnings)s avertissement(s)") % {
                                 "errors": errors, "warnings": len(checks) - errors},
                             _period_url(section, period) if period else "",
                             "error" if errors else ("warning" if checks else "ok"), key="checks"))
        stale = period_stale_drafts(period) if period else None
        if stale is not None:
            rows.append(Fact(_("Brouillons périmés"), str(stale), _period_url(section, period),
                             "warning" if stale else "ok", key="stale_drafts"))
        drafts = counts[(section.pk, Invoice.Status.DRAFT)]
        issued = counts[(section.pk, Invoice.Status.ISSUED)]
        rows.append(Fact(_("Brouillons"), f"{drafts['n']} — {format_euros(drafts['total'])}", key="drafts"))
        rows.append(Fact(_("Émises"), f"{issued['n']} — {format_euros(issued['total'])}", key="issued"))
        days = state["days"].get(section.pk, 0)
        rate = occupancy_rate(days=days, places=section.places, year=year, month=month)
        rows.append(Fact(_("Taux d'occupation"),
                         (f"{str(rate).replace('.', ',')} % ({days} j / {section.places} places)"
                          if rate is not None else _("%(days)s j facturés (nombre de places non renseigné)") % {
                              "days": days}),
                         "" if rate is not None else reverse("section-settings", kwargs={"alias": section.alias}),
                         key="occupancy"))
        facts[section.pk] = rows
    return facts


@register_charts(order=10)
def billing_charts(*, user, sections, year, month, shared) -> dict:
    series = billed_by_month(sections=sections, year=year, month=month)
    state = _state(sections=sections, year=year, month=month, shared=shared)
    charts = {}
    for section in sections:
        charts[section.pk] = [Chart(_("Facturé par mois (12 mois)"), "billing/_dashboard_bars.html",
                                    _bars(series[section.pk]), key="billed")]
        rate = occupancy_rate(days=state["days"].get(section.pk, 0), places=section.places, year=year, month=month)
        if rate is not None:
            charts[section.pk].append(Chart(_("Taux d'occupation"), "billing/_dashboard_meter.html",
                                            {"rate": rate, "width": min(rate, Decimal(100)), "over": rate > 100},
                                            key="occupancy"))
    return charts


@register_todos(order=10)
def billing_todos(*, user, sections, year, month, shared) -> list:
    state = _state(sections=sections, year=year, month=month, shared=shared)
    periods, counts = state["periods"], state["counts"]
    label = f"{MONTHS[month - 1]} {year}"
    todos = []
    for section in sections:
        period = periods.get(section.pk)
        url = _period_url(section, period)
        checks = state["checks"].get(section.pk) or []
        errors = sum(1 for c in checks if c.level == "error")
        if period is None:
            todos.append(Todo(_("Ouvrir la période de %(month)s") % {"month": label}, url, section, level="warning",
                              key="open_period"))
        if errors:
            todos.append(Todo(ngettext("Corriger %(n)s anomalie bloquante", "Corriger %(n)s anomalies bloquantes",
                                       errors) % {"n": errors}, url, section, errors, "error", key="blocking_checks"))
        if period is None or period.status != BillingPeriod.Status.OPEN:
            continue
        drafts = counts[(section.pk, Invoice.Status.DRAFT)]["n"]
        if period.generated_at is None and not drafts:
            todos.append(Todo(_("Générer les factures de %(month)s") % {"month": label}, url, section,
                              level="warning", key="generate"))
        stale = period_stale_drafts(period)
        if stale:
            todos.append(Todo(_("Régénérer : brouillons périmés depuis la génération"), url, section, stale,
                              "warning", key="stale_drafts"))
        if drafts:
            todos.append(Todo(ngettext("Émettre %(n)s brouillon", "Émettre %(n)s brouillons", drafts) % {"n": drafts},
                              url, section, drafts, "warning", key="issue"))
        missing = state["no_pdf"].get(section.pk, 0)
        if missing:
            todos.append(Todo(ngettext("%(n)s facture émise sans PDF", "%(n)s factures émises sans PDF", missing) % {
                "n": missing}, url, section, missing, "info", key="pdf"))
    return todos


@register_actions(order=10)
def billing_actions(*, user, sections, year, month, shared) -> list:
    """« Générer tout » / « Émettre tout » over the sections the user manages (managers only)."""
    managed = access.sections_for(user, access.Role.MANAGER).filter(pk__in=[s.pk for s in sections])
    if not managed.exists():
        return []
    url = reverse("billing-month-all")
    value = f"{year:04d}-{month:02d}"
    return [
        Action(_("Générer tout"), url, {"action": "generate", "mois": value},
               _("Une tâche par section, exécutées en parallèle"), key="generate_all"),
        Action(_("Émettre tout"), url, {"action": "issue", "mois": value},
               _("Émet les brouillons du mois de chaque section"), key="issue_all"),
    ]



@register_links(order=10)
def billing_links(*, user, sections, year, month, shared) -> list:
    """« Restes à recouvrer » of every section the user may read (the page scopes itself)."""
    return [Link(_("Restes à recouvrer"), reverse("association-balances"), key="association_balances")]
