"""*Rôles PES (Hélios)* screens: reachable from the accounting and period pages of a public
establishment; readers see and simulate (nothing stored), managers save the settings, generate the
flow and import the acknowledgement; a *lecture* or *facturation* user posting: 403; another
establishment's period or rôle, or a private establishment: 404."""
from datetime import date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from billing.models import PesRole, PesSettings
from billing.services import pes as services
from billing.services.periods import period_create
from core import pes
from tests.billing.test_pes import _acquit, verger  # noqa: F401  (fixture)
from tests.factories import SectionAccessFactory, SectionFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def users(verger):  # noqa: F811
    found = {}
    for role in ("reader", "clerk", "manager"):
        found[role] = UserFactory(username=f"pes-{role}")
        SectionAccessFactory(user=found[role], section=verger["section"], role=role)
    return found


def _url(name, alias="VER-HP", **kwargs):
    return reverse(f"billing:{name}", kwargs={"alias": alias, **kwargs})


def test_links_from_accounting_and_period_pages(client, verger, users):  # noqa: F811
    client.force_login(users["reader"])
    page = client.get(_url("accounting")).content.decode()
    assert _url("pes") in page
    page = client.get(_url("period-detail", period_pk=verger["period"].pk)).content.decode()
    assert _url("pes-period", period_pk=verger["period"].pk) in page
    page = client.get(_url("pes")).content.decode()
    assert "Paramètres PES" in page and _url("pes-period", period_pk=verger["period"].pk) in page


def test_reader_simulates_without_storing(client, verger, users):  # noqa: F811
    client.force_login(users["reader"])
    response = client.get(_url("pes-period", period_pk=verger["period"].pk) + "?simuler=1")
    page = response.content.decode()
    assert "Simulation (rien n'est enregistré)" in page and "Le fichier respecte les règles du PES." in page
    assert "2026017" in page and "VER-RUM-0001" in page
    content = client.get(_url("pes-simulation-file", period_pk=verger["period"].pk)).content
    assert pes.pes_check(content) == []
    assert not PesRole.objects.exists()
    assert client.post(_url("pes-generate", period_pk=verger["period"].pk)).status_code == 403


def test_manager_generates_downloads_and_imports_the_acquit(client, verger, users):  # noqa: F811
    client.force_login(users["clerk"])
    assert client.post(_url("pes-generate", period_pk=verger["period"].pk)).status_code == 403
    client.force_login(users["manager"])
    response = client.post(_url("pes-generate", period_pk=verger["period"].pk))
    role = PesRole.objects.get()
    assert response.url == _url("pes-role", pk=role.pk)
    page = client.get(response.url).content.decode()
    assert role.nom_fic in page and "2026017 · 2W" in page
    download = client.get(_url("pes-role-file", pk=role.pk) + "?regenerer=1")
    assert download.content == bytes(role.content)
    assert download["Content-Disposition"] == f'attachment; filename="{role.nom_fic}"'
    # Again: nothing left to send, a French message.
    response = client.post(_url("pes-generate", period_pk=verger["period"].pk), follow=True)
    assert "Aucune facture émise de la période" in response.content.decode()
    client.force_login(users["clerk"])
    upload = SimpleUploadedFile("acquit.xml", _acquit(False), content_type="application/xml")
    assert client.post(_url("pes-acquit"), {"file": upload}).status_code == 403
    client.force_login(users["manager"])
    upload = SimpleUploadedFile("acquit.xml", _acquit(False), content_type="application/xml")
    response = client.post(_url("pes-acquit"), {"file": upload}, follow=True)
    role.refresh_from_db()
    assert role.status == PesRole.Status.REJECTED
    assert "Rôle n° 12 rejeté : 402 Compte nature 73532 inconnu" in response.content.decode()


def test_settings_form(client, verger, users):  # noqa: F811
    data = {"id_post": "057011", "id_coll": "26570001200018", "fin_jur": "570000018", "cod_col": "123",
            "cod_bud": "01", "libelle_col_bud": "EHPAD", "sigle": "SEJOUR", "first_role_number": "12",
            "objet_template": "Frais de séjour {mois}", "edition": "", "per_encoding": "first_char",
            "per_fixed": "1", "asp_delay_days": "0", "debit_delay_days": "15", "debit_label": "SEJOUR {mois}",
            "product_codes": '{"accommodation": "HEB"}', "tiers_codes": '{"departement": "22/09/01"}',
            "pj_type": "007"}
    client.force_login(users["clerk"])
    assert client.post(_url("pes-settings"), data).status_code == 403
    client.force_login(users["manager"])
    bad = {**data, "fin_jur": "", "cod_col": "12", "tiers_codes": '{"departement": "99/09/01"}',
           "product_codes": '{"accommodation": "HEBERG"}'}
    page = client.post(_url("pes-settings"), bad).content.decode()
    assert "3 chiffres." in page and "Ce champ est obligatoire." in page
    assert "Codes de « departement » : « 99/09/01 » n&#x27;est pas CatTiers/NatJur/TypTiers" in page
    assert "Code produit de « accommodation » : « HEBERG » doit faire 1 à 4 caractères." in page
    assert client.post(_url("pes-settings"), {**data, "cod_bud": "02"}).status_code == 302
    assert PesSettings.objects.get().cod_bud == "02"


def test_scoping_and_private_establishments(client, verger, users):  # noqa: F811
    role = services.role_generate(period=verger["period"], on=date(2026, 4, 2))
    other = SectionFactory(alias="AUT-PUB", establishment__legal_status="public")
    other_period = period_create(section=other, start=date(2026, 3, 1))
    private = SectionFactory(alias="PRIV")
    private_period = period_create(section=private, start=date(2026, 3, 1))
    SectionAccessFactory(user=users["manager"], section=private, role="manager")
    SectionAccessFactory(user=users["manager"], section=other, role="manager")
    client.force_login(users["manager"])
    assert client.get(_url("pes-period", period_pk=other_period.pk)).status_code == 404
    assert client.get(_url("pes-role", alias="AUT-PUB", pk=role.pk)).status_code == 404
    assert client.get(_url("pes-role-file", alias="AUT-PUB", pk=role.pk)).status_code == 404
    assert client.post(_url("pes-generate", alias="AUT-PUB", period_pk=verger["period"].pk)).status_code == 404
    assert client.get(_url("pes", alias="PRIV")).status_code == 404
    assert client.get(_url("pes-period", alias="PRIV", period_pk=private_period.pk)).status_code == 404
    assert _url("pes", alias="PRIV") not in client.get(_url("accounting", alias="PRIV")).content.decode()
    # A user of another section only: 404 on Le Verger's pages.
    stranger = UserFactory(username="stranger")
    SectionAccessFactory(user=stranger, section=other, role="manager")
    client.force_login(stranger)
    assert client.get(_url("pes")).status_code == 404
    assert client.get(_url("pes-role-file", pk=role.pk)).status_code == 404
    # An acquit naming Le Verger's rôle, uploaded from another establishment, does not touch it.
    upload = SimpleUploadedFile("acquit.xml", _acquit(True), content_type="application/xml")
    response = client.post(_url("pes-acquit", alias="AUT-PUB"), {"file": upload}, follow=True)
    assert "aucun rôle n° 12 de l&#x27;exercice 2026" in response.content.decode()
    role.refresh_from_db()
    assert role.status == PesRole.Status.GENERATED
