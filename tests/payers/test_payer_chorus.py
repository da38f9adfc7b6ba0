"""Chorus Pro settings of a payer from its file (Paramétrage): saved by a manager, shown on the file,
refused in French on the field without a valid SIRET or with a mandatory engagement left empty."""
import pytest
from django.urls import reverse

from payers.models import Payer

pytestmark = pytest.mark.django_db


def _url(name, pk):
    return reverse(f"payers:{name}", kwargs={"alias": "TIL-HP", "pk": pk})


def _settings(**extra):
    return {"statement_mode": "global", "paid_to_beneficiary": "", "apa_dotation_globale": "on",
            "pocket_money_minimum": "", **extra}


def test_manager_sets_chorus_pro_and_refusals_name_the_field(client, demo):
    carsat = Payer.objects.get(organisation=demo["organisation"], code="CARSAT")
    client.login(username="responsable", password="demo")
    page = client.post(_url("settings", carsat.pk), _settings(chorus_pro="on")).content.decode()
    assert "renseignez d&#x27;abord le SIRET" in page or "renseignez d'abord le SIRET" in page
    Payer.objects.filter(pk=carsat.pk).update(siret="78467169500088")
    page = client.post(_url("settings", carsat.pk), _settings(chorus_pro="on")).content.decode()
    assert "SIRET « 78467169500088 » du payeur est invalide" in page
    Payer.objects.filter(pk=carsat.pk).update(siret="22690001700014")
    page = client.post(_url("settings", carsat.pk), _settings(chorus_pro="on", chorus_engagement_required="on")
                       ).content.decode()
    assert "Le numéro d&#x27;engagement est obligatoire" in page or "Le numéro d'engagement est obligatoire" in page
    response = client.post(_url("settings", carsat.pk), _settings(
        chorus_pro="on", chorus_service_code=" SRV-12 ", chorus_engagement_number="EJ-1", facturx_profile="basic"))
    assert response.status_code == 302
    carsat.refresh_from_db()
    assert (carsat.chorus_pro, carsat.chorus_service_code, carsat.chorus_engagement_number,
            carsat.facturx_profile) == (True, "SRV-12", "EJ-1", "basic")
    page = client.get(_url("detail", carsat.pk) + "?tab=settings").content.decode()
    assert "SRV-12" in page and "EJ-1" in page and "profil BASIC" in page


def test_a_reader_cannot_change_the_chorus_settings(client, demo):
    ain = Payer.objects.get(organisation=demo["organisation"], code="CD01")
    client.login(username="direction", password="demo")
    response = client.post(_url("settings", ain.pk), _settings(chorus_service_code="PIRATE"))
    assert response.status_code in (403, 404)
    ain.refresh_from_db()
    assert ain.chorus_service_code == "DGAS-APA"
