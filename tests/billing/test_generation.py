from datetime import date
from decimal import Decimal

import pytest

from billing.models import Calendar, CalendarDay, Invoice, Package, PackageItem, Product, StayPackage, Tariff
from billing.services.calendars import calendar_day_set
from billing.services.generation import period_generate
from billing.services.issuing import period_issue
from payers.models import CoverageRule
from residents.models import Relative

D = Decimal
APRIL = (date(2026, 4, 1), date(2026, 4, 30))


def _invoices(period, **kw):
    return Invoice.objects.filter(period=period, **kw)


def test_monthly_product_billed_once_full_or_prorata(billing_setup):
    tv = billing_setup.product("TV", "Location téléviseur", "other", "month", [(date(2025, 1, 1), "15.00")])
    linge = billing_setup.product("LINGE", "Linge", "other", "month", [(date(2025, 1, 1), "30.00")])
    linge.monthly_mode = Product.MonthlyMode.PRORATA
    linge.save()
    package = Package.objects.create(section=billing_setup.section, code="TV", label="TV", dependency_by_gir=False)
    for product in (billing_setup.products["HEB"], tv, linge):
        PackageItem.objects.create(package=package, product=product)
    stay = billing_setup.stay(entry=date(2026, 4, 21), package=package, gir=None)
    period = billing_setup.period(*APRIL)
    period_generate(period=period)
    lines = {ln.product.code: ln for ln in _invoices(period, resident=stay.resident).get().lines.all()}
    assert (lines["TV"].quantity, lines["TV"].amount) == (D("1"), D("15.00"))
    # 30 € × 10/30: the fraction is never rounded before multiplying (0.33 × 30 would give 9.90).
    assert (lines["LINGE"].quantity, lines["LINGE"].amount) == (D("0.33"), D("10.00"))
    assert "prorata 10/30 jours" in lines["LINGE"].label
    assert lines["HEB"].quantity == D("10")


def _prorata_package(setup, price):
    linge = setup.product("LINGE", "Linge", "other", "month", [(date(2025, 1, 1), price)])
    linge.monthly_mode = Product.MonthlyMode.PRORATA
    linge.save()
    package = Package.objects.create(section=setup.section, code="LG", label="Linge", dependency_by_gir=False)
    for product in (setup.products["HEB"], linge):
        PackageItem.objects.create(package=package, product=product)
    return package


def test_monthly_prorata_amount_uses_the_exact_fraction(billing_setup):
    """billing-rules §1: 10 days of May at 45 €/month = round(45 × 10 / 31) = 14,52 € (not 0.32 × 45 = 14,40 €)."""
    package = _prorata_package(billing_setup, "45.00")
    stay = billing_setup.stay(entry=date(2026, 5, 22), package=package, gir=None)
    period = billing_setup.period(date(2026, 5, 1), date(2026, 5, 31))
    period_generate(period=period)
    line = _invoices(period, resident=stay.resident).get().lines.get(product__code="LINGE")
    assert (line.quantity, line.amount) == (D("0.32"), D("14.52"))


def test_monthly_prorata_stops_at_death(billing_setup):
    """Days after a death (belongings still in the room) are not presence days for monthly products."""
    package = _prorata_package(billing_setup, "30.00")
    stay = billing_setup.stay(entry=date(2026, 1, 1), end=date(2026, 4, 10), end_reason="death",
                              room_emptied_on=date(2026, 4, 14), package=package, gir=None)
    period = billing_setup.period(*APRIL)
    period_generate(period=period)
    invoice = _invoices(period, resident=stay.resident).get()
    line = invoice.lines.get(product__code="LINGE")
    assert line.amount == D("10.00")  # 10/30, not 14/30
    assert invoice.lines.filter(reason="after_death").exists()  # hébergement still billed after death


def test_closed_and_half_days_for_day_care(billing_setup):
    aj = billing_setup.product("AJ", "Accueil de jour", "day_care", "half_day", [(date(2026, 1, 1), "32.00")])
    package = Package.objects.create(section=billing_setup.section, code="AJ", label="AJ", dependency_by_gir=False)
    PackageItem.objects.create(package=package, product=aj)
    calendar = Calendar.objects.get(code="CAL-EXA")
    for day in range(1, 31):
        calendar_day_set(calendar=calendar, day=date(2026, 4, day), state="closed")
    calendar_day_set(calendar=calendar, day=date(2026, 4, 7), state="open")
    calendar_day_set(calendar=calendar, day=date(2026, 4, 9), state="half")
    stay = billing_setup.stay(package=package, gir=None)
    period = billing_setup.period(*APRIL)
    period_generate(period=period)
    invoice = _invoices(period, resident=stay.resident).get()
    assert sorted((ln.date_from.day, ln.quantity, ln.amount) for ln in invoice.lines.all()) == [
        (7, D("1"), D("32.00")), (9, D("0.5"), D("16.00"))]
    assert invoice.total == D("48.00")


@pytest.mark.parametrize("mode,value,payer_part,resident_part", [
    ("all", "0", "1950.00", None),
    ("percent", "30", "585.00", "1365.00"),
    ("amount_per_unit", "20.00", "600.00", "1350.00"),
    ("above_resident_share", "50.00", "450.00", "1500.00"),
])
def test_coverage_modes_on_accommodation(billing_setup, mode, value, payer_part, resident_part):
    stay = billing_setup.stay(gir=None, package=None)
    stay.package_assignments.all().delete()
    package = Package.objects.create(section=billing_setup.section, code="H", label="H", dependency_by_gir=False)
    PackageItem.objects.create(package=package, product=billing_setup.products["HEB"])
    StayPackage.objects.create(stay=stay, package=package, valid_from=stay.entry_date)
    cd = billing_setup.payers["CD69"]
    CoverageRule.objects.create(stay=stay, payer=cd, group=cd.groups.get(code="ASH"), scope="accommodation",
                                mode=mode, value=D(value), valid_from=date(2026, 1, 1))
    period = billing_setup.period(*APRIL)
    period_generate(period=period)
    payer_invoice = _invoices(period, debtor_kind="payer").get()
    assert payer_invoice.total == D(payer_part)
    assert payer_invoice.payer_group.code == "ASH"
    resident = _invoices(period, debtor_kind="resident")
    if resident_part is None:
        assert not resident.exists()
    else:
        assert resident.get().total == D(resident_part)


def test_monthly_cap_limits_the_payer_units(billing_setup):
    stay = billing_setup.stay(gir=None)
    cd = billing_setup.payers["CD01"]
    CoverageRule.objects.create(stay=stay, payer=cd, scope="accommodation", mode="all", monthly_cap_units=10,
                                valid_from=date(2026, 1, 1))
    period = billing_setup.period(*APRIL)
    period_generate(period=period)
    assert _invoices(period, debtor_kind="payer").get().total == D("650.00")
    assert _invoices(period, debtor_kind="resident").get().total == D("1300.00")


def test_paying_relative_receives_the_resident_share(billing_setup):
    stay = billing_setup.stay(gir=6)
    relative = Relative.objects.create(resident=stay.resident, last_name="Fils", first_name="Paul", is_payer=True)
    period = billing_setup.period(*APRIL)
    period_generate(period=period)
    invoice = _invoices(period).get()
    assert (invoice.debtor_kind, invoice.relative, invoice.resident, invoice.total) == (
        "relative", relative, stay.resident, D("2130.00"))


def test_gir_change_mid_month_switches_dependency_product(billing_setup):
    stay = billing_setup.stay(gir=4, domicile="01")  # no dotation globale, no APA decision: full GIR tariffs
    stay.resident.gir_assessments.create(gir=2, valid_from=date(2026, 4, 11))
    period = billing_setup.period(*APRIL)
    period_generate(period=period)
    lines = _invoices(period).get().lines.exclude(product__code="HEB").order_by("date_from")
    assert [(ln.product.code, ln.quantity, ln.amount) for ln in lines] == [
        ("DEP34", D("10"), D("140.00")), ("DEP12", D("20"), D("440.00"))]


def test_talon_on_first_day_parameter(billing_setup):
    from billing.models import DepartementParameter

    DepartementParameter.objects.filter(departement="69").update(talon_on_first_day=True)
    stay = billing_setup.stay(gir=6)
    billing_setup.absence(stay, "H", date(2026, 4, 6), date(2026, 4, 15))
    period = billing_setup.period(*APRIL)
    period_generate(period=period)
    dep = sum(ln.amount for ln in _invoices(period).get().lines.filter(product__code="DEP56"))
    assert dep == D("126.00")  # 20 present days + absence day 1


def test_regenerating_replaces_drafts_and_keeps_issued(billing_setup):
    first = billing_setup.stay(gir=6)
    period = billing_setup.period(*APRIL)
    period_generate(period=period)
    period_issue(period=period)
    issued = _invoices(period).get()
    second = billing_setup.stay(gir=6)
    Tariff.objects.create(product=billing_setup.products["HEB"], valid_from=date(2026, 4, 1), price=D("70.00"))
    result = period_generate(period=period)
    assert result["skipped_issued"] == 1 and result["drafts"] == 1
    issued.refresh_from_db()
    assert issued.total == D("2130.00") and issued.status == "issued"
    draft = _invoices(period, status="draft").get()
    assert draft.resident == second.resident and draft.total == D("2280.00")
    period_generate(period=period)
    assert _invoices(period).count() == 2
    assert first.resident.invoices.count() == 1


def test_generation_query_count_does_not_grow_with_residents(billing_setup):
    for _ in range(3):
        billing_setup.stay(gir=2)
    period = billing_setup.period(*APRIL)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    period_generate(period=period)
    with CaptureQueriesContext(connection) as small:  # a re-generation: drafts to replace
        period_generate(period=period)
    for _ in range(30):
        stay = billing_setup.stay(gir=3)
        billing_setup.absence(stay, "H", date(2026, 4, 2), date(2026, 4, 9))
        billing_setup.apa(stay, "CD01")
    with CaptureQueriesContext(connection) as large:
        period_generate(period=period)
    # 10× more residents: only bulk batches may add a few queries, never one per resident (30 here).
    assert len(large.captured_queries) <= len(small.captured_queries) + 8
    assert Invoice.objects.filter(period=period).count() == 34


def test_calendar_generation_french_and_alsace_moselle_holidays(billing_setup):
    from billing.services.calendars import calendar_generate, french_holidays

    rhone = french_holidays(years=[2026], departement="69")
    moselle = french_holidays(years=[2026], departement="57")
    assert date(2026, 4, 6) in rhone and date(2026, 5, 14) in rhone and date(2026, 5, 25) in rhone
    assert date(2026, 4, 3) not in rhone and date(2026, 12, 26) not in rhone
    assert date(2026, 4, 3) in moselle and date(2026, 12, 26) in moselle
    establishment = billing_setup.establishment
    establishment.departement = "57"
    establishment.save()
    cal = Calendar.objects.create(establishment=establishment, code="AJ57", label="AJ", mode="working_days")
    calendar_generate(calendar=cal, years=[2026])
    states = dict(CalendarDay.objects.filter(calendar=cal).values_list("day", "state"))
    assert len(states) == 365
    assert states[date(2026, 4, 3)] == "closed"  # Good Friday in Moselle
    assert states[date(2026, 12, 26)] == "closed"
    assert states[date(2026, 4, 4)] == "closed"  # Saturday
    assert states[date(2026, 4, 7)] == "open"
    # 261 weekdays − 10 holidays on weekdays (15 Aug is a Saturday, 1 Nov a Sunday, 26 Dec a Saturday)
    assert sum(1 for s in states.values() if s == "open") == 251


def test_shared_unit_price_rounded_half_up_once_per_unit(billing_setup):
    """30 % of 70.45 = 21.135 -> 21.14 for the payer, 49.31 for the resident; lines = qty × rounded unit."""
    Tariff.objects.create(product=billing_setup.products["HEB"], valid_from=date(2026, 4, 1), price=D("70.45"))
    stay = billing_setup.stay(gir=None)
    cd = billing_setup.payers["CD69"]
    CoverageRule.objects.create(stay=stay, payer=cd, group=cd.groups.get(code="ASH"), scope="accommodation",
                                mode="percent", value=D("30"), valid_from=date(2026, 1, 1))
    period = billing_setup.period(*APRIL)
    period_generate(period=period)
    payer_line = _invoices(period, debtor_kind="payer").get().lines.get()
    resident_line = _invoices(period, debtor_kind="resident").get().lines.get()
    assert (payer_line.unit_price, payer_line.amount) == (D("21.14"), D("634.20"))
    assert (resident_line.unit_price, resident_line.amount) == (D("49.31"), D("1479.30"))
    assert payer_line.amount + resident_line.amount == D("2113.50")  # 30 × 70.45


def test_day_care_bills_attendance_weekdays_only(billing_setup):
    aj = billing_setup.product("AJ2", "Accueil de jour", "day_care", "half_day", [(date(2026, 1, 1), "32.00")])
    package = Package.objects.create(section=billing_setup.section, code="AJ2", label="AJ", dependency_by_gir=False)
    PackageItem.objects.create(package=package, product=aj)
    calendar = Calendar.objects.get(code="CAL-EXA")
    calendar_day_set(calendar=calendar, day=date(2026, 4, 14), state="half")  # a Tuesday
    calendar_day_set(calendar=calendar, day=date(2026, 4, 21), state="closed")  # a Tuesday
    stay = billing_setup.stay(package=package, gir=None)
    stay.attendance_weekdays = "1,3"  # Tuesdays and Thursdays
    stay.save()
    period = billing_setup.period(*APRIL)
    period_generate(period=period)
    days = sorted((ln.date_from.day, ln.quantity) for ln in _invoices(period).get().lines.all())
    # Tue 7, 14 (half), 28 ; Thu 2, 9, 16, 23, 30 ; Tue 21 closed
    assert days == [(2, D("1")), (7, D("1")), (9, D("1")), (14, D("0.5")), (16, D("1")), (23, D("1")),
                    (28, D("1")), (30, D("1"))]
    assert _invoices(period).get().total == D("240.00")  # 7.5 × 32.00


def test_accommodation_scope_leaves_extras_to_the_resident(billing_setup):
    """An « hébergement » rule (e.g. social aid) pays HEB, not the television."""
    tv = billing_setup.product("TV", "Location téléviseur", "other", "month", [(date(2025, 1, 1), "15.00")])
    package = Package.objects.create(section=billing_setup.section, code="TV", label="TV", dependency_by_gir=False)
    PackageItem.objects.create(package=package, product=billing_setup.products["HEB"])
    PackageItem.objects.create(package=package, product=tv)
    stay = billing_setup.stay(package=package, gir=None)
    cd = billing_setup.payers["CD69"]
    CoverageRule.objects.create(stay=stay, payer=cd, group=cd.groups.get(code="ASH"), scope="accommodation",
                                mode="all", valid_from=date(2026, 1, 1))
    period = billing_setup.period(*APRIL)
    period_generate(period=period)
    assert _invoices(period, debtor_kind="payer").get().total == D("1950.00")
    resident = _invoices(period, debtor_kind="resident").get()
    assert [(ln.product.code, ln.amount) for ln in resident.lines.all()] == [("TV", D("15.00"))]
