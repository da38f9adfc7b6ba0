"""The SMTP test of the settings page: connect, secure, authenticate, send one message to an
address typed by the user, and tell each step in plain French. The message is logged in the
outbox like any other (kind "test"), through the shared throttle."""
from __future__ import annotations

from dataclasses import dataclass, field

from django.utils import timezone
from django.utils.translation import gettext as _

from ..models import MailCampaign, MessageAttempt, OutgoingMessage
from .campaigns import campaign_create
from .explain import SendError
from .outbox import message_bytes, message_queue, smtp_unblock
from .smtp import SmtpConnection, SmtpSettings
from .throttle import throttle_wait

STEP_TITLES = {
    "token": "Jeton OAuth2 (Microsoft Entra ID)", "connect": "Connexion au serveur", "tls": "Chiffrement", "auth": "Authentification",
    "data": "Envoi du message de test",
}


@dataclass
class TestStep:
    step: str
    ok: bool
    detail: str

    @property
    def title(self) -> str:
        return STEP_TITLES.get(self.step, self.step)


@dataclass
class TestReport:
    steps: list[TestStep] = field(default_factory=list)
    ok: bool = False
    summary: str = ""
    message: OutgoingMessage | None = None


def smtp_test(*, organisation, sender_email: str, sender_name: str, to: str, section=None, user=None,
              clock=None) -> TestReport:
    report = TestReport()
    settings_ = SmtpSettings.from_organisation(organisation, timeout=15)
    campaign = campaign_create(organisation=organisation, section=section, kind=MailCampaign.Kind.TEST,
                               label=_("Test du serveur SMTP vers %(to)s") % {"to": to}, user=user)
    message = message_queue(
        organisation=organisation, section=section, campaign=campaign, sender_name=sender_name,
        sender_email=sender_email, recipients=[to], user=user,
        subject=_("Séjour : message de test du serveur d'envoi"),
        body=_("Bonjour,\n\nCe message confirme que Séjour peut envoyer des courriels avec le serveur %(host)s "
               "(port %(port)s, sécurité %(security)s) pour %(org)s.\n\nAucune action n'est nécessaire.") % {
            "host": settings_.host, "port": settings_.port, "security": organisation.get_smtp_security_display(),
            "org": organisation.name})
    report.message = message
    started = timezone.now()
    conn = SmtpConnection(settings_, steps=lambda step, ok, detail: report.steps.append(TestStep(step, ok, detail)))
    status, outcome, code, reply, explanation, step, refused = (OutgoingMessage.Status.FAILED,
                                                                MessageAttempt.Outcome.PERMANENT, None, "", "", "", {})
    try:
        throttle_wait(organisation_id=organisation.pk, clock=clock)
        OutgoingMessage.objects.filter(pk=message.pk).update(status=OutgoingMessage.Status.SENDING,
                                                             claimed_at=timezone.now(), claimed_by="smtp-test")
        conn.open()
        refused_raw, (code, reply) = conn.send(sender=sender_email, recipients=[to],
                                               data=lambda utf8: message_bytes(message, utf8=utf8))
        status, outcome, step = OutgoingMessage.Status.SENT, MessageAttempt.Outcome.SENT, "data"
        explanation = _("Accepté par le serveur SMTP.")
        report.ok = True
        smtp_unblock(organisation_id=organisation.pk)  # credentials accepted: blocked sendings resume
        report.summary = _("Le serveur a accepté le message de test pour %(to)s. Vérifiez sa bonne arrivée dans la "
                           "boîte de réception (et les courriers indésirables).") % {"to": to}
    except SendError as error:
        code, reply, explanation, step, refused = error.code, error.reply, error.explanation, error.step, \
            error.refused or {}
        outcome = MessageAttempt.Outcome.CONNECTION if error.connection_level else MessageAttempt.Outcome.PERMANENT
        report.summary = error.explanation
        if not any(not s.ok for s in report.steps):
            report.steps.append(TestStep(error.step, False, error.explanation))
    finally:
        conn.close()
    now = timezone.now()
    OutgoingMessage.objects.filter(pk=message.pk).update(
        status=status, attempts=1, last_attempt_at=now, last_code=code, last_reply=reply or "",
        explanation=explanation, refused=refused, claimed_by="", sent_at=now if report.ok else None,
        data_started_at=now if report.ok else None)
    MessageAttempt.objects.create(message=message, started_at=started, finished_at=now, outcome=outcome, step=step,
                                  code=code, reply=reply or "", explanation=explanation, refused=refused,
                                  worker="smtp-test")
    return report
