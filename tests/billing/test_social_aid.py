"""billing-rules.md §8 and domain-research.md §4 worked example 6 (amounts computed by hand)."""
import io
from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from billing.models import Invoice, NationalParameter
from billing.services.generation import period_generate
from billing.services.issuing import period_issue
from billing.services.pocket_money import quarter_pocket_money
from billing.services.social_aid import monthly_contribution, pocket_money, quarter_pocket_money_refund
from payers.models import SocialAidDecision

D = Decimal
APRIL = (date(2026, 4, 1), date(2026, 4, 30))


@pytest.mark.parametrize("resources,minimum,expected", [
    ("1200.00", "125.00", "125.00"),  # 10 % = 120 < 125 (2026 minimum)
    ("2000.00", "125.00", "200.00"),  # 10 % above the minimum
    ("1200.00", "121.00", "121.00"),  # 2024 minimum
])
def test_pocket_money_is_ten_percent_or_the_minimum(resources, minimum, expected):
    assert pocket_money(resources=D(resources), minimum=D(minimum)) == D(expected)


def test_contribution_includes_housing_allowance_in_full():
    assert monthly_contribution(resources=D("1200"), housing_allowance=D("0"), minimum=D("125")) == D("1075.00")
    assert monthly_contribution(resources=D("1200"), housing_allowance=D("150"), minimum=D("125")) == D("1225.00")
    assert monthly_contribution(resources=D("2000"), housing_allowance=D("0"), minimum=D("125")) == D("1800.00")


def test_quarter_settlement_gives_back_what_falls_short():
    # resources 1 200 but 1 150 taken each month: kept 150 over the quarter, 3 × 125 = 375 due -> 225 back
    assert quarter_pocket_money_refund(monthly_resources=[D("1200")] * 3, contributions=[D("1150")] * 3,
                                       minimum=D("125")) == D("225.00")
    assert quarter_pocket_money_refund(monthly_resources=[D("1200")] * 3, contributions=[D("1075")] * 3,
                                       minimum=D("125")) == D("0.00")


@pytest.fixture
def ash_stay(billing_setup):
    NationalParameter.objects.update_or_create(kind="pocket_money_minimum", valid_from=date(2026, 1, 1),
                                               defaults={"amount": D("125.00")})
    stay = billing_setup.stay(gir=6)
    cd = billing_setup.payers["CD69"]
    SocialAidDecision.objects.create(stay=stay, payer=cd, group=cd.groups.get(code="ASH"), valid_from=date(2026, 1, 1),
                                     monthly_resources=D("1200.00"), housing_allowance=D("150.00"),
                                     decision_reference="ASH-2026-12")
    return stay


def test_example6_net_model_april(billing_setup, ash_stay):
    period = billing_setup.period(*APRIL)
    period_generate(period=period)
    payer = Invoice.objects.get(period=period, debtor_kind="payer")
    resident = Invoice.objects.get(period=period, debtor_kind="resident")
    assert payer.payer_group.code == "ASH"
    assert payer.total == D("725.00")  # 1 950.00 − (1 075.00 + 150.00)
    deduction = payer.lines.get(reason="ash_contribution")
    assert deduction.amount == D("-1225.00")
    # the resident pays the contribution and the talon (not covered by the ASH decision here)
    assert resident.lines.get(reason="ash_contribution").amount == D("1225.00")
    assert resident.lines.get(product__code="DEP56").amount == D("180.00")
    assert resident.total == D("1405.00")
    assert "participation du résident" in resident.lines.get(reason="ash_contribution").label


def test_contribution_prorated_and_capped(billing_setup, ash_stay):
    ash_stay.end_date, ash_stay.end_reason = date(2026, 4, 10), "departure"
    ash_stay.save()
    period = billing_setup.period(*APRIL)
    period_generate(period=period)
    resident = Invoice.objects.get(period=period, debtor_kind="resident")
    # 10 days: contribution 1 225 × 10/30 = 408.33 ; hébergement paid by the département 650.00
    assert resident.lines.get(reason="ash_contribution").amount == D("408.33")
    assert Invoice.objects.get(period=period, debtor_kind="payer").total == D("241.67")
    SocialAidDecision.objects.filter(stay=ash_stay).update(monthly_resources=D("5000.00"))
    period_generate(period=period)
    # 10 % of 5 000 = 500 kept; 4 650 contribution × 10/30 = 1 550 > 650: capped at what the département pays
    assert Invoice.objects.get(period=period, debtor_kind="resident", status="draft").lines.get(
        reason="ash_contribution").amount == D("650.00")
    assert Invoice.objects.get(period=period, debtor_kind="payer").total == D("0.00")


def test_rappel_under_social_aid_goes_to_the_departement(billing_setup, ash_stay):
    from billing.models import Tariff
    from billing.services.issuing import period_issue
    from billing.services.rappel import rappel_generate

    period = billing_setup.period(*APRIL)
    period_generate(period=period)
    period_issue(period=period, issue_date=date(2026, 5, 2))
    Tariff.objects.create(product=billing_setup.products["HEB"], valid_from=date(2026, 4, 1), price=D("67.00"))
    rappel_generate(section=billing_setup.section, product=billing_setup.products["HEB"],
                    include_payants=True, include_social_aid=True)
    invoices = Invoice.objects.filter(kind="rappel")
    assert [(i.debtor_kind, i.total) for i in invoices] == [("payer", D("60.00"))]  # 30 days × 2.00
    line = invoices.get().lines.get()
    assert (line.quantity, line.unit_price, line.previous_unit_price) == (D("30"), D("2.00"), D("65.00"))


def test_the_payers_own_pocket_money_minimum_applies_when_the_decision_has_none(billing_setup, ash_stay):
    cd = billing_setup.payers["CD69"]
    cd.pocket_money_minimum = D("130.00")
    cd.save()
    period = billing_setup.period(*APRIL)
    period_generate(period=period)
    resident = Invoice.objects.get(period=period, debtor_kind="resident")
    # 1 200 − 130 (payer's minimum, above 10 % and the legal 125) + 150 housing allowance
    assert resident.lines.get(reason="ash_contribution").amount == D("1220.00")
    SocialAidDecision.objects.filter(stay=ash_stay).update(pocket_money_minimum=D("140.00"))
    period_generate(period=period)
    resident = Invoice.objects.get(period=period, debtor_kind="resident", status="draft")
    assert resident.lines.get(reason="ash_contribution").amount == D("1210.00")  # the decision's own wins


def _issue_quarter(billing_setup):
    for month, issued in [(4, date(2026, 5, 1)), (5, date(2026, 6, 1)), (6, date(2026, 7, 1))]:
        end = {4: 30, 5: 31, 6: 30}[month]
        period = billing_setup.period(date(2026, month, 1), date(2026, month, end), label=f"2026-{month:02d}")
        period_generate(period=period)
        period_issue(period=period, issue_date=issued)


def test_quarter_pocket_money_nothing_owed_when_contributions_left_the_minimum(billing_setup, ash_stay):
    _issue_quarter(billing_setup)
    row, = quarter_pocket_money(section=billing_setup.section, quarter="2026-T2")
    # 3 × 1 225 billed, of which 3 × 150 housing allowance: kept 3 600 − 3 225 = 375 = 3 × 125
    assert (row.payer_code, row.months, row.contributions, row.refund) == ("CD69", 3, D("3675.00"), D("0.00"))


def test_quarter_pocket_money_gives_back_what_falls_short(billing_setup, ash_stay):
    _issue_quarter(billing_setup)
    # resources declared lower afterwards: 1 000 a month; 3 225 taken (housing allowance apart)
    SocialAidDecision.objects.filter(stay=ash_stay).update(monthly_resources=D("1000.00"))
    row, = quarter_pocket_money(section=billing_setup.section, quarter="2026-Q2")
    assert row.refund == D("600.00")  # due 3 × 125 = 375, kept 3 000 − 3 225 = −225
    out = io.StringIO()
    call_command("pocket_money_quarter", section=billing_setup.section.alias, quarter="2026-T2", stdout=out)
    assert "CD69" in out.getvalue() and "à reverser : 600,00" in out.getvalue()


def test_quarter_is_checked_in_french(billing_setup):
    with pytest.raises(ValidationError, match="Trimestre invalide"):
        quarter_pocket_money(section=billing_setup.section, quarter="2026-T5")
