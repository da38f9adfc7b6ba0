"""domain-research.md §2–3 worked examples and billing-rules.md rules, amounts computed by hand."""
from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from billing.models import DepartementParameter, Invoice, Tariff
from billing.services.generation import period_generate

D = Decimal
APRIL = (date(2026, 4, 1), date(2026, 4, 30))
JANUARY = (date(2026, 1, 1), date(2026, 1, 31))


def generate(setup, start, end):
    period = setup.period(start, end)
    result = period_generate(period=period)
    return period, result


def resident_invoice(period, stay):
    return Invoice.objects.get(period=period, debtor_kind="resident", resident=stay.resident)


def amounts_by_product(invoice):
    out = {}
    for line in invoice.lines.all():
        out[line.product.code] = out.get(line.product.code, D("0")) + line.amount
    return out


def test_example1_dotation_globale_resident_pays_talon_only(billing_setup):
    stay = billing_setup.stay(gir=2)
    billing_setup.apa(stay, "CD69")  # own département, dotation globale: not invoiced
    period, _ = generate(billing_setup, *APRIL)
    invoice = resident_invoice(period, stay)
    assert amounts_by_product(invoice) == {"HEB": D("1950.00"), "DEP12": D("180.00")}
    assert invoice.total == D("2130.00")
    assert not Invoice.objects.filter(period=period, debtor_kind="payer").exists()
    talon = invoice.lines.get(product__code="DEP12")
    assert (talon.quantity, talon.unit_price) == (D("30"), D("6.00"))
    assert "part à votre charge" in talon.label


def test_example1_other_departement_is_billed_gir_tariff_minus_talon(billing_setup):
    stay = billing_setup.stay(gir=2)
    billing_setup.apa(stay, "CD01")
    period, _ = generate(billing_setup, *APRIL)
    assert resident_invoice(period, stay).total == D("2130.00")
    payer_invoice = Invoice.objects.get(period=period, debtor_kind="payer", payer=billing_setup.payers["CD01"])
    assert payer_invoice.payer_group.code == "APA"
    assert payer_invoice.total == D("480.00")  # 30 × (22.00 − 6.00)
    line = payer_invoice.lines.get()
    assert (line.quantity, line.unit_price) == (D("30"), D("16.00"))
    assert stay.resident.last_name.upper() in line.label


def test_gir_5_6_or_no_apa_pays_own_gir_tariff(billing_setup):
    stay = billing_setup.stay(gir=3, domicile="01")  # other département, no APA decision: pays GIR 3-4 itself
    period, _ = generate(billing_setup, *APRIL)
    assert amounts_by_product(resident_invoice(period, stay)) == {"HEB": D("1950.00"), "DEP34": D("420.00")}


def _dependency(invoice):
    return sorted((ln.product.code, ln.quantity, ln.unit_price) for ln in invoice.lines.exclude(product__code="HEB"))


def test_dotation_globale_needs_no_per_resident_rule(billing_setup):
    """§3: domicile de secours = the establishment's département (69, dotation globale): GIR 1-4 aged 60+
    pays the talon per day, nothing else is invoiced for dependency, without any coverage rule."""
    own = billing_setup.stay(gir=2)  # domicile empty = the establishment's
    explicit_69 = billing_setup.stay(gir=3, domicile="69")
    gir5 = billing_setup.stay(gir=5)
    young = billing_setup.stay(gir=2, birth=date(1970, 6, 1))  # 55 years old: pays the GIR tariff
    turns_60 = billing_setup.stay(gir=2, birth=date(1966, 4, 21))  # 60 on 21 April 2026
    period, _ = generate(billing_setup, *APRIL)
    assert _dependency(resident_invoice(period, own)) == [("DEP12", D("30"), D("6.00"))]
    assert "part à votre charge" in resident_invoice(period, own).lines.get(product__code="DEP12").label
    assert _dependency(resident_invoice(period, explicit_69)) == [("DEP34", D("30"), D("6.00"))]
    assert _dependency(resident_invoice(period, gir5)) == [("DEP56", D("30"), D("6.00"))]
    assert _dependency(resident_invoice(period, young)) == [("DEP12", D("30"), D("22.00"))]
    assert _dependency(resident_invoice(period, turns_60)) == [("DEP12", D("10"), D("6.00")),
                                                               ("DEP12", D("20"), D("22.00"))]
    assert not Invoice.objects.filter(period=period, debtor_kind="payer").exists()


def test_other_departement_needs_a_decision_and_an_explicit_rule_wins(billing_setup):
    from payers.models import CoverageRule

    without = billing_setup.stay(gir=2, domicile="01")
    with_decision = billing_setup.stay(gir=2, domicile="01")
    billing_setup.apa(with_decision, "CD01")
    own_with_rule = billing_setup.stay(gir=2)  # own département, but an explicit rule: the rule wins
    CoverageRule.objects.create(stay=own_with_rule, payer=billing_setup.payers["CD01"], scope="dependency",
                                mode="percent", value=D("50"), valid_from=own_with_rule.entry_date)
    period, _ = generate(billing_setup, *APRIL)
    assert _dependency(resident_invoice(period, without)) == [("DEP12", D("30"), D("22.00"))]
    assert _dependency(resident_invoice(period, with_decision)) == [("DEP12", D("30"), D("6.00"))]
    assert _dependency(resident_invoice(period, own_with_rule)) == [("DEP12", D("30"), D("11.00"))]
    cd01 = Invoice.objects.filter(period=period, debtor_kind="payer", payer=billing_setup.payers["CD01"])
    assert sum(i.total for i in cd01) == D("810.00")  # 30 × 16.00 (APA decision) + 30 × 11.00 (50 %)


def test_preflight_check_names_only_other_departements_without_decision(billing_setup):
    from billing.services.checks import period_checks

    billing_setup.stay(gir=2)  # own département under dotation: no warning
    lacking = billing_setup.stay(gir=2, domicile="01")
    decided = billing_setup.stay(gir=2, domicile="01")
    billing_setup.apa(decided, "CD01")
    period = billing_setup.period(*APRIL)
    warnings = [c.message for c in period_checks(period=period) if c.level == "warning"]
    apa = [w for w in warnings if "APA" in w]
    assert apa == [f"{lacking.resident.full_name} : domicile de secours 01 (hors dotation globale), GIR 2 sans "
                   "décision APA individuelle — la totalité du tarif dépendance sera facturée au résident."]


def test_example3_ten_day_hospitalisation_april(billing_setup):
    stay = billing_setup.stay(gir=6)
    billing_setup.absence(stay, "H", date(2026, 4, 6), date(2026, 4, 15))
    period, _ = generate(billing_setup, *APRIL)
    invoice = resident_invoice(period, stay)
    by_product = amounts_by_product(invoice)
    assert by_product["HEB"] == D("1789.00")  # 20 × 65 + 3 × 65 + 7 × 42
    assert by_product["DEP56"] == D("120.00")  # 20 present days × 6.00
    assert invoice.total == D("1909.00")
    reduced = invoice.lines.get(reason="absence_hospital")
    assert (reduced.date_from, reduced.date_to, reduced.quantity, reduced.unit_price) == (
        date(2026, 4, 9), date(2026, 4, 15), D("7"), D("42.00"))
    assert "hospitalisation" in reduced.label


def test_example3_in_january_uses_20_euro_forfait(billing_setup):
    stay = billing_setup.stay(gir=6)
    billing_setup.absence(stay, "H", date(2026, 1, 6), date(2026, 1, 15))
    period, _ = generate(billing_setup, *JANUARY)
    # 21 present + 3 full absence days = 24 × 65 = 1560 ; 7 × 45 = 315 -> 1875 for 31 days
    assert amounts_by_product(resident_invoice(period, stay))["HEB"] == D("1875.00")


def test_three_day_absence_is_not_reduced(billing_setup):
    stay = billing_setup.stay(gir=6)
    billing_setup.absence(stay, "H", date(2026, 4, 6), date(2026, 4, 8))
    period, _ = generate(billing_setup, *APRIL)
    invoice = resident_invoice(period, stay)
    assert amounts_by_product(invoice)["HEB"] == D("1950.00")
    assert amounts_by_product(invoice)["DEP56"] == D("162.00")  # 27 × 6, none on the 3 absence days


def test_forfait_changes_on_first_of_march(billing_setup):
    stay = billing_setup.stay(gir=6)
    billing_setup.absence(stay, "H", date(2026, 2, 22), date(2026, 3, 5))  # day 4 = 25 Feb
    period, _ = generate(billing_setup, date(2026, 2, 1), date(2026, 3, 31))
    lines = resident_invoice(period, stay).lines.filter(reason="absence_hospital").order_by("date_from")
    assert [(ln.date_from, ln.date_to, ln.unit_price) for ln in lines] == [
        (date(2026, 2, 25), date(2026, 2, 28), D("45.00")), (date(2026, 3, 1), date(2026, 3, 5), D("42.00"))]


def test_psychiatric_forfait_on_day_four(billing_setup):
    stay = billing_setup.stay(gir=6)
    billing_setup.absence(stay, "S", date(2026, 3, 7), date(2026, 3, 10))
    period, _ = generate(billing_setup, date(2026, 3, 1), date(2026, 3, 31))
    line = resident_invoice(period, stay).lines.get(reason="absence_psy")
    assert (line.date_from, line.unit_price, line.amount) == (date(2026, 3, 10), D("48.00"), D("48.00"))


def test_day_numbers_continue_from_an_earlier_period(billing_setup):
    stay = billing_setup.stay(entry=date(2025, 10, 1), gir=6)
    billing_setup.absence(stay, "H", date(2025, 10, 29), date(2025, 11, 10))
    period, _ = generate(billing_setup, date(2025, 11, 1), date(2025, 11, 30))
    reduced = resident_invoice(period, stay).lines.get(reason="absence_hospital")
    # 29, 30, 31 Oct are days 1-3: 1 Nov is day 4 already.
    assert (reduced.date_from, reduced.date_to, reduced.quantity, reduced.unit_price) == (
        date(2025, 11, 1), date(2025, 11, 10), D("10"), D("45.00"))


def test_example4_convenience_cap_counts_every_absence_day(billing_setup):
    DepartementParameter.objects.filter(departement="69").update(convenience_reduction=D("13.00"))
    stay = billing_setup.stay(entry=date(2026, 1, 1), gir=6)
    billing_setup.absence(stay, "C", date(2026, 2, 2), date(2026, 3, 3))  # 30 days already used this year
    billing_setup.absence(stay, "C", date(2026, 6, 1), date(2026, 6, 10))  # new 10-day holiday
    period, _ = generate(billing_setup, date(2026, 6, 1), date(2026, 6, 10))
    invoice = resident_invoice(period, stay)
    # days 1-3 full 195 ; days 4-5 reduced 2 × 52 = 104 ; days 6-10 over the cap, full 325 -> 624
    assert amounts_by_product(invoice)["HEB"] == D("624.00")
    assert invoice.lines.get(reason="absence_convenience").quantity == D("2")
    assert invoice.lines.get(reason="absence_convenience_cap").quantity == D("5")
    assert "DEP56" not in amounts_by_product(invoice)


def test_permission_without_effect_bills_everything(billing_setup):
    stay = billing_setup.stay(gir=6)
    billing_setup.absence(stay, "P", date(2026, 4, 6), date(2026, 4, 15))
    period, _ = generate(billing_setup, *APRIL)
    assert resident_invoice(period, stay).total == D("2130.00")


def test_example5_death_with_belongings_four_days(billing_setup):
    stay = billing_setup.stay(gir=6, entry=date(2026, 1, 1), end=date(2026, 4, 12), end_reason="death",
                              room_emptied_on=date(2026, 4, 16))
    period, _ = generate(billing_setup, *APRIL)
    invoice = resident_invoice(period, stay)
    assert amounts_by_product(invoice) == {"HEB": D("988.00"), "DEP56": D("72.00")}  # 780 + 208 ; 12 × 6
    assert invoice.total == D("1060.00")
    after = invoice.lines.get(reason="after_death")
    assert (after.date_from, after.date_to, after.unit_price) == (date(2026, 4, 13), date(2026, 4, 16), D("52.00"))


def test_example5_death_billing_capped_at_six_days(billing_setup):
    stay = billing_setup.stay(gir=6, end=date(2026, 4, 12), end_reason="death", room_emptied_on=date(2026, 4, 25))
    period, _ = generate(billing_setup, *APRIL)
    after = resident_invoice(period, stay).lines.get(reason="after_death")
    assert (after.date_to, after.amount) == (date(2026, 4, 18), D("312.00"))


def test_entry_and_exit_days_are_billed(billing_setup):
    stay = billing_setup.stay(gir=6, entry=date(2026, 4, 10), end=date(2026, 4, 20), end_reason="departure")
    period, _ = generate(billing_setup, *APRIL)
    assert resident_invoice(period, stay).total == D("781.00")  # 11 days × 71.00


def test_tariff_change_inside_period_splits_the_line(billing_setup):
    Tariff.objects.create(product=billing_setup.products["HEB"], valid_from=date(2026, 4, 16), price=D("67.00"))
    stay = billing_setup.stay(gir=6)
    period, _ = generate(billing_setup, *APRIL)
    lines = resident_invoice(period, stay).lines.filter(product__code="HEB").order_by("date_from")
    assert [(ln.quantity, ln.unit_price, ln.amount) for ln in lines] == [
        (D("15"), D("65.00"), D("975.00")), (D("15"), D("67.00"), D("1005.00"))]


def test_missing_calendar_days_refuse_generation(billing_setup):
    billing_setup.stay()
    period = billing_setup.period(date(2027, 1, 1), date(2027, 1, 31))
    with pytest.raises(ValidationError) as exc:
        period_generate(period=period)
    assert "Le calendrier CAL-EXA n'a pas été généré pour la période" in str(exc.value)
    assert "01/01/2027" in str(exc.value)
