from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from billing.models import Package, StayPackage
from payers.models import CoverageRule, PayerGroup
from residents.models import Stay


@pytest.fixture
def stay(demo_with_residents):
    return Stay.objects.filter(section__alias="TIL-HP").order_by("pk").first()


def test_clerk_assigns_package_and_apa_rule(client, stay):
    client.login(username="tilleuls", password="demo")
    url = reverse("billing:stay-billing", kwargs={"alias": "TIL-HP", "stay_pk": stay.pk})
    assert stay.resident.full_name in client.get(url).content.decode()
    tv = Package.objects.get(section__alias="TIL-HP", code="STD-TV")
    client.post(url, {"action": "package", "package": tv.pk, "valid_from": "2026-11-01"})
    assert StayPackage.objects.filter(stay=stay, package=tv, valid_from=date(2026, 11, 1)).exists()
    apa = PayerGroup.objects.get(payer__code="CD01", code="APA")
    CoverageRule.objects.filter(stay=stay).delete()
    response = client.post(url, {"action": "coverage", "payer": apa.payer_id, "group": apa.pk, "scope": "dependency",
                                 "mode": "above_talon", "value": "0", "valid_from": "2026-11-01", "priority": 10,
                                 "invoiced": "on"})
    assert response.status_code == 302
    assert CoverageRule.objects.get(stay=stay).payer.code == "CD01"


def test_bad_input_names_the_field(client, stay):
    client.login(username="tilleuls", password="demo")
    url = reverse("billing:stay-billing", kwargs={"alias": "TIL-HP", "stay_pk": stay.pk})
    other = Package.objects.get(section__alias="VER-HP", code="STD")
    page = client.post(url, {"action": "package", "package": other.pk, "valid_from": "2026-11-01"}).content.decode()
    assert "forfait" in page.lower() and "error" in page
    cd69 = PayerGroup.objects.get(payer__code="CD69", code="APA")
    before = CoverageRule.objects.count()
    page = client.post(url, {"action": "coverage", "payer": cd69.payer_id, "scope": "all", "mode": "percent",
                             "value": "150", "valid_from": "2026-11-01", "priority": 10}).content.decode()
    assert "Le pourcentage doit être compris entre 0 et 100 (saisi : 150" in page
    assert CoverageRule.objects.count() == before


def test_reader_and_other_sections_are_refused(client, stay):
    url = reverse("billing:stay-billing", kwargs={"alias": "TIL-HP", "stay_pk": stay.pk})
    client.login(username="direction", password="demo")
    assert client.get(url).status_code == 200
    assert client.post(url, {"action": "delete-rule", "rule": 1}).status_code == 403
    client.logout()
    client.login(username="verger", password="demo")
    assert client.get(url).status_code == 404
    assert client.get(reverse("billing:stay-billing", kwargs={"alias": "VER-HP", "stay_pk": stay.pk})).status_code == 404


def test_social_aid_decision_through_the_screen(client, stay):
    from payers.models import SocialAidDecision

    client.login(username="tilleuls", password="demo")
    url = reverse("billing:stay-billing", kwargs={"alias": "TIL-HP", "stay_pk": stay.pk})
    ash = PayerGroup.objects.get(payer__code="CD69", code="ASH")
    data = {"action": "social-aid", "payer": ash.payer_id, "group": ash.pk, "decision_reference": "D-1",
            "valid_from": "2026-11-01", "monthly_resources": "1200.00", "housing_allowance": "150.00"}
    assert client.post(url, data).status_code == 302
    assert SocialAidDecision.objects.get(stay=stay).monthly_resources == Decimal("1200.00")
    page = client.post(url, {**data, "decision_reference": "D-2"}).content.decode()
    assert "chevauche la décision" in page
    page = client.post(url, {**data, "valid_from": "2027-01-01", "monthly_resources": "-5"}).content.decode()
    assert "Les ressources ne peuvent pas être négatives" in page
    assert SocialAidDecision.objects.filter(stay=stay).count() == 1


def test_page_title_is_only_the_title(client, stay):
    """The <title> once held the whole social-aid form (an unclosed template block)."""
    import re

    client.login(username="tilleuls", password="demo")
    html = client.get(reverse("billing:stay-billing", kwargs={"alias": "TIL-HP", "stay_pk": stay.pk})).content.decode()
    title = re.search(r"<title>(.*?)</title>", html, re.S).group(1)
    assert "<" not in title and "Facturation du séjour" in title and stay.resident.full_name in title
    assert html.count('name="action" value="social-aid"') == 1
