"""Import runs (who, when, which files, result, report) and the absence-code correspondence table."""
from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from residents.models import AbsenceReason
from structures.models import Establishment, Section


class ImportRun(models.Model):
    class Kind(models.TextChoices):
        RESIDENTS = "residents", _("Résidents et proches (XLSX)")
        ABSENCES = "absences", _("Absences (CSV)")
        PAYMENTS = "payments", _("Règlements (CSV)")
        BANK_STATEMENT = "bank_stmt", _("Relevé bancaire (camt.053)")

    class Status(models.TextChoices):
        PENDING = "pending", _("En cours")
        VALIDATED = "validated", _("Validé, en attente de confirmation")
        REJECTED = "rejected", _("Refusé (erreurs)")
        IMPORTED = "imported", _("Importé")
        FAILED = "failed", _("Échec")

    kind = models.CharField(_("type"), max_length=12, choices=Kind.choices)
    status = models.CharField(_("état"), max_length=10, choices=Status.choices)
    section = models.ForeignKey(Section, verbose_name=_("section"), null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="import_runs")
    establishment = models.ForeignKey(Establishment, verbose_name=_("établissement"), null=True, blank=True,
                                      on_delete=models.SET_NULL, related_name="import_runs")
    month = models.DateField(_("mois importé"), null=True, blank=True)
    files = models.JSONField(_("fichiers"), default=list, blank=True,
                             help_text=_("Noms, tailles et empreintes SHA-256 des fichiers reçus."))
    stored_files = models.JSONField(_("fichiers conservés"), default=list, blank=True)
    dry_run = models.BooleanField(_("simulation"), default=False)
    summary = models.JSONField(_("résumé"), default=dict, blank=True)
    report = models.JSONField(_("rapport"), default=list, blank=True,
                              help_text=_("Erreurs et avertissements : fichier, feuille, ligne, colonne, valeur, message."))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("par"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("le"), default=timezone.now)
    job = models.ForeignKey("core.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name = _("import")
        verbose_name_plural = _("imports")
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.get_kind_display()} du {self.created_at:%d/%m/%Y %H:%M} ({self.get_status_display()})"


class AbsenceCodeMapping(models.Model):
    """Correspondence table: the other software's one-character code → Séjour's absence reason."""

    establishment = models.ForeignKey(Establishment, verbose_name=_("établissement"), on_delete=models.CASCADE,
                                      related_name="absence_code_mappings")
    external_code = models.CharField(_("code externe (CODEEXT)"), max_length=1)
    reason = models.ForeignKey(AbsenceReason, verbose_name=_("motif (CODEMR)"), on_delete=models.CASCADE,
                               related_name="+")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("correspondance de code d'absence")
        verbose_name_plural = _("table de correspondance des absences")
        ordering = ["establishment", "external_code"]
        constraints = [models.UniqueConstraint(fields=["establishment", "external_code"],
                                               name="unique_external_absence_code")]

    def __str__(self):
        return f"{self.external_code} → {self.reason.code}"


class BankStatementEntry(models.Model):
    """One booked transaction of a camt.053 bank statement (an entry, or one transaction of a batch
    entry). Kept so that importing the same statement twice records nothing new (``entry_ref`` is the
    bank's reference, unique per section and account) and so that the lines not matched to an invoice
    wait for a clerk on the manual matching screen."""

    class Direction(models.TextChoices):
        CREDIT = "CRDT", _("Crédit")
        DEBIT = "DBIT", _("Débit")

    class Status(models.TextChoices):
        MATCHED = "matched", _("Rapproché automatiquement")
        PENDING = "pending", _("À rapprocher")
        MANUAL = "manual", _("Rapproché à la main")
        IGNORED = "ignored", _("Écarté")

    run = models.ForeignKey(ImportRun, verbose_name=_("import"), on_delete=models.PROTECT, related_name="bank_entries")
    section = models.ForeignKey(Section, verbose_name=_("section"), on_delete=models.PROTECT,
                                related_name="bank_entries")
    account = models.CharField(_("compte (IBAN)"), max_length=34, blank=True)
    entry_ref = models.CharField(_("référence bancaire"), max_length=140)
    booking_date = models.DateField(_("date de comptabilisation"))
    amount = models.DecimalField(_("montant"), max_digits=12, decimal_places=2)
    direction = models.CharField(_("sens"), max_length=4, choices=Direction.choices)
    remittance = models.CharField(_("libellé"), max_length=500, blank=True)
    counterparty = models.CharField(_("contrepartie"), max_length=140, blank=True)
    status = models.CharField(_("état"), max_length=8, choices=Status.choices)
    reason = models.CharField(_("motif"), max_length=250, blank=True)
    payment = models.ForeignKey("billing.Payment", verbose_name=_("règlement"), null=True, blank=True,
                                on_delete=models.PROTECT, related_name="bank_entries")
    processed_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("traité par"), null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="+")
    processed_at = models.DateTimeField(_("traité le"), null=True, blank=True)

    class Meta:
        verbose_name = _("ligne de relevé bancaire")
        verbose_name_plural = _("lignes de relevés bancaires")
        ordering = ["section", "booking_date", "pk"]
        constraints = [models.UniqueConstraint(fields=["section", "account", "entry_ref"],
                                               name="unique_bank_entry_ref")]
        indexes = [models.Index(fields=["section", "status"])]

    def __str__(self):
        return f"{self.entry_ref} {self.get_direction_display()} {self.amount} € du {self.booking_date:%d/%m/%Y}"
