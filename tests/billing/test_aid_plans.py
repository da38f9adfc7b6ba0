"""Aid plans in generation (billing-rules §4), hand-computed on April 2026: 30 days, 4 Sundays (5, 12, 19, 26)
and one public holiday (Easter Monday 6 April, from the ``holidays`` library). Hébergement 65.00 €/day."""
from datetime import date
from decimal import Decimal

import pytest

from billing.models import Invoice, Package, PackageItem
from billing.services.generation import period_generate
from payers.models import AidPlan, Payer
from payers.services.aid_plans import aid_plan_save, aid_plan_validate

D = Decimal
APRIL = (date(2026, 4, 1), date(2026, 4, 30))


@pytest.fixture
def heb_only(billing_setup):
    package = Package.objects.create(section=billing_setup.section, code="HEBS", label="Hébergement seul",
                                     dependency_by_gir=False)
    PackageItem.objects.create(package=package, product=billing_setup.products["HEB"])
    billing_setup.payers["MUTSAN"] = Payer.objects.create(
        organisation=billing_setup.establishment.organisation, code="MUTSAN", name="Mutuelle Santé", kind="mutual")
    return package


def make_plan(setup, stay, *, validate=True, payer="MUTSAN", **values):
    fields = {"rate": D("40.00"), "coverage_percent": D("100"), "monthly_cap_units": D("20"),
              "valid_from": date(2026, 1, 1), "billing_mode": AidPlan.BillingMode.PLAN_RATE}
    fields.update(values)
    plan = aid_plan_save(plan=AidPlan(stay=stay, payer=setup.payers[payer], product=setup.products["HEB"], **fields))
    if validate:
        aid_plan_validate(plan=plan, user=None)
    return plan


def totals(period, stay):
    invoices = Invoice.objects.filter(period=period)
    resident = invoices.get(resident=stay.resident).total
    payer = invoices.filter(debtor_kind="payer").first()
    return resident, payer.total if payer else None


def test_empty_sunday_cap_every_day_financed_holiday_rate_cap_reached_mid_month(billing_setup, heb_only):
    """Cap 20 units, Sunday/holiday cap empty: days 1–20 financed (16 ordinary days at 40 €, Sundays 5, 12, 19
    and Easter Monday at the holiday rate 50 €); from the 21st, the product's price for the resident."""
    stay = billing_setup.stay(package=heb_only, gir=None)
    make_plan(billing_setup, stay, holiday_rate=D("50.00"))
    period = billing_setup.period(*APRIL)
    period_generate(period=period)
    assert totals(period, stay) == (D("650.00"), D("840.00"))  # resident 10 × 65; payer 16 × 40 + 4 × 50
    payer_invoice = Invoice.objects.get(period=period, debtor_kind="payer")
    holiday_lines = payer_invoice.lines.filter(unit_price=D("50.00")).order_by("date_from")
    assert [(ln.date_from.day, ln.date_to.day) for ln in holiday_lines] == [(5, 6), (12, 12), (19, 19)]
    assert all("dimanche / jour férié" in ln.label for ln in holiday_lines)
    resident_line = Invoice.objects.get(period=period, resident=stay.resident).lines.get()
    assert (resident_line.date_from.day, resident_line.quantity, resident_line.unit_price) == (21, D("10"), D("65.00"))


def test_sunday_cap_zero_not_financed_product_price_mode(billing_setup, heb_only):
    """Sunday/holiday cap 0: Sundays and Easter Monday are not financed and use no cap; the 20 financed ordinary
    days run to the 24th. Billing at the product's price: the resident pays 65 − 40 on financed days."""
    stay = billing_setup.stay(package=heb_only, gir=None)
    make_plan(billing_setup, stay, holiday_cap_units=D("0"), billing_mode=AidPlan.BillingMode.PRODUCT_PRICE)
    period = billing_setup.period(*APRIL)
    period_generate(period=period)
    assert totals(period, stay) == (D("1150.00"), D("800.00"))  # 30 × 65 − 20 × 40; payer 20 × 40
    payer_lines = Invoice.objects.get(period=period, debtor_kind="payer").lines.order_by("date_from")
    assert [(ln.date_from.day, ln.date_to.day) for ln in payer_lines] == [(1, 4), (7, 11), (13, 18), (20, 24)]


def test_own_sunday_cap_then_weekday_rate_partial_coverage(billing_setup, heb_only):
    """Sunday/holiday cap 2 at 50 € (100 %): Sunday 5 and Easter Monday 6; Sundays 12 and 19 fall back to the
    ordinary rate and cap (40 € at 80 %: payer 32, resident 8); the month's cap of 20 is reached on the 22nd;
    the 23rd–30th (Sunday 26 included: both caps used) at 65 € for the resident."""
    stay = billing_setup.stay(package=heb_only, gir=None)
    make_plan(billing_setup, stay, coverage_percent=D("80"), holiday_rate=D("50.00"),
              holiday_coverage_percent=D("100"), holiday_cap_units=D("2"))
    period = billing_setup.period(*APRIL)
    period_generate(period=period)
    assert totals(period, stay) == (D("680.00"), D("740.00"))  # 20 × 8 + 8 × 65; 2 × 50 + 20 × 32


def test_plan_starting_mid_month_without_cap(billing_setup, heb_only):
    stay = billing_setup.stay(package=heb_only, gir=None)
    make_plan(billing_setup, stay, valid_from=date(2026, 4, 15), monthly_cap_units=None,
              billing_mode=AidPlan.BillingMode.PRODUCT_PRICE)
    period = billing_setup.period(*APRIL)
    period_generate(period=period)
    assert totals(period, stay) == (D("1310.00"), D("640.00"))  # 30 × 65 − 16 × 40; 15th–30th × 40


def test_plan_rate_mode_month_cap_counts_per_calendar_month(billing_setup, heb_only):
    """Billing at the plan's rate (60 € at 50 %: payer 30, resident 30) up to the cap of 10, then 65 €."""
    stay = billing_setup.stay(package=heb_only, gir=None)
    make_plan(billing_setup, stay, rate=D("60.00"), coverage_percent=D("50"), monthly_cap_units=D("10"))
    period = billing_setup.period(date(2026, 3, 16), date(2026, 4, 15))
    period_generate(period=period)
    # March 16–25 and April 1–10 financed (10 each): resident 20 × 30 + (6 + 5) × 65; payer 20 × 30.
    assert totals(period, stay) == (D("1315.00"), D("600.00"))


def test_entered_plan_is_ignored_by_generation(billing_setup, heb_only):
    stay = billing_setup.stay(package=heb_only, gir=None)
    make_plan(billing_setup, stay, validate=False)
    period = billing_setup.period(*APRIL)
    period_generate(period=period)
    assert totals(period, stay) == (D("1950.00"), None)


def test_plan_on_hebergement_leaves_dependency_to_the_default_apa(billing_setup):
    """A plan on hébergement leaves the dependency items to the other rules (here the default APA of the
    dotation-globale département: the resident pays the talon)."""
    billing_setup.payers["MUTSAN"] = Payer.objects.create(
        organisation=billing_setup.establishment.organisation, code="MUTSAN", name="Mutuelle", kind="mutual")
    stay = billing_setup.stay(gir=2)
    make_plan(billing_setup, stay, monthly_cap_units=None)
    period = billing_setup.period(*APRIL)
    period_generate(period=period)
    resident = Invoice.objects.get(period=period, resident=stay.resident)
    # Hébergement at the plan's rate paid in full by the plan; the resident pays the talon (dotation globale).
    assert resident.total == D("180.00") and set(resident.lines.values_list("product__code", flat=True)) == {"DEP12"}
    assert Invoice.objects.get(period=period, debtor_kind="payer").total == D("1200.00")


def test_generation_queries_do_not_grow_with_aid_plans(billing_setup, heb_only):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(3):
        make_plan(billing_setup, billing_setup.stay(package=heb_only, gir=None))
    period = billing_setup.period(*APRIL)
    period_generate(period=period)
    with CaptureQueriesContext(connection) as small:
        period_generate(period=period)
    for _ in range(30):
        make_plan(billing_setup, billing_setup.stay(package=heb_only, gir=None), holiday_cap_units=D("1"))
    with CaptureQueriesContext(connection) as large:
        period_generate(period=period)
    assert len(large.captured_queries) <= len(small.captured_queries) + 8
    assert Invoice.objects.filter(period=period, debtor_kind="payer").count() == 1
    assert Invoice.objects.filter(period=period).count() == 34


def test_a_plan_change_marks_the_drafts_to_regenerate(billing_setup, heb_only):
    stay = billing_setup.stay(package=heb_only, gir=None)
    period = billing_setup.period(*APRIL)
    period_generate(period=period)
    period.refresh_from_db()
    assert period.drafts_stale_since is None
    plan = make_plan(billing_setup, stay, valid_from=date(2026, 4, 10))
    period.refresh_from_db()
    assert period.drafts_stale_since is not None
    period_generate(period=period)
    assert totals(period, stay)[1] == D("800.00")  # 10th–29th: the cap of 20
    plan.valid_to = date(2026, 4, 12)
    aid_plan_save(plan=plan)
    period.refresh_from_db()
    assert period.drafts_stale_since is not None and plan.status == AidPlan.Status.ENTERED


def test_half_days_count_half_a_unit_and_monthly_products_ignore_sundays():
    """Pure engine: a half-day uses 0.5 of the cap; a monthly item dated on a Sunday is an ordinary unit."""
    from collections import defaultdict

    from billing.models import Product
    from billing.services import engine
    from billing.services.dated import Dated

    day_care = Product(id=1, code="AJ", kind="day_care", unit="half_day")
    tv = Product(id=2, code="TV", kind="other", unit="month")
    ctx = engine.Context(tariffs={}, calendar={}, products_by_kind={}, hospital_charge=Dated([]),
                         psychiatric_charge=Dated([]), departement=Dated([]), holidays=frozenset())

    def plan(product_id):
        return engine.AidPlanData(plan_id=product_id, payer_id=9, group_id=None, product_id=product_id,
                                  valid_from=date(2026, 1, 1), valid_to=None, rate=D("30"), percent=D("100"),
                                  monthly_cap=D("1"), holiday_rate=D("45"), holiday_percent=None,
                                  holiday_cap=D("0"), plan_rate_billing=True, label="CD")

    used = defaultdict(lambda: D("0"))
    half = [engine.DayItem(date(2026, 4, d), day_care, D("0.5"), D("32"), "presence") for d in (1, 2, 3)]
    financed = [engine.aid_plan_financing(plan=plan(1), item=item, ctx=ctx, used=used) for item in half]
    assert financed == [(D("30"), D("100"), False), (D("30"), D("100"), False), None]
    sunday_tv = engine.DayItem(date(2026, 4, 5), tv, D("1"), D("15"), "monthly", monthly=True)
    assert engine.aid_plan_financing(plan=plan(2), item=sunday_tv, ctx=ctx, used=used) == (D("30"), D("100"), False)
    hospital = engine.DayItem(date(2026, 5, 4), day_care, D("1"), D("12"), "absence_hospital")
    assert engine.aid_plan_financing(plan=plan(1), item=hospital, ctx=ctx, used=used) is None


def test_a_dependency_plan_is_an_individual_apa_decision(billing_setup):
    """A validated plan on the GIR 1-2 product: the « sans décision APA » check is satisfied for a resident of
    another département, and for a dotation-globale resident the default APA does not apply on top of it."""
    from billing.services.checks import period_checks

    outsider = billing_setup.stay(gir=2, domicile="01")
    local = billing_setup.stay(gir=2)
    period = billing_setup.period(*APRIL)

    def apa_warnings():
        return [c for c in period_checks(period=period) if "décision APA" in c.message]

    assert len(apa_warnings()) == 1
    dep12 = billing_setup.products["DEP12"]
    for stay in (outsider, local):
        plan = aid_plan_save(plan=AidPlan(stay=stay, payer=billing_setup.payers["CD01"], product=dep12,
                                          rate=D("10.00"), valid_from=stay.entry_date,
                                          billing_mode=AidPlan.BillingMode.PRODUCT_PRICE))
        aid_plan_validate(plan=plan, user=None)
    assert apa_warnings() == []
    period_generate(period=period)
    # Hébergement 30 × 65 + dependency 30 × (22 − 10): for the local resident, not the talon (6) that the default
    # APA would leave (it would take 12 − 6 as its non-invoiced share).
    for stay in (outsider, local):
        assert Invoice.objects.get(period=period, resident=stay.resident).total == D("2310.00")
    assert Invoice.objects.get(period=period, debtor_kind="payer").total == D("600.00")  # 2 × 30 × 10
