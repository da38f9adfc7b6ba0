"""Aid plans seen from billing: the pre-flight warning for plans not validated (registered on the period
checks in ``BillingConfig.ready``) and the month simulation of a stay (the engine run in memory)."""
from __future__ import annotations

import calendar as pycal
from collections import defaultdict
from datetime import date
from decimal import Decimal

from django.urls import reverse
from django.utils.translation import gettext as _

from core.formats import fr_date
from payers.models import AidPlan, Payer, PayerGroup
from residents.models import Relative

from .checks import Check
from .generation import line_label, load_context, load_stays
from .period_data import PeriodData
from . import engine


def aid_plans_not_validated(*, period, stays) -> list[Check]:
    """A plan *saisi* in force during the period is not applied: warn, naming resident, payer, product, dates."""
    alias = period.section.alias
    plans = (AidPlan.objects.filter(stay_id__in=[s.pk for s in stays], status=AidPlan.Status.ENTERED,
                                    valid_from__lte=period.end).exclude(valid_to__lt=period.start)
             .select_related("stay__resident", "payer", "product").order_by("stay__resident__last_name", "pk"))
    return [Check("warning", _(
        "%(name)s : plan d'aide %(payer)s sur %(product)s (à partir du %(start)s) non validé — il ne sera pas "
        "appliqué, le résident paiera le tarif du produit.") % {
        "name": plan.stay.resident.full_name, "payer": plan.payer.code, "product": plan.product.code,
        "start": fr_date(plan.valid_from)},
        reverse("payers:aid-plan-edit", kwargs={"alias": alias, "plan_pk": plan.pk}), _("Valider le plan d'aide"))
        for plan in plans]


def month_bounds(year: int, month: int) -> tuple[date, date]:
    return date(year, month, 1), date(year, month, pycal.monthrange(year, month)[1])


def _simulation_label(line: engine.Line, *, resident_name: str, payer: bool) -> str:
    if payer:  # the invoice's label without the resident's name (the simulation is of one stay)
        label = line_label(line, resident_name=resident_name, for_payer=False)
        return f"{label} ({line.note})" if line.note else label
    return line_label(line, resident_name=resident_name, for_payer=False, payer_note=line.note)


def stay_simulate(*, stay, year: int, month: int) -> dict:
    """What each debtor of ``stay`` would be billed for the month under the current rules and validated
    plans, computed by the engine in memory: nothing is written (no invoice, no period). Raises
    ``ValidationError`` when the calendar lacks days of the month."""
    start, end = month_bounds(year, month)
    rows = PeriodData(section=stay.section, start=start, end=end, stay_pks=[stay.pk])  # read once for both
    ctx = load_context(section=stay.section, start=start, end=end, data=rows)
    warnings: list[str] = []
    lines: list[engine.Line] = []
    for data in load_stays(section=stay.section, start=start, end=end, data=rows):
        lines.extend(engine.compute_stay(stay=data, ctx=ctx, start=start, end=end, warnings=warnings))
    by_debtor: dict[engine.Debtor, list] = defaultdict(list)
    for line in lines:
        by_debtor[line.debtor].append(line)
    payers = {p.pk: p for p in Payer.objects.filter(pk__in={d.payer_id for d in by_debtor if d.payer_id})}
    groups = {g.pk: g for g in PayerGroup.objects.filter(pk__in={d.group_id for d in by_debtor if d.group_id})}
    relatives = {r.pk: r for r in Relative.objects.filter(pk__in={d.relative_id for d in by_debtor if d.relative_id})}
    name = stay.resident.full_name
    debtors = []
    for debtor, debtor_lines in by_debtor.items():
        if debtor.kind == "payer":
            label = str(payers[debtor.payer_id].name)
            if debtor.group_id:
                label = f"{label} / {groups[debtor.group_id].label}"
        elif debtor.kind == "relative":
            label = str(relatives[debtor.relative_id])
        else:
            label = name
        rows = [{"label": _simulation_label(ln, resident_name=name, payer=debtor.kind == "payer"),
                 "date_from": ln.date_from, "date_to": ln.date_to, "quantity": ln.quantity,
                 "unit_price": ln.unit_price, "amount": ln.amount}
                for ln in sorted(debtor_lines, key=lambda ln: (ln.product.code, ln.date_from))]
        debtors.append({"kind": debtor.kind, "label": label, "lines": rows,
                        "total": sum((r["amount"] for r in rows), Decimal("0.00"))})
    debtors.sort(key=lambda d: (d["kind"] == "payer", d["label"]))
    return {"start": start, "end": end, "debtors": debtors, "warnings": sorted(set(warnings)),
            "total": sum((d["total"] for d in debtors), Decimal("0.00"))}
