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
