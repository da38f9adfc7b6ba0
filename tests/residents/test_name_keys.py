"""Search ignores accents and case, lists sort names the French way — through the normalised key
columns maintained on save (and by bulk_create, and filled by the data migration)."""
import importlib
from datetime import date

import pytest
from django.apps import apps
from django.urls import reverse

from core.text import text_key
from residents.models import Relative, Resident
from tests.factories import ResidentFactory, StayFactory, UserFactory


def test_text_key():
    assert text_key("LEFÈVRE", "Émile") == "lefevre emile"
    assert text_key("D'ARÇY", "Jean-Noël") == "darcy jeannoel"
    assert text_key("Œuvray", "  Straße ") == "oeuvray strasse"
    assert text_key(None, "") == ""


@pytest.fixture
def named(demo):
    section = demo["sections"]["TIL-HP"]
    made = {}
    for last, first in [("LEFÈVRE", "Jeanne"), ("Zola", "Émile"), ("D'ARÇY", "Paul"), ("Dupont", "Éric"),
                        ("Dupont", "Eliane"), ("Étienne", "Marc"), ("Ebrard", "Lucie")]:
        resident = ResidentFactory(organisation=demo["organisation"], last_name=last, first_name=first)
        StayFactory(resident=resident, section=section, entry_date=date(2025, 1, 1))
        made[(last, first)] = resident
    return made


@pytest.fixture
def tilleuls(client, demo, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    client.login(username="tilleuls", password="demo")
    return client


def _names(client, **params):
    response = client.get(reverse("residents:list", kwargs={"alias": "TIL-HP"}), {"presence": "all", **params})
    return [f"{r.last_name} {r.first_name}" for r in response.context["object_list"]]


@pytest.mark.django_db
def test_app_search_ignores_accents_and_case(tilleuls, named):
    assert _names(tilleuls, q="lefevre") == ["LEFÈVRE Jeanne"]
    assert _names(tilleuls, q="LEFÈVRE") == ["LEFÈVRE Jeanne"]
    assert _names(tilleuls, q="darcy") == ["D'ARÇY Paul"]
    assert _names(tilleuls, q="emile") == ["Zola Émile"]
    assert _names(tilleuls, q="dupont eric") == ["Dupont Éric"]


@pytest.mark.django_db
def test_lists_sort_the_french_way(tilleuls, named):
    names = _names(tilleuls)
    assert names == ["D'ARÇY Paul", "Dupont Eliane", "Dupont Éric", "Ebrard Lucie", "Étienne Marc",
                     "LEFÈVRE Jeanne", "Zola Émile"]
    assert [str(r) for r in Resident.objects.filter(pk__in=[r.pk for r in named.values()])][:2] == [
        "D'ARÇY Paul", "DUPONT Eliane"]


@pytest.mark.django_db
def test_admin_search_ignores_accents_and_case(client, named, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    response = client.get(reverse("admin:residents_resident_changelist"), {"q": "lefevre"})
    assert [r.last_name for r in response.context["cl"].queryset] == ["LEFÈVRE"]
    response = client.get(reverse("admin:residents_stay_changelist"), {"q": "darcy"})
    assert [s.resident.last_name for s in response.context["cl"].queryset] == ["D'ARÇY"]


@pytest.mark.django_db
def test_keys_follow_saves_bulk_creates_and_the_data_migration(demo):
    resident = ResidentFactory(organisation=demo["organisation"], last_name="Lefèvre", first_name="Zoé")
    resident.last_name = "Müller"
    resident.save(update_fields=["last_name"])
    assert Resident.objects.get(pk=resident.pk).sort_key == "muller zoe"
    bulk = Relative.objects.bulk_create([Relative(resident=resident, last_name="Bécquer", first_name="Anaïs")])
    assert Relative.objects.get(pk=bulk[0].pk).search_key == "becquer anais"
    Resident.objects.update(sort_key="", search_key="")
    migration = importlib.import_module("residents.migrations.0004_name_keys")
    migration.fill_name_keys(apps, None)
    assert Resident.objects.get(pk=resident.pk).search_key == "muller zoe"
    assert not Resident.objects.filter(sort_key="").exists()
