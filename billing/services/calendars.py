"""Calendar generation with French public holidays (``holidays`` library, Alsace-Moselle aware)."""
from __future__ import annotations

import calendar as pycal
from datetime import date, timedelta

import holidays
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from ..models import Calendar, CalendarDay


def french_holidays(*, years: list[int], departement: str) -> dict[date, str]:
    """Public holidays, with Good Friday and 26 December in Moselle (57), Bas-Rhin (67), Haut-Rhin (68)."""
    subdiv = {"57": "57", "67": "6AE", "68": "6AE"}.get(departement)
    return dict(holidays.France(years=years, subdiv=subdiv, language="fr"))


def _state_for(mode: str, day: date, is_holiday: bool) -> str:
    weekend = day.weekday() >= 5
    if mode == Calendar.Mode.FULL:
        return CalendarDay.State.OPEN
    if mode == Calendar.Mode.NO_WEEKENDS:
        return CalendarDay.State.CLOSED if weekend else CalendarDay.State.OPEN
    if mode == Calendar.Mode.NO_HOLIDAYS:
        return CalendarDay.State.CLOSED if is_holiday else CalendarDay.State.OPEN
    if mode == Calendar.Mode.WORKING_DAYS:
        return CalendarDay.State.CLOSED if (weekend or is_holiday) else CalendarDay.State.OPEN
    return CalendarDay.State.CLOSED  # FREE: everything closed, opened by hand


@transaction.atomic
def calendar_generate(*, calendar: Calendar, years: list[int], overwrite: bool = False) -> int:
    """Create the days of ``years`` (existing days are kept unless ``overwrite``). Returns days written."""
    if not years:
        raise ValidationError(_("Choisissez au moins une année."))
    for year in years:
        if year < 2000 or year > 2100:
            raise ValidationError(_("Année invalide : %(year)s.") % {"year": year})
    names = french_holidays(years=years, departement=calendar.establishment.departement)
    existing = set(CalendarDay.objects.filter(calendar=calendar, day__year__in=years).values_list("day", flat=True))
    to_create, to_update = [], []
    for year in years:
        day = date(year, 1, 1)
        while day.year == year:
            state = _state_for(calendar.mode, day, day in names)
            note = names.get(day, "")
            if day not in existing:
                to_create.append(CalendarDay(calendar=calendar, day=day, state=state, note=note))
            elif overwrite:
                to_update.append((day, state, note))
            day += timedelta(days=1)
    CalendarDay.objects.bulk_create(to_create, batch_size=500)
    if to_update:
        billed = _billed_days(calendar)
        to_update = [row for row in to_update if row[0] not in billed]  # days of issued invoices are frozen
    for day, state, note in to_update:
        CalendarDay.objects.filter(calendar=calendar, day=day).update(state=state, note=note)
    if to_update:  # rewritten days may change drafts (new days cannot: generation needed them all)
        from .stale import periods_mark_stale

        periods_mark_stale(section_ids=calendar.sections.values_list("pk", flat=True),
                           start=min(d for d, _s, _n in to_update), end=max(d for d, _s, _n in to_update))
    return len(to_create) + len(to_update)


def _billed_days(calendar: Calendar) -> set[date]:
    from ..models import Invoice

    days: set[date] = set()
    ranges = (Invoice.objects.filter(section__calendars=calendar).exclude(status=Invoice.Status.DRAFT)
              .values_list("date_from", "date_to").distinct())
    for first, last in ranges:
        while first <= last:
            days.add(first)
            first += timedelta(days=1)
    return days


def calendar_missing_days(*, calendar: Calendar, start: date, end: date) -> list[date]:
    present = set(CalendarDay.objects.filter(calendar=calendar, day__range=(start, end)).values_list("day", flat=True))
    missing, day = [], start
    while day <= end:
        if day not in present:
            missing.append(day)
        day += timedelta(days=1)
    return missing


@transaction.atomic
def calendar_day_set(*, calendar: Calendar, day: date, state: str, note: str = "") -> CalendarDay:
    obj, _created = CalendarDay.objects.update_or_create(calendar=calendar, day=day,
                                                         defaults={"state": state, "note": note})
    return obj


def month_bounds(year: int, month: int) -> tuple[date, date]:
    return date(year, month, 1), date(year, month, pycal.monthrange(year, month)[1])
