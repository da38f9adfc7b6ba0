"""Aid plans in the browser (managers): payer defaults per product (« Paramétrage »), the « Plans d'aide » tab,
creation pre-filled from the defaults, validation, the stay's billing screen and its month simulation; all
scoped to the section of the URL."""
from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from billing.models import BillingPeriod, Invoice, Product
from billing.services.checks import period_checks
from payers.models import AidPlan, AidPlanDefault, Payer
from residents.models import Stay
from structures.models import Section, SectionAccess
from tests.factories import SectionAccessFactory, UserFactory

D = Decimal


@pytest.fixture
def ctx(demo_with_residents):
    stay = Stay.objects.filter(section__alias="TIL-HP", end_date__isnull=True).order_by("pk").first()
    heb = Product.objects.get(establishment=stay.section.establishment, code="HEB")
    return {"stay": stay, "heb": heb, "mutsan": Payer.objects.get(code="MUTSAN"),
            "ver_stay": Stay.objects.filter(section__alias="VER-HP").order_by("pk").first()}


def url(name, alias="TIL-HP", **kwargs):
    return reverse(f"payers:{name}", kwargs={"alias": alias, **kwargs})


PLAN = {"rate": "40.00", "coverage_percent": "100", "monthly_cap_units": "20", "holiday_rate": "50.00",
        "holiday_coverage_percent": "", "holiday_cap_units": "", "billing_mode": "plan_rate",
        "valid_from": "2026-01-01", "valid_to": "", "group": "", "decision_reference": "PA-1"}


def test_defaults_prefill_a_new_plan_then_validate(client, ctx):
    stay, heb, mutsan = ctx["stay"], ctx["heb"], ctx["mutsan"]
    client.login(username="responsable", password="demo")
    response = client.post(url("aid-plan-default-add", pk=mutsan.pk), {
        "product": heb.pk, "rate": "38.50", "coverage_percent": "90", "monthly_cap_units": "25",
        "holiday_rate": "", "holiday_coverage_percent": "", "holiday_cap_units": "0", "billing_mode": "product_price"})
    assert response.status_code == 302
    settings_page = client.get(url("detail", pk=mutsan.pk) + "?tab=settings").content.decode()
    assert "Valeurs plan d'aide par défaut" in settings_page and "38,50 €" in settings_page
    assert "non financés" in settings_page  # Sunday cap 0
    # Step 1 from the payer file, then the form pre-filled with the defaults.
    tab = client.get(url("aid-plans", pk=mutsan.pk)).content.decode()
    assert "Nouveau plan d'aide" in tab
    step1 = client.get(url("aid-plan-create") + f"?payer={mutsan.pk}&retour=payeur")
    assert step1.context["step"] == 1 and not step1.context["start_form"].errors
    assert step1.context["start_form"].initial["payer"] == str(mutsan.pk)
    page = client.get(url("aid-plan-create") + f"?payer={mutsan.pk}&stay={stay.pk}&product={heb.pk}&retour=payeur")
    form = page.context["form"]
    assert form.initial["rate"] == D("38.50") and form.initial["holiday_cap_units"] == D("0")
    assert form.initial["billing_mode"] == "product_price" and form.initial["valid_from"] == stay.entry_date
    start = f"{stay.entry_date:%Y-%m-%d}"
    response = client.post(url("aid-plan-create"), {**PLAN, "stay": stay.pk, "payer": mutsan.pk, "product": heb.pk,
                                                    "retour": "payeur", "valid_from": start})
    plan = AidPlan.objects.get(stay=stay)
    assert response.status_code == 302 and plan.status == AidPlan.Status.ENTERED
    assert "Saisi" in client.get(url("aid-plans", pk=mutsan.pk)).content.decode()
    response = client.post(url("aid-plan-validate", plan_pk=plan.pk), {"retour": "payeur"})
    assert response.url == url("aid-plans", pk=mutsan.pk)
    plan.refresh_from_db()
    assert plan.is_validated and plan.validated_by.username == "responsable"
    # A change of a validated plan brings it back to « saisi ».
    client.post(url("aid-plan-edit", plan_pk=plan.pk), {**PLAN, "rate": "41.00", "valid_from": start})
    plan.refresh_from_db()
    assert plan.rate == D("41.00") and plan.status == AidPlan.Status.ENTERED


def test_stay_billing_lists_plans_and_simulates_a_month_without_writing(client, ctx):
    stay, heb, mutsan = ctx["stay"], ctx["heb"], ctx["mutsan"]
    AidPlan.objects.create(stay=stay, payer=mutsan, product=heb, rate=D("40.00"), monthly_cap_units=D("20"),
                           holiday_rate=D("50.00"), valid_from=stay.entry_date, status=AidPlan.Status.VALIDATED)
    client.login(username="responsable", password="demo")
    billing_url = reverse("billing:stay-billing", kwargs={"alias": "TIL-HP", "stay_pk": stay.pk})
    page = client.get(billing_url).content.decode()
    assert 'id="aid-plans"' in page and "Validé" in page and "MUTSAN" in page
    assert url("aid-plan-create") + f"?stay={stay.pk}" in page
    resident_page = client.get(reverse("residents:detail", kwargs={"alias": "TIL-HP", "pk": stay.resident_id})
                               + "?tab=stays").content.decode()
    assert f"{billing_url}#aid-plans" in resident_page
    invoices, periods = Invoice.objects.count(), BillingPeriod.objects.count()
    response = client.get(billing_url + "?simulation=2027-04")
    simulation = response.context["simulation"]
    assert Invoice.objects.count() == invoices and BillingPeriod.objects.count() == periods  # nothing written
    by_label = {d["label"]: d for d in simulation["debtors"]}
    payer = by_label[mutsan.name]
    # April 2027: 4 Sundays (4, 11, 18, 25) and Easter Monday (29 March: not in April) → days 1–20 financed:
    # Sundays 4, 11, 18 at 50 €, 17 other days at 40 €.
    assert payer["total"] == D("17") * 40 + D("3") * 50
    page = response.content.decode()
    assert "Simulation" in page and "Total du mois" in page
    bad = client.get(billing_url + "?simulation=2027-13")
    assert "Mois invalide" in bad.content.decode()


def test_entered_plan_is_a_preflight_warning_with_its_link(client, ctx):
    stay, heb, mutsan = ctx["stay"], ctx["heb"], ctx["mutsan"]
    plan = AidPlan.objects.create(stay=stay, payer=mutsan, product=heb, rate=D("40.00"), valid_from=stay.entry_date)
    period = BillingPeriod.objects.create(section=stay.section, start=date(2027, 4, 1), end=date(2027, 4, 30),
                                          accounting_date=date(2027, 4, 30), label="avril 2027 test")
    warnings = [c for c in period_checks(period=period) if "plan d'aide" in c.message]
    assert len(warnings) == 1 and warnings[0].level == "warning"
    assert stay.resident.full_name in warnings[0].message and "MUTSAN" in warnings[0].message
    assert warnings[0].link == url("aid-plan-edit", plan_pk=plan.pk)
    plan.status = AidPlan.Status.VALIDATED
    plan.save()
    assert not [c for c in period_checks(period=period) if "plan d'aide" in c.message]


def test_readers_clerks_and_other_sections_are_refused(client, ctx):
    stay, heb, mutsan = ctx["stay"], ctx["heb"], ctx["mutsan"]
    plan = AidPlan.objects.create(stay=stay, payer=mutsan, product=heb, rate=D("40.00"), valid_from=stay.entry_date)
    for login in ("direction", "tilleuls"):
        client.login(username=login, password="demo")
        assert client.get(url("aid-plans", pk=mutsan.pk)).status_code == 200
        assert client.get(url("aid-plan-edit", plan_pk=plan.pk)).status_code == 200
        assert client.get(url("aid-plan-create") + f"?stay={stay.pk}").status_code == 403
        assert client.post(url("aid-plan-edit", plan_pk=plan.pk), {**PLAN, "rate": "1.00"}).status_code == 403
        assert client.post(url("aid-plan-validate", plan_pk=plan.pk)).status_code == 403
    # A user of another section: TIL-HP is a 404; through their own section, the plan is a 404 too.
    client.login(username="verger", password="demo")
    assert client.get(url("aid-plan-edit", plan_pk=plan.pk)).status_code == 404
    assert client.get(url("aid-plans", pk=mutsan.pk)).status_code == 404
    ver_manager = UserFactory(username="ver-resp")
    SectionAccessFactory(user=ver_manager, section=Section.objects.get(alias="VER-HP"), role=SectionAccess.Role.MANAGER)
    client.force_login(ver_manager)
    assert client.get(url("aid-plan-edit", alias="VER-HP", plan_pk=plan.pk)).status_code == 404
    assert client.post(url("aid-plan-validate", alias="VER-HP", plan_pk=plan.pk)).status_code == 404
    assert client.get(url("aid-plans", alias="VER-HP", pk=mutsan.pk)).content.decode().count("data-plan=") == 0
    # Choices are validated against the scope: a TIL-HP stay or product posted through VER-HP is refused.
    response = client.post(url("aid-plan-create", alias="VER-HP"), {**PLAN, "stay": stay.pk, "payer": mutsan.pk,
                                                                     "product": heb.pk})
    page = response.content.decode()
    assert response.status_code == 200 and "Sélectionnez un choix valide" in page
    ver_heb = Product.objects.get(establishment=ctx["ver_stay"].section.establishment, code="HEB")
    response = client.post(url("aid-plan-create", alias="VER-HP"), {
        **PLAN, "stay": ctx["ver_stay"].pk, "payer": mutsan.pk, "product": heb.pk})
    assert "Sélectionnez un choix valide" in response.content.decode()
    assert AidPlan.objects.count() == 1
    plan.refresh_from_db()
    assert plan.status == AidPlan.Status.ENTERED and plan.rate == D("40.00")
    assert ver_heb.pk != heb.pk


def test_bad_values_are_refused_in_french_naming_field_and_value(client, ctx):
    stay, heb, mutsan = ctx["stay"], ctx["heb"], ctx["mutsan"]
    client.login(username="responsable", password="demo")
    data = {**PLAN, "stay": stay.pk, "payer": mutsan.pk, "product": heb.pk, "coverage_percent": "120",
            "monthly_cap_units": "-1", "valid_to": "2025-01-01", "valid_from": "2026-01-01"}
    page = client.post(url("aid-plan-create"), data).content.decode()
    assert "Le taux doit être compris entre 0 et 100 (saisi : 120" in page
    assert "Le plafond ne peut pas être négatif (saisi : -1" in page
    assert "La fin de validité (01/01/2025) précède le début (01/01/2026)" in page
    assert not AidPlan.objects.exists()
    AidPlan.objects.create(stay=stay, payer=mutsan, product=heb, rate=D("40.00"), valid_from=stay.entry_date)
    page = client.post(url("aid-plan-create"), {**PLAN, "stay": stay.pk, "payer": mutsan.pk, "product": heb.pk,
                                                "valid_from": f"{max(stay.entry_date, date(2026, 1, 1)):%Y-%m-%d}"}
                       ).content.decode()
    assert "chevauche le plan MUTSAN" in page
    other_group = Payer.objects.get(code="CD69").groups.first()
    page = client.post(url("aid-plan-create"), {**PLAN, "stay": stay.pk, "payer": mutsan.pk, "product": heb.pk,
                                                "group": other_group.pk, "valid_from": "2030-01-01"}).content.decode()
    assert "Sélectionnez un choix valide" in page  # a group of another payer
    assert AidPlan.objects.count() == 1


def test_a_validated_plan_changed_in_the_admin_must_be_validated_again(client, ctx):
    from payers.services.aid_plans import aid_plan_save, aid_plan_validate
    from tests.factories import UserFactory as Users

    stay, heb, mutsan = ctx["stay"], ctx["heb"], ctx["mutsan"]
    plan = aid_plan_save(plan=AidPlan(stay=stay, payer=mutsan, product=heb, valid_from=stay.entry_date,
                                      rate=D("40.00"), coverage_percent=D("100"), billing_mode="plan_rate"))
    admin_user = Users(username="root-admin", is_staff=True, is_superuser=True)
    aid_plan_validate(plan=plan, user=admin_user)
    client.force_login(admin_user)
    change = reverse("admin:payers_aidplan_change", args=[plan.pk])
    form = client.get(change).context["adminform"].form
    data = {name: ("" if form[name].value() is None else form[name].value()) for name in form.fields}
    client.post(change, {**data, "rate": "45.00"})
    plan.refresh_from_db()
    assert plan.rate == D("45.00") and plan.status == AidPlan.Status.ENTERED and plan.validated_at is None
