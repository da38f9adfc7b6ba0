"""OAuth2 for Office 365 SMTP (XOAUTH2), client-credentials flow with Microsoft's ``msal``.

Microsoft turns SMTP password login (basic auth) off by default at the end of December 2026. The
association then registers an application in Entra ID with the ``SMTP.SendAsApp`` permission
(see the README, "Office 365 (OAuth2)"); Séjour asks Microsoft for an access token with the
application's tenant id, client id and client secret, and presents it to smtp.office365.com with
``AUTH XOAUTH2`` (``user=<mailbox>^Aauth=Bearer <token>^A^A``).

The token (valid about an hour) is kept in Django's cache until five minutes before it expires,
then a new one is asked for. The function that asks Microsoft is ``settings.MAIL_OAUTH_TOKEN_PROVIDER``
(dotted path, default :func:`msal_token`); the tests put a fake one in its place.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone as dt_timezone

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from .explain import SendError

SCOPE = "https://outlook.office365.com/.default"
AUTHORITY = "https://login.microsoftonline.com/{tenant}"
EXPIRY_MARGIN_SECONDS = 300

# Entra ID error codes (AADSTS…) that mean the settings are wrong, explained in French.
AADSTS_EXPLANATIONS = {
    "7000215": "le secret client est incorrect (copiez sa « valeur », pas son ID)",
    "7000222": "le secret client a expiré : créez-en un nouveau dans Entra ID et saisissez-le",
    "700016": "l'ID d'application (client) est introuvable dans cet annuaire (tenant)",
    "90002": "l'annuaire (tenant) est introuvable : vérifiez l'ID de l'annuaire",
    "900023": "l'ID de l'annuaire (tenant) n'est pas valide",
    "500011": "la ressource Office 365 Exchange Online est introuvable dans cet annuaire",
    "7000112": "l'application est désactivée dans Entra ID",
}


@dataclass(frozen=True)
class OAuthCredentials:
    tenant_id: str
    client_id: str
    client_secret: str = field(repr=False)

    @property
    def cache_key(self) -> str:
        digest = hashlib.sha256(f"{self.tenant_id}|{self.client_id}|{self.client_secret}".encode()).hexdigest()
        return f"mailing:oauth2-token:{digest}"


@dataclass(frozen=True)
class Token:
    access_token: str = field(repr=False)
    expires_at: float  # epoch seconds
    from_cache: bool = False

    @property
    def expires_at_display(self) -> str:
        moment = datetime.fromtimestamp(self.expires_at, tz=dt_timezone.utc)
        return timezone.localtime(moment).strftime("%H:%M")


def token_error(result: dict) -> SendError:
    """A French explanation of the error dict returned by ``msal`` (``error``, ``error_description``)."""
    error = str(result.get("error") or "")
    description = str(result.get("error_description") or "")
    codes = [str(c) for c in result.get("error_codes") or []]
    reason = next((AADSTS_EXPLANATIONS[c] for c in codes if c in AADSTS_EXPLANATIONS), None)
    if reason is None:
        reason = next((text for code, text in AADSTS_EXPLANATIONS.items() if f"AADSTS{code}:" in description), None)
    temporary = error in ("temporarily_unavailable", "server_error")
    if reason is None:
        reason = description.splitlines()[0][:300] if description else error or _("réponse inattendue")
    return SendError("token", _("Microsoft a refusé de délivrer le jeton OAuth2 (%(error)s) : %(reason)s. Vérifiez "
                                "l'ID de l'annuaire, l'ID d'application et le secret client dans les paramètres de "
                                "l'association.") % {"error": error or "?", "reason": reason}, temporary,
                     reply=description[:2000])


def msal_token(*, tenant_id: str, client_id: str, client_secret: str, timeout: float = 30) -> dict:
    """Ask Microsoft Entra ID for an application token (client credentials). Returns msal's dict
    (``access_token`` / ``expires_in``, or ``error`` / ``error_description``)."""
    import msal

    app = msal.ConfidentialClientApplication(
        client_id, client_credential=client_secret, authority=AUTHORITY.format(tenant=tenant_id), timeout=timeout)
    return app.acquire_token_for_client(scopes=[SCOPE])


def token_provider():
    return import_string(getattr(settings, "MAIL_OAUTH_TOKEN_PROVIDER", "mailing.services.oauth.msal_token"))


def oauth_token(credentials: OAuthCredentials, *, timeout: float = 30, now: float | None = None) -> Token:
    """The cached token if it is still valid for five minutes, else a new one from Microsoft.
    Raises ``SendError`` (step "token") with a French explanation."""
    if not (credentials.tenant_id and credentials.client_id and credentials.client_secret):
        raise SendError("token", _("OAuth2 : renseignez l'ID de l'annuaire (tenant), l'ID d'application (client) et "
                                   "le secret client dans les paramètres de l'association."), False)
    now = time.time() if now is None else now
    cached = cache.get(credentials.cache_key)
    if cached and cached[1] - EXPIRY_MARGIN_SECONDS > now:
        return Token(cached[0], cached[1], from_cache=True)
    try:
        result = token_provider()(tenant_id=credentials.tenant_id, client_id=credentials.client_id,
                                  client_secret=credentials.client_secret, timeout=timeout)
    except ValueError as exc:  # msal: authority (tenant) unknown
        raise SendError("token", _("Microsoft ne reconnaît pas l'annuaire (tenant) « %(tenant)s » : vérifiez l'ID de "
                                   "l'annuaire dans les paramètres de l'association (%(error)s).") % {
            "tenant": credentials.tenant_id, "error": exc}, False) from exc
    except Exception as exc:  # noqa: BLE001 - network: login.microsoftonline.com unreachable
        raise SendError("token", _("Impossible de joindre Microsoft (login.microsoftonline.com) pour obtenir le jeton "
                                   "OAuth2 : %(error)s. Nouvel essai automatique plus tard.") % {"error": exc},
                        True) from exc
    if not result or "access_token" not in result:
        raise token_error(result or {})
    expires_at = now + int(result.get("expires_in") or 3600)
    cache.set(credentials.cache_key, (result["access_token"], expires_at),
              timeout=max(60, int(expires_at - now - EXPIRY_MARGIN_SECONDS)))
    return Token(result["access_token"], expires_at)


def oauth_token_forget(credentials: OAuthCredentials) -> None:
    """After a refused XOAUTH2: the next attempt asks for a fresh token."""
    cache.delete(credentials.cache_key)


def xoauth2_string(mailbox: str, access_token: str) -> str:
    return f"user={mailbox}\x01auth=Bearer {access_token}\x01\x01"
