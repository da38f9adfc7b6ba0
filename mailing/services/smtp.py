"""SMTP transport with ``smtplib`` directly (Django's backend hides partial refusals).

``SmtpConnection`` opens a connection with the association's settings (none / STARTTLS /
SSL-TLS, AUTH), and ``send()`` runs one SMTP transaction step by step (MAIL FROM, RCPT TO for
each address, DATA) so that

* the addresses refused while others were accepted are returned (``{addr: (code, reply)}``);
* ``before_data`` is called between the last RCPT and DATA: the outbox commits there that the
  message is about to be transmitted. A crash before that point provably sent nothing; only a
  crash during DATA leaves a message *uncertain*;
* every failure is a ``SendError`` with the step, code and a French explanation.

Certificates are checked against the system store, or against ``settings.MAIL_SMTP_CAFILE``
(a private CA, or the test certificate of the test suite).
"""
from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from typing import Callable

from django.conf import settings as django_settings
from django.utils.translation import gettext as _

from structures.models import is_local_host

from .explain import SendError, error_from_exception, explain_reply, is_temporary
from .oauth import OAuthCredentials, oauth_token, oauth_token_forget, xoauth2_string

DEFAULT_TIMEOUT = 30
NON_ASCII_REPLY = "address with non-ASCII characters and no SMTPUTF8 support (refused by Sejour)"


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: str = "starttls"  # "none" | "starttls" | "ssl"
    username: str = ""  # with OAuth2: the mailbox
    password: str = field(default="", repr=False)
    timeout: float = DEFAULT_TIMEOUT
    auth_method: str = "password"  # "password" | "oauth2"
    oauth_tenant_id: str = ""
    oauth_client_id: str = ""
    oauth_client_secret: str = field(default="", repr=False)

    @classmethod
    def from_organisation(cls, organisation, *, timeout: float | None = None) -> "SmtpSettings":
        oauth2 = organisation.smtp_auth_method == "oauth2"
        return cls(host=organisation.smtp_host, port=int(organisation.smtp_port), security=organisation.smtp_security,
                   username=organisation.smtp_username, password=organisation.smtp_password if
                   (organisation.smtp_password_encrypted and not oauth2) else "",
                   timeout=timeout or getattr(django_settings, "MAIL_SMTP_TIMEOUT", DEFAULT_TIMEOUT),
                   auth_method=organisation.smtp_auth_method,
                   oauth_tenant_id=organisation.smtp_oauth_tenant_id if oauth2 else "",
                   oauth_client_id=organisation.smtp_oauth_client_id if oauth2 else "",
                   oauth_client_secret=organisation.smtp_oauth_client_secret if
                   (oauth2 and organisation.smtp_oauth_client_secret_encrypted) else "")

    @property
    def oauth2(self) -> bool:
        return self.auth_method == "oauth2"

    @property
    def oauth_credentials(self) -> OAuthCredentials:
        return OAuthCredentials(self.oauth_tenant_id, self.oauth_client_id, self.oauth_client_secret)

    @property
    def account(self) -> tuple:
        """What identifies one SMTP account (for reusing a connection)."""
        return (self.host, self.port, self.security, self.username, self.password, self.auth_method,
                self.oauth_tenant_id, self.oauth_client_id, self.oauth_client_secret)


def ssl_context() -> ssl.SSLContext:
    cafile = getattr(django_settings, "MAIL_SMTP_CAFILE", None)
    return ssl.create_default_context(cafile=str(cafile) if cafile else None)


class SmtpConnection:
    """One open SMTP session. ``steps`` (optional) receives ``(step, ok, detail)`` as it goes,
    for the SMTP test page."""

    def __init__(self, smtp_settings: SmtpSettings, *, steps: Callable[[str, bool, str], None] | None = None):
        self.settings = smtp_settings
        self.smtp: smtplib.SMTP | None = None
        self._steps = steps
        self.sent_count = 0

    def _step(self, step: str, ok: bool, detail: str = "") -> None:
        if self._steps:
            self._steps(step, ok, detail)

    def _fail(self, exc: BaseException, step: str, sender: str = "") -> SendError:
        error = error_from_exception(exc, step=step, host=self.settings.host, port=self.settings.port, sender=sender)
        self._step(step, False, error.explanation)
        return error

    # --- connection --------------------------------------------------------------------------
    def open(self) -> "SmtpConnection":
        s = self.settings
        if not s.host:
            raise SendError("connect", "Aucun serveur SMTP n'est renseigné dans les paramètres de l'association.",
                            False)
        if s.username and s.security == "none" and not is_local_host(s.host):
            # Refused before connecting: AUTH PLAIN/LOGIN without TLS hands the password to anyone on the way
            # (or to a server someone typed in the settings).
            error = SendError("auth", _(
                "Identification refusée par Séjour : sans chiffrement, le mot de passe circulerait en clair vers "
                "« %(host)s ». Choisissez la sécurité STARTTLS (port 587) ou SSL/TLS (port 465) ; la sécurité "
                "« Aucune » avec un identifiant n'est permise que vers un serveur local (localhost, 127.0.0.1).") % {
                "host": s.host}, False)
            self._step("auth", False, error.explanation)
            raise error
        token = None
        if s.oauth2:
            if not s.username:
                raise self._fail(SendError("auth", _("OAuth2 : renseignez l'adresse de la boîte aux lettres qui envoie "
                                                     "(identifiant SMTP) dans les paramètres de l'association."),
                                           False), "auth")
            try:
                token = oauth_token(s.oauth_credentials, timeout=s.timeout)
            except SendError as error:
                self._step("token", False, error.explanation)
                raise
            self._step("token", True, (_("jeton OAuth2 repris du cache, valable jusqu'à %(time)s") if token.from_cache
                                       else _("jeton OAuth2 obtenu auprès de Microsoft, valable jusqu'à %(time)s"))
                       % {"time": token.expires_at_display})
        step = "connect"
        try:
            if s.security == "ssl":
                step = "tls"
                self.smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=ssl_context())
            else:
                self.smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            self._step("connect", True, f"{s.host}:{s.port}")
            step = "connect"
            self.smtp.ehlo()
            if s.security == "starttls":
                step = "tls"
                self.smtp.starttls(context=ssl_context())
                self.smtp.ehlo()
                self._step("tls", True, "STARTTLS")
            elif s.security == "ssl":
                self._step("tls", True, "SSL/TLS")
            if s.username:
                step = "auth"
                if token is not None:
                    self._xoauth2(token.access_token)
                else:
                    self._login()
        except Exception as exc:  # noqa: BLE001 - every failure becomes a SendError
            self.close()
            if token is not None and step == "auth":
                oauth_token_forget(s.oauth_credentials)  # the next attempt asks Microsoft for a fresh token
            raise self._fail(exc, step) from exc
        return self

    def _xoauth2(self, access_token: str) -> None:
        """``AUTH XOAUTH2`` with the token as initial response. On refusal Office 365 first sends a
        334 challenge (a JSON error): the empty answer then gets the final 535."""
        s, smtp = self.settings, self.smtp
        if not smtp.has_extn("auth"):
            raise smtplib.SMTPNotSupportedError("SMTP AUTH extension not supported by server.")
        if "XOAUTH2" not in smtp.esmtp_features["auth"].upper().split():
            raise SendError("auth", _("Le serveur %(host)s ne propose pas l'authentification OAuth2 (XOAUTH2) : "
                                      "cette méthode est prévue pour smtp.office365.com, port 587, STARTTLS.") % {
                "host": s.host}, False)
        initial = xoauth2_string(s.username, access_token)
        smtp.auth("XOAUTH2", lambda challenge=None: initial if challenge is None else "", initial_response_ok=True)
        self._step("auth", True, _("XOAUTH2 accepté pour %(mailbox)s") % {"mailbox": s.username})

    def _login(self) -> None:
        """ONE AUTH command (``smtplib.login`` tries every advertised mechanism in turn: each refusal
        counts as a failed login towards the account's lockout)."""
        s, smtp = self.settings, self.smtp
        if not smtp.has_extn("auth"):
            raise smtplib.SMTPNotSupportedError("SMTP AUTH extension not supported by server.")
        advertised = smtp.esmtp_features["auth"].upper().split()
        mechanism = next((m for m in ("PLAIN", "LOGIN") if m in advertised), None)
        if mechanism is None:
            raise smtplib.SMTPException(f"No suitable authentication method found (auth: {' '.join(advertised)}).")
        smtp.user, smtp.password = s.username, s.password
        smtp.auth(mechanism, getattr(smtp, "auth_" + mechanism.lower()))
        self._step("auth", True, f"{s.username} ({mechanism})")

    def close(self) -> None:
        if self.smtp is None:
            return
        try:
            self.smtp.quit()
        except Exception:  # noqa: BLE001 - already gone
            try:
                self.smtp.close()
            except Exception:  # noqa: BLE001
                pass
        self.smtp = None

    def alive(self) -> bool:
        if self.smtp is None or self.smtp.sock is None:
            return False
        try:
            return self.smtp.noop()[0] == 250
        except Exception:  # noqa: BLE001
            return False

    def __enter__(self):
        return self.open()

    def __exit__(self, *exc):
        self.close()

    # --- one transaction -----------------------------------------------------------------------
    @property
    def supports_utf8(self) -> bool:
        """Whether the server takes addresses with accents (SMTPUTF8, RFC 6531)."""
        return bool(self.smtp and self.smtp.has_extn("smtputf8"))

    def send(self, *, sender: str, recipients: list[str], data: bytes | Callable[[bool], bytes],
             before_data: Callable[[], bool] | None = None) -> tuple[dict, tuple[int, str]]:
        """MAIL FROM, RCPT TO each address, DATA. Returns (refused addresses, final reply).

        ``data`` may be a function of ``utf8`` (whether the transaction uses SMTPUTF8, needed for an
        address with accents) returning the message bytes. An address with accents on a server
        without SMTPUTF8 is refused here, with an explanation, like a server refusal.
        ``before_data()`` returning False aborts (RSET) without sending: the caller lost its claim.
        """
        smtp = self.smtp
        if smtp is None:
            raise SendError("connect", "Connexion SMTP non ouverte.", True)
        utf8 = not all(a.isascii() for a in [sender, *recipients]) and self.supports_utf8
        refused: dict = {}
        if not utf8:
            for address in recipients:
                if not address.isascii():
                    refused[address] = (553, NON_ASCII_REPLY)
            if not sender.isascii():
                raise SendError("mail", explain_reply(553, NON_ASCII_REPLY, step="mail", sender=sender), False, 553,
                                NON_ASCII_REPLY)
        if len(refused) == len(recipients):
            raise error_from_exception(smtplib.SMTPRecipientsRefused(refused), step="rcpt")
        step = "mail"
        try:
            code, reply = smtp.mail(sender, ["SMTPUTF8", "BODY=8BITMIME"] if utf8 else [])
            if code != 250:
                self._after_refusal(code)
                raise smtplib.SMTPSenderRefused(code, reply, sender)
            step = "rcpt"
            for address in recipients:
                if address in refused:
                    continue
                code, reply = smtp.rcpt(address)
                if code not in (250, 251):
                    refused[address] = (code, reply)
                if code == 421:
                    self.close()
                    raise smtplib.SMTPRecipientsRefused(refused)
            if len(refused) == len(recipients):
                self._after_refusal(None)
                raise smtplib.SMTPRecipientsRefused(refused)
            payload = data(utf8) if callable(data) else data
            if before_data is not None and before_data() is False:
                self._after_refusal(None)
                raise SendError("prepare", "Message repris par un autre processus : non envoyé ici.", True)
            step = "data"
            code, reply = smtp.data(payload)
            if code != 250:
                self._after_refusal(code)
                raise smtplib.SMTPDataError(code, reply)
        except SendError:
            raise
        except Exception as exc:  # noqa: BLE001
            if not isinstance(exc, (smtplib.SMTPSenderRefused, smtplib.SMTPRecipientsRefused,
                                    smtplib.SMTPDataError)):
                self.close()  # the session state is unknown: never reuse it (no "nested MAIL command")
            raise self._fail(exc, step, sender) from exc
        self.sent_count += 1
        self._step("data", True, f"{code} {reply.decode('utf-8', 'replace') if isinstance(reply, bytes) else reply}")
        return ({addr: (c, r.decode("utf-8", "replace") if isinstance(r, bytes) else str(r))
                 for addr, (c, r) in refused.items()},
                (code, reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)))

    def _after_refusal(self, code: int | None) -> None:
        if code == 421:
            self.close()
            return
        try:
            self.smtp.rset()
        except Exception:  # noqa: BLE001
            self.close()


def refusal_details(refused: dict, sender: str = "") -> dict:
    """``{addr: (code, reply)}`` → ``{addr: {"code", "reply", "explanation", "temporary"}}``."""
    return {addr: {"code": code, "reply": reply, "temporary": is_temporary(code),
                   "explanation": explain_reply(code, reply, step="rcpt", recipient=addr, sender=sender)}
            for addr, (code, reply) in refused.items()}
