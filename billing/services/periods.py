"""Opening billing periods."""
from __future__ import annotations

import re

from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from ..models import BillingPeriod
from .calendars import month_bounds

MONTHS = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
          "novembre", "décembre"]


def month_label(day: date) -> str:
    return f"{MONTHS[day.month - 1]} {day.year}"


MONTH_RE = re.compile(r"^(\d{4})-(\d{1,2})$")


def parse_month(value: str) -> tuple[int, int]:
    """« 2026-11 » → (2026, 11); a French ValidationError otherwise (commands turn it into CommandError)."""
    match = MONTH_RE.match((value or "").strip())
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise ValidationError(_("Mois invalide : « %(value)s » (format attendu AAAA-MM, par exemple 2026-11).") % {
            "value": value})
    return int(match.group(1)), int(match.group(2))


@transaction.atomic
def period_create(*, section, start: date, end: date | None = None, accounting_date: date | None = None,
                  label: str = "") -> BillingPeriod:
    """A month by default (``end`` None); free dates for sections with *périodicité libre*."""
    if end is None:
        start, end = month_bounds(start.year, start.month)
    elif section.periodicity == section.Periodicity.MONTHLY and (start, end) != month_bounds(start.year, start.month):
        raise ValidationError({"end": _("La section %(alias)s est facturée au mois : la période doit couvrir un mois "
                                        "entier.") % {"alias": section.alias}})
    if end < start:
        raise ValidationError({"end": _("La fin de période (%(end)s) précède son début (%(start)s).") % {
            "end": end.strftime("%d/%m/%Y"), "start": start.strftime("%d/%m/%Y")}})
    clash = BillingPeriod.objects.filter(section=section, start__lte=end, end__gte=start).first()
    if clash:
        raise ValidationError({"start": _("Cette période chevauche la période existante « %(label)s ».") % {
            "label": clash.label}})
    label = label or (month_label(start) if (start, end) == month_bounds(start.year, start.month)
                      else f"{start:%d/%m/%Y} – {end:%d/%m/%Y}")
    period = BillingPeriod(section=section, start=start, end=end, accounting_date=accounting_date or end, label=label)
    period.full_clean()
    period.save()
    return period


def period_for_month(*, section, year: int, month: int) -> BillingPeriod | None:
    """The section's period for a month: the one starting on the 1st, else the latest one covering the
    whole month, else the first one overlapping it (free-date periods)."""
    start, end = month_bounds(year, month)
    overlapping = list(BillingPeriod.objects.filter(section=section, start__lte=end, end__gte=start)
                       .select_related("section").order_by("start", "pk"))  # one query, few rows
    covering = [p for p in overlapping if p.start <= start and p.end >= end]
    return (next((p for p in overlapping if p.start == start), None)
            or (max(covering, key=lambda p: p.start) if covering else None)
            or (overlapping[0] if overlapping else None))
