"""Home section tree, section URLs and the manager settings pages (section, establishment, association)."""
import pytest
from django.forms.models import model_to_dict
from django.urls import reverse

from structures import crypto
from structures.forms import EstablishmentForm, OrganisationForm, SectionForm
from structures.models import Establishment, Organisation, OrganisationAdministrator, Section, SectionAccess
from tests.factories import SectionAccessFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def manager(demo):
    """Responsable of TIL-HP only."""
    user = UserFactory(username="chef-til")
    SectionAccessFactory(user=user, section=demo["sections"]["TIL-HP"], role=SectionAccess.Role.MANAGER)
    return user


@pytest.fixture
def org_admin(demo):
    """Administrator of the association, reader of TIL-HP (no section role needed)."""
    user = UserFactory(username="admin-asso")
    SectionAccessFactory(user=user, section=demo["sections"]["TIL-HP"], role=SectionAccess.Role.READER)
    OrganisationAdministrator.objects.create(user=user, organisation=demo["organisation"])
    return user


def form_data(form_class, instance, **changes):
    """POST data for ``form_class`` holding the current values of ``instance``."""
    fields = [f for f in form_class._meta.fields if f != "logo"]
    data = {k: ("" if v is None else v) for k, v in model_to_dict(instance, fields=fields).items()}
    data.update(changes)
    return {k: v for k, v in data.items() if v is not False}  # unchecked boxes are absent


# --- home and section URLs --------------------------------------------------------------------
def test_home_lists_only_granted_sections(client, demo):
    client.force_login(demo["users"]["tilleuls"])
    response = client.get(reverse("home"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-alias="TIL-HP"' in html and 'data-alias="TIL-HT"' in html
    assert 'data-alias="VER-HP"' not in html and 'data-alias="VER-AJ"' not in html
    assert "EHPAD Les Tilleuls" in html and "EHPAD Le Verger" not in html
    tree = response.context["tree"]
    assert [o.name for o in tree] == ["Les Quatre Saisons"]
    assert [e.code for e in tree[demo["organisation"]]] == ["TIL"]


def test_home_tree_for_a_reader_everywhere(client, demo):
    client.force_login(demo["users"]["direction"])
    html = client.get(reverse("home")).content.decode()
    for alias in ("TIL-HP", "TIL-HT", "VER-HP", "VER-AJ"):
        assert f'data-alias="{alias}"' in html
    assert "EHPAD Les Tilleuls" in html and "EHPAD Le Verger" in html


def test_home_with_a_single_section_shows_its_dashboard(client, manager):
    # The home page is the tableau de bord (it used to redirect a one-section user to the residents).
    client.force_login(manager)
    response = client.get(reverse("home"))
    assert response.status_code == 200
    assert [card.section.alias for card in response.context["board"].cards] == ["TIL-HP"]


def test_home_without_sections_explains(client, demo):
    client.force_login(UserFactory(username="personne"))
    response = client.get(reverse("home"))
    assert response.status_code == 200
    assert "Aucune section ne vous est attribuée" in response.content.decode()


def test_home_needs_login(client, demo):
    response = client.get(reverse("home"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_section_home_of_another_establishment_is_404(client, demo):
    client.force_login(demo["users"]["tilleuls"])
    assert client.get("/s/VER-HP/").status_code == 404
    assert client.get("/s/INCONNUE/").status_code == 404
    response = client.get("/s/TIL-HP/")
    assert response.status_code == 302
    assert response["Location"] == reverse("residents:list", kwargs={"alias": "TIL-HP"})


def test_header_section_picker_lists_only_granted_sections(client, demo):
    client.force_login(demo["users"]["verger"])
    html = client.get(reverse("home")).content.decode()
    assert '<option value="VER-HP"' in html and '<option value="TIL-HP"' not in html


# --- manager settings -------------------------------------------------------------------------
SETTINGS_URLS = ["section-settings", "establishment-settings", "organisation-settings"]


@pytest.mark.parametrize("name", SETTINGS_URLS)
@pytest.mark.parametrize("login", ["tilleuls", "direction"])
def test_clerk_and_reader_get_403_on_settings(client, demo, name, login):
    client.force_login(demo["users"][login])
    url = reverse(name, kwargs={"alias": "TIL-HP"})
    assert client.get(url).status_code == 403
    assert client.post(url, {"name": "Piraté"}).status_code == 403
    assert not Section.objects.filter(name="Piraté").exists()
    assert not Establishment.objects.filter(name="Piraté").exists()
    assert not Organisation.objects.filter(name="Piraté").exists()


@pytest.mark.parametrize("name", SETTINGS_URLS)
def test_manager_of_one_section_gets_404_elsewhere(client, manager, name):
    client.force_login(manager)
    assert client.get(reverse(name, kwargs={"alias": "VER-HP"})).status_code == 404
    assert client.get(reverse(name, kwargs={"alias": "TIL-HT"})).status_code == 404


@pytest.mark.parametrize("name", SETTINGS_URLS[:2])
def test_manager_and_superuser_see_settings(client, demo, manager, name):
    for user in (manager, demo["users"]["admin"]):
        client.force_login(user)
        response = client.get(reverse(name, kwargs={"alias": "TIL-HP"}))
        assert response.status_code == 200
        assert 'name="name"' in response.content.decode()


def test_manager_edits_the_section(client, demo, manager):
    section = demo["sections"]["TIL-HP"]
    client.force_login(manager)
    url = reverse("section-settings", kwargs={"alias": "TIL-HP"})
    response = client.post(url, form_data(SectionForm, section, name="Hébergement permanent (UVP)",
                                          payment_due_days=30), follow=True)
    assert response.status_code == 200
    assert "Paramètres enregistrés." in response.content.decode()
    section.refresh_from_db()
    assert (section.name, section.payment_due_days) == ("Hébergement permanent (UVP)", 30)


def test_manager_edits_the_establishment(client, demo, manager):
    establishment = demo["establishments"]["TIL"]
    client.force_login(manager)
    url = reverse("establishment-settings", kwargs={"alias": "TIL-HP"})
    response = client.post(url, form_data(EstablishmentForm, establishment, sender_name="Facturation TIL",
                                          departement="2A"))
    assert response.status_code == 302 and response["Location"] == url
    establishment.refresh_from_db()
    assert (establishment.sender_name, establishment.departement) == ("Facturation TIL", "2A")


def test_org_admin_sets_the_smtp_password_encrypted_and_never_shown(client, demo, org_admin):
    organisation = demo["organisation"]
    client.force_login(org_admin)
    url = reverse("organisation-settings", kwargs={"alias": "TIL-HP"})
    secret = "S3cret-Mot-de-passe!"
    response = client.post(url, form_data(OrganisationForm, organisation, smtp_host="smtp.office365.com",
                                          smtp_port=587, smtp_security="starttls",
                                          smtp_username="factu@quatre-saisons.example", smtp_password=secret))
    assert response.status_code == 302
    organisation.refresh_from_db()
    assert organisation.smtp_host == "smtp.office365.com"
    token = organisation.smtp_password_encrypted
    assert token and secret not in token
    assert crypto.decrypt(token) == secret
    assert organisation.smtp_password == secret

    html = client.get(url).content.decode()
    assert secret not in html and token not in html
    assert 'name="smtp_password"' in html and 'type="password"' in html

    # An empty password field keeps the stored one.
    client.post(url, form_data(OrganisationForm, organisation, smtp_username="autre@quatre-saisons.example",
                               mail_pause_every=5))
    organisation.refresh_from_db()
    assert organisation.smtp_username == "autre@quatre-saisons.example"
    assert organisation.smtp_password == secret


def test_smtp_password_not_in_audit_log(client, demo, org_admin):
    from auditlog.models import LogEntry

    organisation = demo["organisation"]
    client.force_login(org_admin)
    client.post(reverse("organisation-settings", kwargs={"alias": "TIL-HP"}),
                form_data(OrganisationForm, organisation, smtp_password="tres-secret"))
    entries = LogEntry.objects.get_for_object(organisation)
    assert entries.exists()
    for entry in entries:
        assert "smtp_password_encrypted" not in (entry.changes_dict or {})
        assert "tres-secret" not in str(entry.changes)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("siret", "12345678901234", "SIRET invalide : « 12345678901234 » (14 chiffres, clé de Luhn)."),
        ("finess", "69000", "FINESS invalide : « 69000 » (9 caractères)."),
        ("departement", "99", "Code de département invalide."),
        ("departement", "", "Ce champ est obligatoire."),
        ("creditor_id", "FR00ZZZ123456", "ICS invalide : « FR00ZZZ123456 »."),
        ("sender_email", "pas-une-adresse", "Saisissez une adresse de courriel valide."),
    ],
)
def test_establishment_validation_messages_in_french(client, demo, manager, field, value, message):
    establishment = demo["establishments"]["TIL"]
    client.force_login(manager)
    response = client.post(reverse("establishment-settings", kwargs={"alias": "TIL-HP"}),
                           form_data(EstablishmentForm, establishment, **{field: value}))
    assert response.status_code == 200
    assert response.context["form"].errors[field] == [message]
    assert message.replace("'", "&#x27;") in response.content.decode()
    establishment.refresh_from_db()
    assert getattr(establishment, field) != value


def test_organisation_siret_validation_in_french(client, demo, org_admin):
    organisation = demo["organisation"]
    client.force_login(org_admin)
    response = client.post(reverse("organisation-settings", kwargs={"alias": "TIL-HP"}),
                           form_data(OrganisationForm, organisation, siret="78467169500088"))
    assert response.status_code == 200
    assert response.context["form"].errors["siret"] == [
        "SIRET invalide : « 78467169500088 » (14 chiffres, clé de Luhn)."]


def test_section_validation_in_french(client, demo, manager):
    section = demo["sections"]["TIL-HP"]
    client.force_login(manager)
    response = client.post(reverse("section-settings", kwargs={"alias": "TIL-HP"}),
                           form_data(SectionForm, section, kind="inconnu", payment_due_days="-3"))
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert errors["kind"] == ["Sélectionnez un choix valide. inconnu n’en fait pas partie."]
    assert "supérieure ou égale à 0" in errors["payment_due_days"][0]
