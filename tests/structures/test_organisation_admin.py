"""Issue 9: the SMTP account belongs to the association. Only its administrators (or superusers)
see and change it and run the SMTP test; a section *responsable* gets 403. Changing the server,
port, security or login method erases the stored secrets; no login travels unencrypted to a
server that is not local."""
import pytest
from django.contrib.admin.sites import site as admin_site
from django.test import RequestFactory
from django.urls import reverse

from structures import access
from structures.forms import OrganisationForm
from structures.models import Organisation, OrganisationAdministrator, SectionAccess, is_local_host
from tests.factories import SectionAccessFactory, UserFactory

from .test_views import form_data

pytestmark = pytest.mark.django_db

SECRET = "Mot-de-passe-de-la-boite!"


@pytest.fixture
def section_manager(demo):
    user = UserFactory(username="chef-til", is_staff=True)
    SectionAccessFactory(user=user, section=demo["sections"]["TIL-HP"], role=SectionAccess.Role.MANAGER)
    return user


@pytest.fixture
def org_admin(demo):
    user = UserFactory(username="admin-asso")
    SectionAccessFactory(user=user, section=demo["sections"]["TIL-HP"], role=SectionAccess.Role.READER)
    OrganisationAdministrator.objects.create(user=user, organisation=demo["organisation"])
    return user


@pytest.fixture
def account(demo):
    organisation = demo["organisation"]
    organisation.smtp_host, organisation.smtp_port, organisation.smtp_security = "smtp.office365.com", 587, "starttls"
    organisation.smtp_username = "factu@quatre-saisons.example"
    organisation.smtp_password = SECRET
    organisation.smtp_oauth_client_secret = "secret-client"
    organisation.save()
    return Organisation.objects.get(pk=organisation.pk)


def test_section_manager_gets_403_on_association_settings_and_smtp_test(client, demo, section_manager, account):
    client.force_login(section_manager)
    settings_url = reverse("organisation-settings", kwargs={"alias": "TIL-HP"})
    test_url = reverse("mailing:smtp-test", kwargs={"alias": "TIL-HP"})
    assert client.get(settings_url).status_code == 403
    response = client.post(settings_url, form_data(OrganisationForm, account, smtp_host="smtp.pirate.example"))
    assert response.status_code == 403
    assert client.get(test_url).status_code == 403
    assert client.post(test_url, {"to": "chef@pirate.example"}).status_code == 403
    account.refresh_from_db()
    assert account.smtp_host == "smtp.office365.com" and account.smtp_password == SECRET
    from mailing.models import OutgoingMessage
    assert not OutgoingMessage.objects.exists()
    # The links to these pages are not offered either.
    page = client.get(reverse("section-settings", kwargs={"alias": "TIL-HP"})).content.decode()
    assert settings_url not in page


def test_section_manager_does_not_reach_the_association_in_the_admin(demo, section_manager):
    request = RequestFactory().get("/admin/")
    request.user = section_manager
    assert not admin_site._registry[Organisation].get_queryset(request).exists()
    assert not admin_site._registry[OrganisationAdministrator].has_add_permission(request)


def test_org_admin_and_superuser_see_and_change_the_settings(client, demo, org_admin, account):
    url = reverse("organisation-settings", kwargs={"alias": "TIL-HP"})
    for user in (org_admin, demo["users"]["admin"]):
        client.force_login(user)
        assert client.get(url).status_code == 200
        assert client.get(reverse("mailing:smtp-test", kwargs={"alias": "TIL-HP"})).status_code == 200
    client.force_login(org_admin)
    response = client.post(url, form_data(OrganisationForm, account, mail_pause_every=3))
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.mail_pause_every == 3 and account.smtp_password == SECRET
    # Another association's administrator is no administrator here.
    other = Organisation.objects.create(name="Autre")
    assert not access.is_organisation_admin(org_admin, other)


def test_org_admin_without_section_access_gets_404(client, demo, account):
    user = UserFactory(username="admin-sans-section")
    OrganisationAdministrator.objects.create(user=user, organisation=account)
    client.force_login(user)
    assert client.get(reverse("organisation-settings", kwargs={"alias": "TIL-HP"})).status_code == 404


@pytest.mark.parametrize(("field", "value"), [("smtp_host", "smtp.pirate.example"), ("smtp_port", 465),
                                              ("smtp_security", "ssl"), ("smtp_auth_method", "oauth2")])
def test_changing_the_endpoint_erases_the_secrets(client, demo, org_admin, account, field, value):
    client.force_login(org_admin)
    changes = {field: value}
    if field == "smtp_auth_method":
        changes.update(smtp_oauth_tenant_id="tenant", smtp_oauth_client_id="client")
    response = client.post(reverse("organisation-settings", kwargs={"alias": "TIL-HP"}),
                           form_data(OrganisationForm, account, **changes))
    assert response.status_code == 302
    account.refresh_from_db()
    assert getattr(account, field) == value
    assert account.smtp_password_encrypted == "" and account.smtp_oauth_client_secret_encrypted == ""


def test_new_endpoint_with_the_password_typed_again_keeps_it(client, demo, org_admin, account):
    client.force_login(org_admin)
    client.post(reverse("organisation-settings", kwargs={"alias": "TIL-HP"}),
                form_data(OrganisationForm, account, smtp_host="smtp.autre.example", smtp_password="nouveau"))
    account.refresh_from_db()
    assert account.smtp_host == "smtp.autre.example" and account.smtp_password == "nouveau"
    assert account.smtp_oauth_client_secret_encrypted == ""


def test_saving_the_model_elsewhere_erases_the_secrets_too(account):
    """The Django admin (or a shell) goes through the same rule as the page."""
    account.smtp_host = "smtp.pirate.example"
    account.save()
    account.refresh_from_db()
    assert account.smtp_password_encrypted == ""


def test_form_refuses_a_login_without_encryption_to_a_remote_server(client, demo, org_admin, account):
    client.force_login(org_admin)
    response = client.post(reverse("organisation-settings", kwargs={"alias": "TIL-HP"}),
                           form_data(OrganisationForm, account, smtp_security="none", smtp_port=25))
    assert response.status_code == 200
    [error] = response.context["form"].errors["smtp_security"]
    assert "circuleraient en clair vers « smtp.office365.com »" in error
    account.refresh_from_db()
    assert account.smtp_security == "starttls" and account.smtp_password == SECRET


@pytest.mark.parametrize(("host", "local"), [("localhost", True), ("127.0.0.1", True), ("127.8.9.10", True),
                                             ("::1", True), ("[::1]", True), ("LOCALHOST.", True),
                                             ("smtp.office365.com", False), ("10.0.0.5", False),
                                             ("localhost.pirate.example", False), ("", False)])
def test_is_local_host(host, local):
    assert is_local_host(host) is local


def test_blocked_sending_is_shown_on_the_home_page_and_the_campaign(client, demo, account):
    from django.utils import timezone

    from mailing.models import MailCampaign
    from mailing.services.outbox import message_queue

    Organisation.objects.filter(pk=account.pk).update(
        smtp_blocked_at=timezone.now(), smtp_blocked_reason="Identifiants refusés : Authentification refusée (535).")
    clerk = demo["users"]["tilleuls"]  # two sections: the home page lists them
    client.force_login(clerk)
    html = client.get(reverse("home")).content.decode()
    assert "Envoi des courriels suspendu pour Les Quatre Saisons." in html
    assert "Identifiants refusés : Authentification refusée (535)." in html and "Prévenez un administrateur" in html
    assert reverse("organisation-settings", kwargs={"alias": "TIL-HP"}) not in html

    campaign = MailCampaign.objects.create(organisation=account, section=demo["sections"]["TIL-HP"], label="Nov.")
    message_queue(organisation=account, campaign=campaign, section=campaign.section, sender_email="f@t.example",
                  recipients=["famille@example.org"], subject="Facture", body="Bonjour")
    page = client.get(reverse("mailing:campaign-detail", kwargs={"alias": "TIL-HP", "pk": campaign.pk}))
    assert "Identifiants refusés" in page.content.decode()

    client.force_login(demo["users"]["admin"])
    html = client.get(reverse("home")).content.decode()
    assert "/parametres/association/" in html and "Corriger les paramètres SMTP" in html

    Organisation.objects.filter(pk=account.pk).update(smtp_blocked_at=None, smtp_blocked_reason="")
    assert "suspendu" not in client.get(reverse("home")).content.decode()


def test_org_admin_sets_up_office365_oauth2(client, demo, org_admin, account):
    client.force_login(org_admin)
    url = reverse("organisation-settings", kwargs={"alias": "TIL-HP"})
    response = client.post(url, form_data(OrganisationForm, account, smtp_auth_method="oauth2"))
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert errors["smtp_oauth_tenant_id"] == errors["smtp_oauth_client_id"] == ["Obligatoire avec OAuth2 (Office 365)."]

    response = client.post(url, form_data(OrganisationForm, account, smtp_auth_method="oauth2",
                                          smtp_oauth_tenant_id="0f1e2d3c-tenant", smtp_oauth_client_id="a1b2-client",
                                          smtp_oauth_client_secret="secret~valeur-entra"))
    assert response.status_code == 302
    account.refresh_from_db()
    assert account.smtp_auth_method == "oauth2"
    assert account.smtp_oauth_client_secret == "secret~valeur-entra"
    assert "secret~valeur-entra" not in account.smtp_oauth_client_secret_encrypted
    assert account.smtp_password_encrypted == ""  # the method changed: the old password is gone
    html = client.get(url).content.decode()
    assert "secret~valeur-entra" not in html and 'name="smtp_oauth_client_secret"' in html
