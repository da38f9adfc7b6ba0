"""A section's data over a period, read once and shared by the pre-flight checks and the generation.

``PeriodData`` reads each part (stays, packages, GIR, absences, coverage rules, tariffs…) on first use
and keeps it: the checks read what they need, the generation that follows in the same job reuses it
instead of reading the same rows again (``billing.services.batch.section_month_generate``). The
period page, which only checks, reads nothing the checks do not use. Every part is one query whatever
the number of stays (a few parts take two)."""
from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from functools import cached_property

from django.db.models import Q

from payers.models import AidPlan, CoverageRule, Payer, SocialAidDecision
from residents.models import Absence, GirAssessment, Relative, Stay

from ..models import (CalendarDay, DepartementParameter, NationalParameter, Package, PackageItem, Product,
                      StayPackage, Tariff)

DEATH_LOOKAHEAD = timedelta(days=31)


def period_stays(*, section, start: date, end: date):
    """The section's stays that may be billed over [start, end] (a stay ended by a death shortly before
    the period may still be billed for the room until it is emptied)."""
    return (Stay.objects.filter(section=section, entry_date__lte=end)
            .filter(Q(end_date__isnull=True) | Q(end_date__gte=start - DEATH_LOOKAHEAD))
            .select_related("resident").order_by("resident__last_name", "resident__first_name", "pk"))


def apa_dotation_payers(*, organisation_id: int) -> dict[str, tuple]:
    """département code -> (payer id, APA group id, label) for the départements that pay APA to the
    establishment under dotation globale (payer setting « APA en dotation globale »)."""
    result = {}
    for payer in (Payer.objects.filter(organisation_id=organisation_id, kind=Payer.Kind.DEPARTEMENT,
                                       apa_dotation_globale=True).exclude(departement="")
                  .prefetch_related("groups").order_by("pk")):
        group = next((g for g in payer.groups.all() if g.code == "APA"), None)
        result.setdefault(payer.departement, (payer.pk, group.pk if group else None,
                                              group.label if group else payer.name))
    return result


class PeriodData:
    """The section's rows for [start, end] (``stay_pks``: only those stays), each part read on first use."""

    def __init__(self, *, section, start: date, end: date, stay_pks=None):
        self.section, self.start, self.end = section, start, end
        self.establishment = section.establishment
        self.stay_pks = stay_pks
        self._other_products: dict[int, Product] = {}

    # -- the section's set-up -------------------------------------------------------------------
    @cached_property
    def calendar(self):
        """The section's calendar, or None."""
        calendars = list(self.section.calendars.all())
        return calendars[0] if calendars else None

    @cached_property
    def calendar_days(self) -> dict[date, str]:
        """day -> state of the calendar's days in the period (a missing day was never generated)."""
        return dict(CalendarDay.objects.filter(calendar=self.calendar, day__range=(self.start, self.end))
                    .values_list("day", "state"))

    @cached_property
    def calendar_missing_days(self) -> list[date]:
        days = self.calendar_days
        return [d for d in (self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1))
                if d not in days]

    @cached_property
    def products(self) -> dict[int, Product]:
        """The establishment's products by id."""
        return {p.pk: p for p in Product.objects.filter(establishment=self.establishment)}

    def products_for(self, ids) -> dict[int, Product]:
        """Products by id: the establishment's, and those of another establishment (never expected) read on
        demand — kept apart, so that ``products`` stays the establishment's own (the engine's context)."""
        missing = set(ids) - self.products.keys() - self._other_products.keys()
        if missing:
            self._other_products.update({p.pk: p for p in Product.objects.filter(pk__in=missing)})
        return {**self.products, **self._other_products} if self._other_products else self.products

    @cached_property
    def tariffs(self) -> dict[int, list[tuple[date, object]]]:
        """product id -> [(valid_from, price)] of the establishment's products."""
        rows: dict[int, list] = defaultdict(list)
        for product_id, valid_from, price in Tariff.objects.filter(
                product__establishment=self.establishment).values_list("product_id", "valid_from", "price"):
            rows[product_id].append((valid_from, price))
        return rows

    @cached_property
    def national(self) -> dict[str, list]:
        rows: dict[str, list] = defaultdict(list)
        for kind, valid_from, amount in NationalParameter.objects.values_list("kind", "valid_from", "amount"):
            rows[kind].append((valid_from, amount))
        return rows

    @cached_property
    def departement_parameters(self) -> list[tuple[date, DepartementParameter]]:
        return [(p.valid_from, p) for p in
                DepartementParameter.objects.filter(departement=self.establishment.departement)]

    @cached_property
    def apa_dotation(self) -> dict[str, tuple]:
        return apa_dotation_payers(organisation_id=self.establishment.organisation_id)

    # -- the stays and what hangs on them -------------------------------------------------------
    @cached_property
    def stays(self) -> list[Stay]:
        """The stays billed over the period: present on one of its days, or ended by a death before it
        with the room emptied during it."""
        queryset = period_stays(section=self.section, start=self.start, end=self.end)
        if self.stay_pks is not None:
            queryset = queryset.filter(pk__in=self.stay_pks)
        start = self.start
        return [s for s in queryset
                if s.end_date is None or s.end_date >= start or (s.end_reason == "death" and s.room_emptied_on
                                                                   and s.room_emptied_on >= start)]

    @cached_property
    def present_stays(self) -> list[Stay]:
        """The stays present on one of the period's days (the ones the pre-flight checks look at)."""
        return [s for s in self.stays if s.end_date is None or s.end_date >= self.start]

    @cached_property
    def stay_ids(self) -> list[int]:
        return [s.pk for s in self.stays]

    @cached_property
    def resident_ids(self) -> set[int]:
        return {s.resident_id for s in self.stays}

    @cached_property
    def package_assignments(self) -> dict[int, list[tuple[date, int]]]:
        """stay id -> [(valid_from, package id)]."""
        rows: dict[int, list] = defaultdict(list)
        for stay_id, valid_from, package_id in StayPackage.objects.filter(stay_id__in=self.stay_ids).values_list(
                "stay_id", "valid_from", "package_id"):
            rows[stay_id].append((valid_from, package_id))
        return rows

    @cached_property
    def packages(self) -> dict[int, tuple]:
        """package id -> (id, dependency_by_gir, [products]) for the packages the stays use; each package
        is read once and shared by its stays."""
        ids = {package_id for rows in self.package_assignments.values() for _valid_from, package_id in rows}
        items: dict[int, list[int]] = defaultdict(list)
        for package_id, product_id in PackageItem.objects.filter(package_id__in=ids).order_by("pk").values_list(
                "package_id", "product_id"):
            items[package_id].append(product_id)
        products = self.products_for({pid for pids in items.values() for pid in pids})
        return {pk: (pk, by_gir, [products[pid] for pid in items[pk]])
                for pk, by_gir in Package.objects.filter(pk__in=ids).values_list("pk", "dependency_by_gir")}

    @cached_property
    def girs(self) -> dict[int, list[tuple[date, int]]]:
        """resident id -> [(valid_from, gir)]."""
        rows: dict[int, list] = defaultdict(list)
        for resident_id, valid_from, gir in GirAssessment.objects.filter(
                resident_id__in=self.resident_ids).values_list("resident_id", "valid_from", "gir"):
            rows[resident_id].append((valid_from, gir))
        return rows

    @cached_property
    def absences(self) -> list[tuple]:
        """(resident id, first day, last day, rule) of the residents' absences from 62 days before the
        year (convenience caps count the whole year) to the end of the period."""
        year_start = date(self.start.year, 1, 1)
        return list(Absence.objects.filter(stay__resident_id__in=self.resident_ids,
                                           last_day__gte=year_start - timedelta(days=62), first_day__lte=self.end)
                    .values_list("stay__resident_id", "first_day", "last_day", "reason__rule"))

    @cached_property
    def coverage_rules(self) -> list[CoverageRule]:
        """The stays' coverage rules (payer and group joined), by priority; ``rule.product_ids`` holds
        the ids of the products a rule is limited to."""
        rules = list(CoverageRule.objects.filter(stay_id__in=self.stay_ids).select_related("payer", "group")
                     .order_by("priority", "pk"))
        limited: dict[int, set[int]] = defaultdict(set)
        for rule_id, product_id in CoverageRule.products.through.objects.filter(
                coveragerule_id__in=[r.pk for r in rules]).values_list("coveragerule_id", "product_id"):
            limited[rule_id].add(product_id)
        for rule in rules:
            rule.product_ids = frozenset(limited[rule.pk])
        return rules

    @cached_property
    def social_aid_decisions(self) -> list[SocialAidDecision]:
        return list(SocialAidDecision.objects.filter(stay_id__in=self.stay_ids).select_related("payer", "group")
                    .order_by("valid_from"))

    @cached_property
    def aid_plans(self) -> list[AidPlan]:
        """The validated aid plans in force during the period (a plan saisi is never applied: the
        pre-flight check names it)."""
        return list(AidPlan.objects.filter(stay_id__in=self.stay_ids, status=AidPlan.Status.VALIDATED,
                                           valid_from__lte=self.end)
                    .exclude(valid_to__lt=self.start).select_related("payer", "group").order_by("valid_from", "pk"))

    @cached_property
    def relatives(self) -> dict[int, list[Relative]]:
        """resident id -> relatives, in creation order."""
        rows: dict[int, list] = defaultdict(list)
        for relative in Relative.objects.filter(resident_id__in=self.resident_ids).order_by("pk"):
            rows[relative.resident_id].append(relative)
        return rows
