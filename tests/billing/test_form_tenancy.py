"""Tenancy in forms: every choice posted to a form is checked against the scoped queryset of the
section (and its association). Foreign ids — a payer, group, product, package, section, stay or
absence reason of another association — are refused; nothing is written."""
from datetime import date

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from billing.models import Package, Product, StayPackage
from billing.services import stays as stay_services
from payers.models import CoverageRule, Payer, PayerGroup, SocialAidDecision
from residents.models import Absence, AbsenceReason, Stay
from tests.factories import SectionFactory, StayFactory


@pytest.fixture
def site(demo_with_residents):
    """The demo association plus a foreign one with a payer, a group, a product, a package, a stay."""
    foreign_section = SectionFactory(alias="AUT-HP")
    establishment = foreign_section.establishment
    payer = Payer.objects.create(organisation=establishment.organisation, code="CD13", name="Département 13",
                                 kind="departement", departement="13")
    return {
        "stay": Stay.objects.filter(section__alias="TIL-HP").order_by("pk").first(),
        "payer": payer,
        "group": PayerGroup.objects.create(payer=payer, code="ASH", label="Aide sociale"),
        "product": Product.objects.create(establishment=establishment, code="HEBX", label="Hébergement",
                                          kind="accommodation", unit="day"),
        "package": Package.objects.create(section=foreign_section, code="STDX", label="Standard"),
        "section": foreign_section,
        "foreign_stay": StayFactory(section=foreign_section),
    }


def _errors(response) -> str:
    assert response.status_code == 200  # the form again, not a redirect
    return response.content.decode()


def test_stay_billing_forms_refuse_foreign_ids(client, site):
    client.login(username="tilleuls", password="demo")
    stay = site["stay"]
    url = reverse("billing:stay-billing", kwargs={"alias": "TIL-HP", "stay_pk": stay.pk})
    own = PayerGroup.objects.get(payer__code="CD69", code="ASH")
    aid = {"action": "social-aid", "payer": site["payer"].pk, "group": site["group"].pk, "decision_reference": "D",
           "valid_from": "2026-11-01", "monthly_resources": "1200.00", "housing_allowance": "0"}
    assert "Sélectionnez un choix valide" in _errors(client.post(url, aid))
    assert "Sélectionnez un choix valide" in _errors(client.post(url, {**aid, "payer": own.payer_id}))  # group
    coverage = {"action": "coverage", "payer": site["payer"].pk, "scope": "products", "mode": "percent",
                "value": "50", "valid_from": "2026-11-01", "priority": 10}
    assert "Sélectionnez un choix valide" in _errors(client.post(url, {**coverage, "group": site["group"].pk}))
    page = _errors(client.post(url, {**coverage, "payer": own.payer_id, "products": [site["product"].pk]}))
    assert "Sélectionnez un choix valide" in page
    page = _errors(client.post(url, {"action": "package", "package": site["package"].pk, "valid_from": "2026-11-01"}))
    assert "Sélectionnez un choix valide" in page
    assert not SocialAidDecision.objects.filter(stay=stay).exists()
    assert not CoverageRule.objects.filter(stay=stay, payer=site["payer"]).exists()
    assert not StayPackage.objects.filter(package=site["package"]).exists()


def test_services_refuse_a_foreign_payer_whatever_the_form(site):
    stay = site["stay"]
    decision = SocialAidDecision(stay=stay, payer=site["payer"], valid_from=date(2026, 11, 1))
    with pytest.raises(ValidationError, match="autre association"):
        stay_services.social_aid_decision_add(decision=decision)
    rule = CoverageRule(stay=stay, payer=site["payer"], scope="dependency", mode="percent", value=50,
                        valid_from=date(2026, 11, 1), priority=10)
    with pytest.raises(ValidationError, match="autre association"):
        stay_services.coverage_rule_add(rule=rule)


def test_resident_forms_refuse_foreign_ids(client, site):
    client.login(username="tilleuls", password="demo")
    stay = site["stay"]
    resident_pk = stay.resident_id
    url = reverse("residents:transfer", kwargs={"alias": "TIL-HP", "pk": resident_pk, "stay_pk": stay.pk})
    page = _errors(client.post(url, {"target_section": site["section"].pk, "transfer_date": "2026-06-01"}))
    assert "Sélectionnez un choix valide" in page
    url = reverse("residents:absence-add", kwargs={"alias": "TIL-HP", "pk": resident_pk})
    own_reason = AbsenceReason.objects.filter(establishment=stay.section.establishment).first()
    page = _errors(client.post(url, {"stay": site["foreign_stay"].pk, "reason": own_reason.pk,
                                     "first_day": "2026-06-01", "last_day": "2026-06-03"}))
    assert "Sélectionnez un choix valide" in page
    assert not Absence.objects.filter(stay=site["foreign_stay"]).exists()
