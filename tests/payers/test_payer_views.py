"""Payer files in the app: list and file scoped to the association of the URL's section, writes for
the section's managers only (404 for another association's payer, 403 for readers and clerks)."""
from decimal import Decimal

import pytest
from django.urls import reverse

from payers.models import Payer, PayerGroup
from tests.factories import OrganisationFactory


@pytest.fixture
def payers(demo):
    org = demo["organisation"]
    other = Payer.objects.create(organisation=OrganisationFactory(), code="CD13", name="Bouches-du-Rhône",
                                 kind="departement", departement="13")
    return {"cd69": Payer.objects.get(organisation=org, code="CD69"), "other": other}


def url(name, alias="TIL-HP", **kwargs):
    return reverse(f"payers:{name}", kwargs={"alias": alias, **kwargs})


def test_list_shows_the_association_payers_only_with_a_warning_for_no_email(client, payers):
    Payer.objects.filter(code="CARSAT").update(email="")
    client.login(username="direction", password="demo")
    page = client.get(url("list")).content.decode()
    assert "CD69" in page and "MUTSAN" in page
    assert "CD13" not in page
    assert page.count("aucune adresse e-mail") == 1  # CARSAT only


def test_another_associations_payer_is_a_404(client, payers):
    client.login(username="responsable", password="demo")
    other = payers["other"]
    assert client.get(url("detail", pk=other.pk)).status_code == 404
    assert client.post(url("edit", pk=other.pk), {"code": "X", "name": "X", "kind": "other"}).status_code == 404
    assert client.post(url("note-add", pk=other.pk), {"text": "fuite"}).status_code == 404
    assert client.get(reverse("billing:payer-statements", kwargs={"alias": "TIL-HP", "pk": other.pk})).status_code == 404
    assert not other.notes.exists()


def test_a_section_not_granted_is_a_404(client, payers):
    client.login(username="verger", password="demo")
    assert client.get(url("detail", pk=payers["cd69"].pk)).status_code == 404
    assert client.get(url("detail", alias="VER-HP", pk=payers["cd69"].pk)).status_code == 200


@pytest.mark.parametrize("login", ["direction", "tilleuls"])
def test_readers_and_clerks_may_read_but_not_change(client, payers, login):
    cd69 = payers["cd69"]
    client.login(username=login, password="demo")
    for tab in ["definition", "settings", "groups", "payments", "notes"]:
        assert client.get(url("detail", pk=cd69.pk) + f"?tab={tab}").status_code == 200
    assert client.get(url("edit", pk=cd69.pk)).status_code == 403
    assert client.post(url("edit", pk=cd69.pk), {"code": "CD69", "name": "Piraté", "kind": "other"}).status_code == 403
    assert client.post(url("settings", pk=cd69.pk), {"statement_mode": "individual"}).status_code == 403
    assert client.post(url("group-add", pk=cd69.pk), {"code": "X", "label": "X"}).status_code == 403
    group = cd69.groups.get(code="APA")
    assert client.post(url("group-delete", pk=cd69.pk, group_pk=group.pk)).status_code == 403
    assert client.post(url("note-add", pk=cd69.pk), {"text": "x"}).status_code == 403
    assert client.post(url("create"), {"code": "NEW", "name": "Nouveau", "kind": "other"}).status_code == 403
    cd69.refresh_from_db()
    assert cd69.name == "Département du Rhône" and cd69.statement_mode == "global"
    assert PayerGroup.objects.filter(pk=group.pk).exists() and not cd69.notes.exists()


def test_manager_edits_definition_settings_groups_and_notes(client, payers):
    cd69 = payers["cd69"]
    client.login(username="responsable", password="demo")
    response = client.post(url("edit", pk=cd69.pk), {
        "code": "CD69", "name": "Métropole et Rhône", "kind": "departement", "departement": "69",
        "siret": "226 900 014 00018", "address": "29 cours de la Liberté", "postal_code": "69003", "city": "Lyon",
        "email": "", "accounting_account": "4112CD69"})
    assert response.status_code == 302
    cd69.refresh_from_db()
    assert (cd69.name, cd69.siret, cd69.email) == ("Métropole et Rhône", "22690001400018", "")
    page = client.get(url("detail", pk=cd69.pk)).content.decode()
    assert "aucune adresse e-mail" in page
    response = client.post(url("settings", pk=cd69.pk), {"statement_mode": "individual", "paid_to_beneficiary": "",
                                                        "apa_dotation_globale": "on", "pocket_money_minimum": "130.00"})
    assert response.status_code == 302
    cd69.refresh_from_db()
    assert cd69.statement_mode == "individual" and cd69.pocket_money_minimum == Decimal("130.00")
    assert cd69.apa_dotation_globale and not cd69.paid_to_beneficiary
    assert client.post(url("group-add", pk=cd69.pk), {"code": "heb", "label": "Hébergement"}).status_code == 302
    assert cd69.groups.filter(code="HEB", label="Hébergement").exists()
    # a duplicate code is refused in French on the field
    page = client.post(url("group-add", pk=cd69.pk), {"code": "HEB", "label": "Autre"}).content.decode()
    assert "existe déjà pour ce payeur" in page
    group = cd69.groups.get(code="HEB")
    assert client.post(url("group-edit", pk=cd69.pk, group_pk=group.pk), {"code": "HEB", "label": "Hébergt"}).status_code == 302
    group.refresh_from_db()
    assert group.label == "Hébergt"
    assert client.post(url("group-delete", pk=cd69.pk, group_pk=group.pk)).status_code == 302
    assert not PayerGroup.objects.filter(pk=group.pk).exists()
    client.post(url("note-add", pk=cd69.pk), {"text": "Appelé le service APA"})
    client.post(url("note-add", pk=cd69.pk), {"text": "Relance envoyée"})
    notes = list(cd69.notes.values_list("text", flat=True))
    assert notes == ["Relance envoyée", "Appelé le service APA"]  # newest first
    page = client.get(url("detail", pk=cd69.pk) + "?tab=notes").content.decode()
    assert page.index("Relance envoyée") < page.index("Appelé le service APA") and "responsable" in page


def test_bad_siret_and_duplicate_code_are_refused_in_french(client, payers):
    cd69 = payers["cd69"]
    client.login(username="responsable", password="demo")
    page = client.post(url("edit", pk=cd69.pk), {"code": "CD01", "name": "X", "kind": "departement",
                                                 "siret": "1234"}).content.decode()
    assert "déjà celui d&#x27;un autre payeur" in page or "déjà celui d'un autre payeur" in page
    assert "doit compter 14 chiffres" in page
    cd69.refresh_from_db()
    assert cd69.code == "CD69"


def test_a_group_used_by_a_coverage_rule_is_kept(client, payers, demo_with_residents):
    from payers.models import CoverageRule

    rule = CoverageRule.objects.filter(payer__code="CD69", group__isnull=False).first()
    if rule is None:
        pytest.skip("no demo rule")
    client.login(username="responsable", password="demo")
    response = client.post(url("group-delete", pk=rule.payer_id, group_pk=rule.group_id), follow=True)
    assert "ne peut pas être supprimé" in response.content.decode()
    assert PayerGroup.objects.filter(pk=rule.group_id).exists()


def test_manager_creates_a_payer_in_the_association(client, payers, demo):
    client.login(username="responsable", password="demo")
    response = client.post(url("create"), {"code": "mgen", "name": "MGEN", "kind": "mutual"})
    assert response.status_code == 302
    assert Payer.objects.get(organisation=demo["organisation"], code="MGEN").name == "MGEN"


def test_demo_cd01_sends_individual_statements_and_mutsan_global(payers):
    assert Payer.objects.get(code="CD01").statement_mode == "individual"
    assert Payer.objects.get(code="MUTSAN").statement_mode == "global"
