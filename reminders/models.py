"""Reminders (*relances*, billing-rules §10): texts per establishment, delays per section, runs,
letters and one ``Reminder`` row per invoice and level.

A reminder is never deleted: a reminder sent by mistake is *cancelled* (date, user, reason; the
change is in the audit log) and no longer counts in the invoice's history. No fee is ever added.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from billing.models import Invoice
from payers.models import Payer
from residents.models import Relative, Resident
from structures.models import Establishment, Section


class Level(models.IntegerChoices):
    FIRST = 1, _("1re relance")
    SECOND = 2, _("2e relance")
    FORMAL_NOTICE = 3, _("Mise en demeure")


class Audience(models.TextChoices):
    FAMILY = "family", _("Familles (résidents, proches)")
    PAYER = "payer", _("Payeurs (départements, caisses, mutuelles)")


class ReminderText(models.Model):
    """Title, header and footer of one level's letter for an establishment and an audience
    (families or payers; placeholders ``{personne}``, ``{etablissement}``, ``{date_limite}``,
    ``{total_du}``)."""

    audience = models.CharField(_("destinataires"), max_length=10, choices=Audience.choices,
                                default=Audience.FAMILY)
    establishment = models.ForeignKey(Establishment, verbose_name=_("établissement"), on_delete=models.CASCADE,
                                      related_name="reminder_texts")
    level = models.PositiveSmallIntegerField(_("niveau"), choices=Level.choices)
    title = models.CharField(_("titre"), max_length=120)
    header = models.TextField(_("texte d'en-tête"))
    footer = models.TextField(_("texte de pied"))

    class Meta:
        verbose_name = _("modèle de relance")
        verbose_name_plural = _("modèles de relance")
        ordering = ["establishment", "audience", "level"]
        constraints = [models.UniqueConstraint(fields=["establishment", "audience", "level"],
                                               name="one_reminder_text_per_audience_level")]

    def __str__(self):
        return f"{self.establishment} — {self.get_audience_display()} — {self.get_level_display()}"


class ReminderDelays(models.Model):
    """§10 delays of a section: level 1 so many days after the due date, level 2 after level 1's
    letter, level 3 after level 2's letter."""

    section = models.OneToOneField(Section, verbose_name=_("section"), on_delete=models.CASCADE,
                                   related_name="reminder_delays")
    level1_days = models.PositiveIntegerField(_("1re relance : jours après l'échéance"), default=15)
    level2_days = models.PositiveIntegerField(_("2e relance : jours après la 1re"), default=30)
    level3_days = models.PositiveIntegerField(_("mise en demeure : jours après la 2e"), default=30)

    class Meta:
        verbose_name = _("délais de relance")
        verbose_name_plural = _("délais de relance")

    def __str__(self):
        return f"{self.section} : {self.level1_days} / {self.level2_days} / {self.level3_days}"

    def days(self, level: int) -> int:
        return {1: self.level1_days, 2: self.level2_days, 3: self.level3_days}[level]


class InvoiceDispute(models.Model):
    """An invoice the debtor contests: not reminded while ``is_disputed`` (the invoice row itself is
    frozen once issued, so the flag lives here)."""

    invoice = models.OneToOneField(Invoice, verbose_name=_("facture"), on_delete=models.CASCADE,
                                   related_name="dispute")
    is_disputed = models.BooleanField(_("contestée"), default=True)
    comment = models.CharField(_("commentaire"), max_length=250)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("modifié par"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(_("modifié le"), auto_now=True)

    class Meta:
        verbose_name = _("contestation de facture")
        verbose_name_plural = _("contestations de factures")

    def __str__(self):
        return f"{self.invoice} : {self.comment}"


class ReminderRun(models.Model):
    """A *campagne de relance*: the proposal of a section for a limit date and a print date, then
    its validation (letters, e-mails, invoices moved to their level)."""

    class Status(models.TextChoices):
        PROPOSED = "proposed", _("Proposée")
        VALIDATING = "validating", _("Validation en cours")
        VALIDATED = "validated", _("Validée")

    section = models.ForeignKey(Section, verbose_name=_("section"), on_delete=models.PROTECT,
                                related_name="reminder_runs")
    limit_date = models.DateField(_("date limite"))
    print_date = models.DateField(_("date d'impression"))
    status = models.CharField(_("état"), max_length=10, choices=Status.choices, default=Status.PROPOSED)
    by_scheduler = models.BooleanField(_("préparée automatiquement"), default=False)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("créée par"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("créée le"), auto_now_add=True)
    validated_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("validée par"), null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="+")
    validated_at = models.DateTimeField(_("validée le"), null=True, blank=True)
    job = models.ForeignKey("core.Job", verbose_name=_("tâche"), null=True, blank=True, on_delete=models.SET_NULL,
                            related_name="+")
    merged_pdf = models.FileField(_("lettres à imprimer"), upload_to="reminders/%Y/%m/", blank=True)
    result = models.JSONField(_("résultat"), default=dict, blank=True)

    class Meta:
        verbose_name = _("campagne de relance")
        verbose_name_plural = _("campagnes de relance")
        ordering = ["section", "-print_date", "-pk"]

    def __str__(self):
        return f"{self.section.alias} — relances du {self.print_date:%d/%m/%Y}"


class ReminderLetter(models.Model):
    """One debtor's letter of a validated run (its PDF, how it went out)."""

    run = models.ForeignKey(ReminderRun, verbose_name=_("campagne"), on_delete=models.PROTECT, related_name="letters")
    debtor_kind = models.CharField(_("débiteur"), max_length=10, choices=Invoice.DebtorKind.choices)
    resident = models.ForeignKey(Resident, verbose_name=_("résident"), null=True, blank=True,
                                 on_delete=models.PROTECT, related_name="+")
    relative = models.ForeignKey(Relative, verbose_name=_("proche"), null=True, blank=True,
                                 on_delete=models.PROTECT, related_name="+")
    payer = models.ForeignKey(Payer, verbose_name=_("payeur"), null=True, blank=True, on_delete=models.PROTECT,
                              related_name="+")
    debtor_name = models.CharField(_("débiteur"), max_length=250)
    debtor_address = models.TextField(_("adresse"), blank=True)
    level = models.PositiveSmallIntegerField(_("niveau"), choices=Level.choices)
    total_due = models.DecimalField(_("total dû"), max_digits=12, decimal_places=2)
    pdf = models.FileField(_("PDF"), upload_to="reminders/%Y/%m/", blank=True)
    emails = models.JSONField(_("adresses e-mail"), default=list, blank=True)
    registered_number = models.CharField(_("n° de lettre recommandée"), max_length=40, blank=True)

    class Meta:
        verbose_name = _("lettre de relance")
        verbose_name_plural = _("lettres de relance")
        ordering = ["run", "debtor_name", "pk"]

    def __str__(self):
        return f"{self.debtor_name} — {self.get_level_display()} du {self.run.print_date:%d/%m/%Y}"


class Reminder(models.Model):
    """One invoice at one level in a run: proposed (possibly excluded, with the reason), then sent
    (in a letter) or cancelled (audited, never deleted)."""

    class Status(models.TextChoices):
        PROPOSED = "proposed", _("Proposée")
        SENT = "sent", _("Envoyée")
        SKIPPED = "skipped", _("Non envoyée")
        CANCELLED = "cancelled", _("Annulée")

    run = models.ForeignKey(ReminderRun, verbose_name=_("campagne"), on_delete=models.PROTECT,
                            related_name="reminders")
    letter = models.ForeignKey(ReminderLetter, verbose_name=_("lettre"), null=True, blank=True,
                               on_delete=models.PROTECT, related_name="reminders")
    invoice = models.ForeignKey(Invoice, verbose_name=_("facture"), on_delete=models.PROTECT,
                                related_name="reminders")
    level = models.PositiveSmallIntegerField(_("niveau"), choices=Level.choices)
    amount = models.DecimalField(_("montant"), max_digits=12, decimal_places=2)
    balance = models.DecimalField(_("reste dû"), max_digits=12, decimal_places=2)
    days_late = models.PositiveIntegerField(_("jours de retard"))
    exclusion = models.CharField(_("exclusion"), max_length=20, blank=True)
    exclusion_detail = models.CharField(_("motif"), max_length=250, blank=True)
    selected = models.BooleanField(_("cochée"), default=True)
    status = models.CharField(_("état"), max_length=10, choices=Status.choices, default=Status.PROPOSED)
    print_date = models.DateField(_("date d'impression"))
    cancelled_at = models.DateTimeField(_("annulée le"), null=True, blank=True)
    cancelled_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("annulée par"), null=True,
                                     blank=True, on_delete=models.SET_NULL, related_name="+")
    cancel_reason = models.CharField(_("motif d'annulation"), max_length=250, blank=True)

    class Meta:
        verbose_name = _("relance")
        verbose_name_plural = _("relances")
        ordering = ["invoice", "level", "pk"]
        constraints = [
            # Never twice the same level for an invoice (cancelled ones do not count).
            models.UniqueConstraint(fields=["invoice", "level"], condition=Q(status="sent"),
                                    name="one_sent_reminder_per_invoice_level"),
            models.CheckConstraint(condition=Q(status__in=["proposed", "sent", "skipped"]) | ~Q(cancel_reason=""),
                                   name="cancelled_reminder_has_reason"),
        ]
        indexes = [models.Index(fields=["invoice", "status"])]

    def __str__(self):
        return f"{self.invoice} — {self.get_level_display()} du {self.print_date:%d/%m/%Y}"

    def delete(self, *args, **kwargs):
        if self.status != self.Status.PROPOSED:
            raise ValueError("Une relance envoyée ne se supprime pas : annulez-la avec un motif.")
        return super().delete(*args, **kwargs)
