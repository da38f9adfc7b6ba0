"""SMTP replies and network errors, explained in plain French, and classified.

``SendError`` is what the transport raises: the SMTP step it happened at (connect, tls, auth,
mail, rcpt, data), the reply code and text, a French explanation and whether it is *temporary*
(worth retrying later) or *permanent*. Errors at connect/tls/auth concern the SMTP account and
stop a run (``connection_level``); errors at mail/rcpt/data concern one message.

The table (also in the README):

=========  ==================================================================  ===========
code       meaning                                                              handling
=========  ==================================================================  ===========
421        server busy / closing the connection                                 retry later
450/451    mailbox busy, greylisting, sending limit reached                     retry later
452        server short of space, too many recipients                           retry later
454        TLS / authentication temporarily unavailable                         retry later
530        authentication required                                              permanent
534        authentication mechanism refused (Office 365: SMTP AUTH disabled)    permanent
535        wrong login or password (5.7.3 Office 365: OAuth2 app not allowed     permanent
           on the mailbox; 5.7.139: SMTP AUTH disabled)
550 5.7.30 Office 365: basic authentication not supported (use OAuth2)        permanent
550        MAIL FROM: the account may not send as this sender (seed 000);       permanent
           RCPT TO: no such mailbox
552        message too big / mailbox full                                       permanent
553        address refused (malformed, or sender not allowed)                   permanent
554        refused (spam filter, blocked sender)                                permanent
=========  ==================================================================  ===========
"""
from __future__ import annotations

import smtplib
import socket
import ssl
from dataclasses import dataclass

from django.utils.translation import gettext as _

CONNECTION_STEPS = ("token", "connect", "tls", "auth")
STEP_LABELS = {
    "token": "jeton OAuth2", "connect": "connexion", "tls": "chiffrement", "auth": "authentification", "mail": "expéditeur",
    "rcpt": "destinataire", "data": "transmission du message", "prepare": "préparation",
}

_SENDER_NOT_ALLOWED_HINTS = ("sendasdenied", "send as", "not allowed", "not authorized", "not permitted",
                             "permission", "5.7.60", "sender address rejected", "not owned",
                             "n'est pas autoris")


@dataclass
class SendError(Exception):
    step: str
    explanation: str
    temporary: bool
    code: int | None = None
    reply: str = ""
    refused: dict | None = None
    # Set by the outbox when this error blocked the association's sending (credentials refused).
    blocked: bool = False

    def __post_init__(self):
        super().__init__(self.explanation)

    @property
    def connection_level(self) -> bool:
        return self.step in CONNECTION_STEPS

    def __str__(self):
        return self.explanation


def _reply_text(raw) -> str:
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "replace")
    return str(raw or "")


def is_temporary(code: int | None) -> bool:
    return code is not None and 400 <= code < 500


def explain_reply(code: int | None, reply: str = "", *, step: str = "", sender: str = "", recipient: str = "",
                  host: str = "") -> str:
    """A French sentence for an SMTP reply (code + text) received at ``step``."""
    text = (reply or "").lower()
    server = host or _("le serveur SMTP")
    if code == 421:
        return _("Le serveur SMTP est momentanément indisponible et a fermé la connexion (421) : trop de "
                 "connexions ou de messages à la fois. Nouvel essai automatique plus tard.")
    if code in (450, 451):
        if "greylist" in text or "try again" in text or "later" in text:
            return _("Le serveur demande de réessayer plus tard (%(code)s, liste grise ou limite d'envoi). "
                     "Nouvel essai automatique.") % {"code": code}
        return _("Erreur temporaire du serveur (%(code)s) : boîte du destinataire momentanément indisponible, "
                 "limite d'envoi atteinte ou contrôle anti-spam. Nouvel essai automatique plus tard.") % {"code": code}
    if code == 452:
        return _("Le serveur manque momentanément de place ou refuse autant de destinataires (452). "
                 "Nouvel essai automatique plus tard.")
    if code == 454:
        return _("Le chiffrement ou l'authentification est momentanément indisponible sur le serveur (454). "
                 "Nouvel essai automatique plus tard.")
    if code == 530:
        return _("Le serveur exige une authentification (530) : renseignez l'identifiant et le mot de passe "
                 "SMTP de l'association (et la sécurité STARTTLS ou SSL/TLS).")
    if code == 534:
        return _("Le serveur refuse ce mode d'authentification (534). Chez Office 365, l'« authentification "
                 "SMTP » doit être activée pour cette boîte ; chez Gmail, il faut un mot de passe d'application.")
    if code == 535 and ("5.7.139" in text or "basic authentication is disabled" in text):
        return _("Office 365 refuse l'authentification par mot de passe (535 5.7.139) : l'« authentification SMTP » "
                 "(SMTP AUTH) est désactivée pour cette boîte ou pour tout le tenant — c'est le réglage par défaut "
                 "de Microsoft depuis fin décembre 2026. Passez à la méthode « Office 365 : OAuth2 » dans les "
                 "paramètres de l'association (voir la documentation), ou faites réactiver SMTP AUTH pour cette "
                 "boîte par l'administrateur Microsoft 365.")
    if code == 535 and "5.7.3" in text:
        return _("Office 365 refuse l'identification (535 5.7.3, « Authentication unsuccessful »). Avec OAuth2 : "
                 "l'application n'a pas accès à cette boîte — le principal de service doit être enregistré dans "
                 "Exchange Online (New-ServicePrincipal) et autorisé sur la boîte (Add-MailboxPermission), la "
                 "permission SMTP.SendAsApp doit avoir reçu le consentement administrateur, et la boîte saisie doit "
                 "être la bonne. Avec un mot de passe : identifiant ou mot de passe incorrect, ou authentification "
                 "multifacteur exigée pour ce compte.")
    if code == 550 and ("5.7.30" in text or "basic authentication is not supported" in text):
        return _("Office 365 n'accepte plus l'identification par mot de passe pour l'envoi SMTP (550 5.7.30, "
                 "« Basic authentication is not supported for Client Submission ») : passez à la méthode "
                 "« Office 365 : OAuth2 » dans les paramètres de l'association (voir la documentation), ou faites "
                 "réactiver SMTP AUTH par l'administrateur Microsoft 365.")
    if code == 535:
        return _("Authentification refusée (535) : l'identifiant ou le mot de passe SMTP est incorrect, ou le "
                 "compte n'autorise pas l'envoi par SMTP. Vérifiez-les dans les paramètres de l'association.")
    sender_hint = any(h in text for h in _SENDER_NOT_ALLOWED_HINTS)
    if (code in (550, 553) and step == "mail") or (code in (550, 554) and step == "data" and sender_hint):
        return _("Le compte SMTP n'a pas le droit d'envoyer des messages pour l'adresse d'expéditeur "
                 "« %(sender)s » (%(code)s, « mailbox unavailable » / expéditeur non autorisé). Faites autoriser "
                 "cette adresse sur le serveur SMTP par votre prestataire informatique, ou choisissez comme "
                 "expéditeur de l'établissement une adresse rattachée à ce compte.") % {
            "sender": sender or "?", "code": code}
    if code == 550 and "relay" in text:
        return _("Le serveur refuse de relayer ce message (550, relais interdit) : l'authentification SMTP est "
                 "sans doute absente ou incorrecte.")
    if code == 553 and "non-ascii" in text:
        who = f" « {recipient or sender} »"
        return _("L'adresse%(who)s contient des caractères accentués que le serveur SMTP n'accepte pas (extension "
                 "SMTPUTF8 absente) : corrigez-la dans la fiche.") % {"who": who}
    if code in (550, 551):
        who = f" « {recipient} »" if recipient else ""
        return _("Adresse du destinataire%(who)s inexistante ou boîte indisponible (%(code)s) : vérifiez "
                 "l'adresse e-mail dans la fiche.") % {"who": who, "code": code}
    if code == 552:
        return _("Message trop volumineux ou boîte du destinataire pleine (552) : allégez les pièces jointes "
                 "(moins de 1 Mo conseillé).")
    if code == 553:
        who = f" « {recipient} »" if recipient else ""
        return _("Adresse%(who)s refusée par le serveur (553) : adresse mal formée ou non autorisée.") % {"who": who}
    if code == 554:
        return _("Message refusé par le serveur (554) : souvent jugé indésirable (spam) ou expéditeur bloqué. "
                 "Réponse du serveur : %(reply)s") % {"reply": reply[:200]}
    if code is not None and 400 <= code < 500:
        return _("Erreur temporaire du serveur (%(code)s) : nouvel essai automatique plus tard. Réponse : "
                 "%(reply)s") % {"code": code, "reply": reply[:200]}
    if code is not None and code >= 500:
        return _("Refus définitif du serveur (%(code)s) à l'étape « %(step)s ». Réponse : %(reply)s") % {
            "code": code, "step": STEP_LABELS.get(step, step), "reply": reply[:200]}
    return _("Réponse inattendue de %(server)s : %(code)s %(reply)s") % {
        "server": server, "code": code or "", "reply": reply[:200]}


def error_from_exception(exc: BaseException, *, step: str, host: str = "", port: int | None = None,
                         sender: str = "") -> SendError:
    """Turn an ``smtplib`` / socket / TLS exception into a ``SendError`` with its explanation."""
    where = f"{host}:{port}" if host else _("le serveur SMTP")
    if isinstance(exc, SendError):
        return exc
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = {addr: {"code": code, "reply": _reply_text(text),
                          "explanation": explain_reply(code, _reply_text(text), step="rcpt", recipient=addr)}
                   for addr, (code, text) in exc.recipients.items()}
        codes = [r["code"] for r in refused.values()]
        temporary = all(is_temporary(c) for c in codes)
        first_addr, first = next(iter(refused.items()))
        explanation = (first["explanation"] if len(refused) == 1 else
                       _("Tous les destinataires ont été refusés : %(detail)s") % {
                           "detail": " ; ".join(f"{a} : {r['code']}" for a, r in refused.items())})
        return SendError("rcpt", explanation, temporary, first["code"], first["reply"], refused)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        reply = _reply_text(exc.smtp_error)
        return SendError("auth", explain_reply(exc.smtp_code, reply, step="auth"), is_temporary(exc.smtp_code),
                         exc.smtp_code, reply)
    if isinstance(exc, smtplib.SMTPSenderRefused):
        reply = _reply_text(exc.smtp_error)
        return SendError("mail", explain_reply(exc.smtp_code, reply, step="mail", sender=sender or exc.sender),
                         is_temporary(exc.smtp_code), exc.smtp_code, reply)
    if isinstance(exc, smtplib.SMTPResponseException):  # SMTPDataError, SMTPConnectError, SMTPHeloError…
        reply = _reply_text(exc.smtp_error)
        return SendError(step, explain_reply(exc.smtp_code, reply, step=step, sender=sender),
                         is_temporary(exc.smtp_code), exc.smtp_code, reply)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        if step == "auth":
            return SendError(step, _("Le serveur %(where)s ne propose pas d'authentification sur cette connexion : "
                                     "choisissez la sécurité STARTTLS (port 587) ou SSL/TLS (port 465), ou retirez "
                                     "l'identifiant si ce serveur n'en demande pas.") % {"where": where}, False)
        if step == "tls":
            return SendError(step, _("Le serveur %(where)s ne propose pas STARTTLS : choisissez la sécurité "
                                     "« SSL/TLS » (port 465) ou « Aucune » selon votre fournisseur.") % {"where": where},
                             False)
        return SendError(step, _("Le serveur ne prend pas en charge cette fonction : %(error)s") % {"error": exc},
                         False)
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        if step in CONNECTION_STEPS:
            return SendError(step, _("Le serveur %(where)s a fermé la connexion dès le début (%(step)s) : "
                                     "port ou sécurité sans doute incorrects (SSL/TLS sur 465, STARTTLS sur 587), "
                                     "ou serveur surchargé.") % {"where": where, "step": STEP_LABELS.get(step, step)},
                             True)
        return SendError(step, _("Le serveur a coupé la connexion pendant l'envoi (%(step)s) : le message n'a pas "
                                 "été accepté. Nouvel essai automatique plus tard.") % {
            "step": STEP_LABELS.get(step, step)}, True)
    if isinstance(exc, smtplib.SMTPException):
        message = str(exc)
        if "auth" in message.lower():
            return SendError("auth", _("Le serveur ne propose pas d'authentification sur cette connexion : "
                                       "choisissez la sécurité STARTTLS (port 587) ou SSL/TLS (port 465). "
                                       "(%(error)s)") % {"error": message}, False)
        return SendError(step, _("Erreur SMTP : %(error)s") % {"error": message}, False)
    if isinstance(exc, UnicodeError):
        return SendError(step, _("Une adresse ou un en-tête contient des caractères que le serveur SMTP n'accepte "
                                 "pas (%(error)s) : corrigez l'adresse (sans accents).") % {"error": exc}, False)
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or exc
        return SendError("tls", _("Le certificat du serveur %(where)s n'est pas valide (%(reason)s) : vérifiez le "
                                  "nom du serveur, il doit correspondre à son certificat (par exemple "
                                  "smtp.office365.com).") % {"where": where, "reason": reason}, False)
    if isinstance(exc, ssl.SSLError):
        return SendError("tls", _("Erreur de chiffrement TLS avec %(where)s (%(reason)s) : la sécurité choisie ne "
                                  "correspond sans doute pas au port (STARTTLS sur 587, SSL/TLS sur 465).") % {
            "where": where, "reason": getattr(exc, "reason", None) or exc}, False)
    if isinstance(exc, ConnectionRefusedError):
        return SendError(step, _("Connexion refusée par %(where)s : aucun serveur SMTP n'écoute sur ce port, ou un "
                                 "pare-feu bloque l'accès. Vérifiez le serveur et le port (587 pour STARTTLS, 465 "
                                 "pour SSL/TLS).") % {"where": where}, True)
    if isinstance(exc, socket.gaierror):
        return SendError(step, _("Serveur SMTP « %(host)s » introuvable : vérifiez son nom (ou la connexion à "
                                 "internet).") % {"host": host}, True)
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return SendError(step, _("Le serveur %(where)s ne répond pas (délai dépassé) : pare-feu, port bloqué par le "
                                 "fournisseur d'accès (le port 25 l'est souvent) ou serveur surchargé.") % {
            "where": where}, True)
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        return SendError(step, _("La connexion avec %(where)s a été coupée (%(step)s). Nouvel essai automatique "
                                 "plus tard.") % {"where": where, "step": STEP_LABELS.get(step, step)}, True)
    if isinstance(exc, OSError):
        return SendError(step, _("Erreur réseau avec %(where)s : %(error)s") % {"where": where, "error": exc}, True)
    return SendError(step, _("Erreur inattendue : %(error)s") % {"error": exc}, False)
