"""Issue 10: Office 365 OAuth2 (XOAUTH2, client credentials with msal) as the association's SMTP
login method — against aiosmtpd with an XOAUTH2 handler and a fake token provider in place of
msal (msal itself is checked by mocking ``msal.ConfidentialClientApplication``)."""
import smtplib
from unittest import mock

import pytest
from django.core.cache import cache

from mailing.models import OutgoingMessage
from mailing.services import oauth
from mailing.services.explain import SendError, error_from_exception
from mailing.services.oauth import OAuthCredentials, oauth_token
from mailing.services.outbox import message_queue, outbox_run
from mailing.services.smtp_test import smtp_test

from .servers import FakeTokenProvider, SmtpServer, XOAuth2Handler

MAILBOX = "factures@quatre-saisons.example"
PROVIDER = FakeTokenProvider()
CREDENTIALS = OAuthCredentials("0f1e2d3c-tenant", "a1b2c3d4-client", "secret~valeur")


@pytest.fixture
def provider(settings):
    global PROVIDER
    PROVIDER = FakeTokenProvider()
    settings.MAIL_OAUTH_TOKEN_PROVIDER = f"{__name__}.PROVIDER"
    cache.clear()
    yield PROVIDER
    cache.clear()


@pytest.fixture
def office365(organisation, trust_test_ca, provider):
    """A STARTTLS server speaking XOAUTH2 only, and the association set up for OAuth2."""
    handler = XOAuth2Handler(tokens={MAILBOX: "jeton-1"})
    with SmtpServer(handler, starttls=trust_test_ca, auth_required=True) as server:
        organisation.smtp_port, organisation.smtp_security = server.port, "starttls"
        organisation.smtp_auth_method, organisation.smtp_username = "oauth2", MAILBOX
        organisation.smtp_oauth_tenant_id, organisation.smtp_oauth_client_id = "0f1e2d3c-tenant", "a1b2c3d4-client"
        organisation.smtp_oauth_client_secret = "secret~valeur"
        organisation.save()
        yield server


def _queue(organisation):
    return message_queue(organisation=organisation, sender_email=MAILBOX, recipients=["famille@example.org"],
                         subject="Facture", body="Bonjour")


# --- msal -------------------------------------------------------------------------------------------
def test_msal_is_called_with_the_tenant_authority_and_the_exchange_scope():
    with mock.patch("msal.ConfidentialClientApplication") as app_class:
        app_class.return_value.acquire_token_for_client.return_value = {"access_token": "t", "expires_in": 3599}
        result = oauth.msal_token(tenant_id="0f1e2d3c-tenant", client_id="a1b2c3d4-client",
                                  client_secret="secret~valeur", timeout=12)
    assert result == {"access_token": "t", "expires_in": 3599}
    app_class.assert_called_once_with("a1b2c3d4-client", client_credential="secret~valeur",
                                      authority="https://login.microsoftonline.com/0f1e2d3c-tenant", timeout=12)
    app_class.return_value.acquire_token_for_client.assert_called_once_with(
        scopes=["https://outlook.office365.com/.default"])


def test_default_provider_is_msal(settings):
    del settings.MAIL_OAUTH_TOKEN_PROVIDER
    assert oauth.token_provider() is oauth.msal_token


# --- token cache ------------------------------------------------------------------------------------
def test_token_is_cached_until_five_minutes_before_expiry_then_refreshed(provider):
    first = oauth_token(CREDENTIALS, now=1000.0)
    assert (first.access_token, first.from_cache, first.expires_at) == ("jeton-1", False, 1000.0 + 3599)
    again = oauth_token(CREDENTIALS, now=1000.0 + 3599 - 301)
    assert (again.access_token, again.from_cache) == ("jeton-1", True)
    assert len(provider.calls) == 1
    assert provider.calls[0] == {"tenant_id": "0f1e2d3c-tenant", "client_id": "a1b2c3d4-client",
                                 "client_secret": "secret~valeur", "timeout": 30}
    fresh = oauth_token(CREDENTIALS, now=1000.0 + 3599 - 299)
    assert (fresh.access_token, fresh.from_cache) == ("jeton-2", False)
    # Other credentials, other token.
    assert oauth_token(OAuthCredentials("t", "c", "autre"), now=1000.0).access_token == "jeton-3"


@pytest.mark.parametrize(("error", "expected", "temporary"), [
    ({"error": "invalid_client", "error_codes": [7000215],
      "error_description": "AADSTS7000215: Invalid client secret provided."}, "le secret client est incorrect", False),
    ({"error": "invalid_client", "error_description": "AADSTS7000222: The provided client secret keys are expired."},
     "le secret client a expiré", False),
    ({"error": "unauthorized_client", "error_codes": [700016], "error_description": "AADSTS700016: Application"},
     "l'ID d'application (client) est introuvable", False),
    ({"error": "temporarily_unavailable", "error_description": "try later"}, "try later", True),
])
def test_token_refusals_are_explained_in_french(provider, error, expected, temporary):
    provider.error = error
    with pytest.raises(SendError) as caught:
        oauth_token(CREDENTIALS)
    assert caught.value.step == "token" and caught.value.temporary is temporary
    assert caught.value.explanation.startswith("Microsoft a refusé de délivrer le jeton OAuth2")
    assert expected in caught.value.explanation


def test_missing_oauth_settings_are_explained(provider):
    with pytest.raises(SendError) as caught:
        oauth_token(OAuthCredentials("tenant", "client", ""))
    assert "renseignez l'ID de l'annuaire (tenant), l'ID d'application (client) et le secret client" in str(
        caught.value)
    assert provider.calls == []


# --- XOAUTH2 against aiosmtpd -------------------------------------------------------------------------
def test_outbox_sends_with_xoauth2_over_starttls(organisation, clock, office365, provider):
    _queue(organisation)
    _queue(organisation)
    result = outbox_run(OutgoingMessage.objects.all(), clock=clock)
    assert result.sent == 2 and result.aborted is None
    assert office365.handler.auth_calls == [(MAILBOX, "jeton-1")]  # one login, connection reused
    assert [(r.login, r.secure) for r in office365.received] == [(MAILBOX, True)] * 2
    assert len(provider.calls) == 1


def test_smtp_test_page_tells_each_oauth_step(client, organisation, office365, provider, clock):
    report = smtp_test(organisation=organisation, sender_email=MAILBOX, sender_name="EHPAD", to="moi@example.org",
                       clock=clock)
    assert report.ok, report.summary
    steps = [(s.title, s.ok, s.detail) for s in report.steps]
    assert [s[:2] for s in steps] == [("Jeton OAuth2 (Microsoft Entra ID)", True), ("Connexion au serveur", True),
                                      ("Chiffrement", True), ("Authentification", True),
                                      ("Envoi du message de test", True)]
    assert steps[0][2].startswith("jeton OAuth2 obtenu auprès de Microsoft, valable jusqu'à ")
    assert steps[2][2] == "STARTTLS"
    assert steps[3][2] == f"XOAUTH2 accepté pour {MAILBOX}"
    again = smtp_test(organisation=organisation, sender_email=MAILBOX, sender_name="EHPAD", to="moi@example.org",
                      clock=clock)
    assert again.steps[0].detail.startswith("jeton OAuth2 repris du cache")
    assert len(provider.calls) == 1


def test_refused_xoauth2_is_explained_blocks_once_and_forgets_the_token(organisation, clock, office365, provider):
    office365.handler.tokens = {MAILBOX: "un-autre-jeton"}  # the app is not allowed on this mailbox
    _queue(organisation)
    result = outbox_run(OutgoingMessage.objects.all(), clock=clock)
    assert result.aborted.blocked and result.aborted.code == 535
    assert "535 5.7.3" in result.aborted.explanation and "New-ServicePrincipal" in result.aborted.explanation
    assert "Add-MailboxPermission" in result.aborted.explanation
    outbox_run(OutgoingMessage.objects.all(), clock=clock)
    assert office365.handler.auth_calls == [(MAILBOX, "jeton-1")]  # blocked: not tried again
    assert cache.get(CREDENTIALS.cache_key) is None  # the next attempt asks for a fresh token
    organisation.refresh_from_db()
    assert "Identifiants refusés" in organisation.smtp_blocked_reason

    office365.handler.tokens = {MAILBOX: "jeton-2"}
    report = smtp_test(organisation=organisation, sender_email=MAILBOX, sender_name="EHPAD", to="moi@example.org",
                       clock=clock)
    assert report.ok and len(provider.calls) == 2
    assert outbox_run(OutgoingMessage.objects.all(), clock=clock).sent == 1


def test_token_refused_by_microsoft_blocks_without_connecting(organisation, clock, office365, provider):
    provider.error = {"error": "invalid_client", "error_codes": [7000215],
                      "error_description": "AADSTS7000215: Invalid client secret provided."}
    _queue(organisation)
    result = outbox_run(OutgoingMessage.objects.all(), clock=clock)
    assert result.aborted.step == "token" and result.aborted.blocked
    assert "le secret client est incorrect" in result.aborted.explanation
    assert office365.handler.auth_calls == []
    organisation.refresh_from_db()
    assert organisation.smtp_blocked_at is not None
    assert OutgoingMessage.objects.get().status == OutgoingMessage.Status.QUEUED


def test_missing_client_secret_is_explained_before_connecting(organisation, office365, provider, clock):
    organisation.smtp_host = "localhost"  # endpoint changed: the client secret is erased
    organisation.save()
    organisation.refresh_from_db()
    assert organisation.smtp_oauth_client_secret_encrypted == ""
    report = smtp_test(organisation=organisation, sender_email=MAILBOX, sender_name="EHPAD", to="moi@example.org",
                       clock=clock)
    assert not report.ok and "le secret client" in report.summary
    assert [(s.step, s.ok) for s in report.steps] == [("token", False)]


# --- Office 365 replies ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("code", "reply", "expected"), [
    (535, b"5.7.3 Authentication unsuccessful [SN4PR0501CA0001]", "535 5.7.3"),
    (535, b"5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.",
     "Passez à la méthode « Office 365 : OAuth2 »"),
    (550, b"5.7.30 Basic authentication is not supported for Client Submission.",
     "n'accepte plus l'identification par mot de passe pour l'envoi SMTP (550 5.7.30"),
])
def test_office365_auth_replies_are_explained(code, reply, expected):
    error = error_from_exception(smtplib.SMTPAuthenticationError(code, reply), step="auth")
    assert error.step == "auth" and not error.temporary
    assert expected in error.explanation
