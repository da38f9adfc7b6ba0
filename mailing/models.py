"""The outbox (layer 1): every e-mail Séjour sends is an ``OutgoingMessage`` row with a status
machine, each SMTP conversation a ``MessageAttempt``, a batch a ``MailCampaign``; the throttle of
an SMTP account is one ``SmtpThrottle`` row per association, shared by every worker.

This app knows nothing of invoices: a message points to its *related document* by a string key
(``"billing.invoice:42"``) and the apps above plug in through ``mailing.services.documents`` and
the signals of ``mailing.signals``.

Status machine of a message::

    queued ──claim──▶ sending ──250──▶ sent
      ▲                 │  ├─4xx──▶ retry ──(next_attempt_at)──▶ sending …
      │                 │  ├─5xx / retries exhausted──▶ failed
      │                 │  └─killed during DATA──▶ uncertain  (a person checks, then resends or marks sent)
      └─killed before DATA (nothing reached the server)
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from structures.models import Organisation, Section


class SmtpThrottle(models.Model):
    """When the association's SMTP account may next be used, shared by all workers (row-locked)."""

    organisation = models.OneToOneField(Organisation, on_delete=models.CASCADE, related_name="smtp_throttle")
    next_send_at = models.DateTimeField(_("prochain envoi possible"), null=True, blank=True)
    sent_since_pause = models.PositiveIntegerField(_("messages depuis la dernière pause"), default=0)

    class Meta:
        verbose_name = _("cadence d'envoi")
        verbose_name_plural = _("cadences d'envoi")

    def __str__(self):
        return f"{self.organisation} : {self.next_send_at}"


class MailCampaign(models.Model):
    """One sending: what was sent (subject and text as typed, attachments), by whom, when."""

    class Kind(models.TextChoices):
        PERIOD = "period", _("Factures d'une période")
        SINGLE = "single", _("Envoi d'un document")
        COMMAND = "command", _("Envoi automatique (commande)")
        TEST = "test", _("Message de test")

    organisation = models.ForeignKey(Organisation, verbose_name=_("association"), on_delete=models.PROTECT,
                                     related_name="mail_campaigns")
    section = models.ForeignKey(Section, verbose_name=_("section"), null=True, blank=True, on_delete=models.PROTECT,
                                related_name="mail_campaigns")
    kind = models.CharField(_("type"), max_length=10, choices=Kind.choices, default=Kind.PERIOD)
    label = models.CharField(_("libellé"), max_length=200)
    subject = models.CharField(_("objet (modèle)"), max_length=250, blank=True)
    body = models.TextField(_("texte (modèle)"), blank=True)
    read_receipt = models.BooleanField(_("accusé de lecture demandé"), default=False)
    # General attachments: [{"path", "filename", "mimetype", "size"}] (files in the default storage).
    attachments = models.JSONField(_("pièces jointes générales"), default=list, blank=True)
    # Free context for the app that made it (e.g. {"period_id": 3}); mailing does not read it.
    context = models.JSONField(default=dict, blank=True)
    job = models.ForeignKey("core.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("par"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("le"), default=timezone.now)

    class Meta:
        verbose_name = _("envoi de courriels")
        verbose_name_plural = _("envois de courriels")
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        return self.label


class OutgoingMessage(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", _("En file d'attente")
        SENDING = "sending", _("En cours d'envoi")
        SENT = "sent", _("Envoyé")
        RETRY = "retry", _("Échec temporaire, nouvel essai prévu")
        FAILED = "failed", _("Échec définitif")
        UNCERTAIN = "uncertain", _("Interrompu pendant l'envoi : à vérifier")
        CANCELLED = "cancelled", _("Annulé")

    CLAIMABLE = (Status.QUEUED, Status.RETRY)
    PENDING = (Status.QUEUED, Status.SENDING, Status.RETRY)
    # A document with a message in one of these states is "sent or on its way": never queue it again
    # automatically (an uncertain one waits for a person).
    NOT_TO_REQUEUE = (Status.QUEUED, Status.SENDING, Status.RETRY, Status.SENT, Status.UNCERTAIN)

    organisation = models.ForeignKey(Organisation, verbose_name=_("association"), on_delete=models.PROTECT,
                                     related_name="outgoing_messages")
    section = models.ForeignKey(Section, verbose_name=_("section"), null=True, blank=True, on_delete=models.PROTECT,
                                related_name="+")
    campaign = models.ForeignKey(MailCampaign, verbose_name=_("envoi"), null=True, blank=True,
                                 on_delete=models.PROTECT, related_name="messages")
    sender_name = models.CharField(_("nom de l'expéditeur"), max_length=200, blank=True)
    sender_email = models.EmailField(_("expéditeur"))
    recipients = models.JSONField(_("destinataires"), default=list)
    subject = models.CharField(_("objet"), max_length=250)
    body = models.TextField(_("texte"))
    # [{"document": "billing.invoice:42"}] resolved when sending, or
    # [{"path": "mailing/…", "filename": "…", "mimetype": "…", "size": n}] stored files.
    attachments = models.JSONField(_("pièces jointes"), default=list, blank=True)
    read_receipt = models.BooleanField(_("accusé de lecture"), default=False)
    related_key = models.CharField(_("document"), max_length=100, blank=True, db_index=True)
    related_label = models.CharField(_("libellé du document"), max_length=250, blank=True)
    message_id = models.CharField(_("Message-ID"), max_length=250, unique=True)

    status = models.CharField(_("état"), max_length=10, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveIntegerField(_("tentatives"), default=0)
    next_attempt_at = models.DateTimeField(_("prochain essai"), default=timezone.now)
    claimed_by = models.CharField(max_length=120, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    data_started_at = models.DateTimeField(_("transmission commencée le"), null=True, blank=True)
    sent_at = models.DateTimeField(_("envoyé le"), null=True, blank=True)
    last_attempt_at = models.DateTimeField(_("dernière tentative"), null=True, blank=True)
    last_code = models.PositiveIntegerField(_("code SMTP"), null=True, blank=True)
    last_reply = models.TextField(_("réponse du serveur"), blank=True)
    explanation = models.TextField(_("explication"), blank=True)
    # Addresses refused while others accepted: {"addr": {"code": 550, "reply": "…", "explanation": "…"}}
    refused = models.JSONField(_("adresses refusées"), default=dict, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(_("créé le"), default=timezone.now)

    class Meta:
        verbose_name = _("courriel")
        verbose_name_plural = _("courriels")
        ordering = ["pk"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="outbox_due"),
            models.Index(fields=["campaign", "status"], name="outbox_campaign_status"),
        ]

    def __str__(self):
        return f"{self.subject} → {', '.join(self.recipients)}"

    @property
    def is_pending(self) -> bool:
        return self.status in self.PENDING

    @property
    def recipients_display(self) -> str:
        return ", ".join(self.recipients)


class MessageAttempt(models.Model):
    """One try at handing a message to the SMTP server (or an interruption found afterwards)."""

    class Outcome(models.TextChoices):
        SENT = "sent", _("Accepté")
        PARTIAL = "partial", _("Accepté pour une partie des destinataires")
        TEMPORARY = "temporary", _("Échec temporaire")
        PERMANENT = "permanent", _("Échec définitif")
        CONNECTION = "connection", _("Serveur injoignable ou refus de connexion")
        INTERRUPTED = "interrupted", _("Interrompu avant la transmission")
        UNCERTAIN = "uncertain", _("Interrompu pendant la transmission")
        MANUAL = "manual", _("Décision manuelle")

    message = models.ForeignKey(OutgoingMessage, on_delete=models.CASCADE, related_name="attempt_log")
    started_at = models.DateTimeField(_("début"), default=timezone.now)
    finished_at = models.DateTimeField(_("fin"), null=True, blank=True)
    outcome = models.CharField(_("résultat"), max_length=12, choices=Outcome.choices)
    step = models.CharField(_("étape"), max_length=12, blank=True)
    code = models.PositiveIntegerField(_("code SMTP"), null=True, blank=True)
    reply = models.TextField(_("réponse du serveur"), blank=True)
    explanation = models.TextField(_("explication"), blank=True)
    refused = models.JSONField(_("adresses refusées"), default=dict, blank=True)
    worker = models.CharField(max_length=120, blank=True)

    class Meta:
        verbose_name = _("tentative d'envoi")
        verbose_name_plural = _("tentatives d'envoi")
        ordering = ["message", "started_at", "pk"]

    def __str__(self):
        return f"{self.message_id} {self.get_outcome_display()} {self.code or ''}"
