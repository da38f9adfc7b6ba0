"""SEPA direct-debit mandates (the debit batches and pain.008 files come with the SEPA issue)."""
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from residents.models import Relative, Resident
from structures.models import Establishment

# EPC Latin character set for identifiers; no leading/trailing "/" and no "//".
RUM_VALIDATOR = RegexValidator(
    r"^(?!/)(?!.*//)[A-Za-z0-9/\-?:().,'+ ]{1,35}(?<!/)$",
    _("RUM invalide : 35 caractères au plus parmi A-Z a-z 0-9 / - ? : ( ) . , ' + et espace, "
      "sans « / » au début ou à la fin ni « // »."))


class Mandate(models.Model):
    """A debtor's SEPA mandate for one creditor (establishment). Mandate status, next sequence type
    and debit batches are three separate things (OCA bank-payment lesson)."""

    class Status(models.TextChoices):
        PENDING = "pending", _("À signer")
        ACTIVE = "active", _("Actif")
        REVOKED = "revoked", _("Révoqué")
        EXPIRED = "expired", _("Caduc (36 mois sans prélèvement)")

    class SequenceType(models.TextChoices):
        FRST = "FRST", _("Premier prélèvement (FRST)")
        RCUR = "RCUR", _("Récurrent (RCUR)")

    establishment = models.ForeignKey(Establishment, verbose_name=_("créancier"), on_delete=models.PROTECT,
                                      related_name="mandates")
    resident = models.ForeignKey(Resident, verbose_name=_("résident"), on_delete=models.PROTECT,
                                 related_name="mandates")
    relative = models.ForeignKey(Relative, verbose_name=_("proche débiteur"), null=True, blank=True,
                                 on_delete=models.PROTECT, related_name="mandates",
                                 help_text=_("Vide : le résident est le débiteur."))
    rum = models.CharField(_("RUM"), max_length=35, validators=[RUM_VALIDATOR])
    iban = models.CharField(_("IBAN"), max_length=34)
    bic = models.CharField(_("BIC"), max_length=11, blank=True)
    account_holder = models.CharField(_("titulaire du compte"), max_length=140)
    signature_date = models.DateField(_("date de signature"), null=True, blank=True)
    status = models.CharField(_("état"), max_length=8, choices=Status.choices, default=Status.PENDING)
    next_sequence_type = models.CharField(_("prochaine séquence"), max_length=4, choices=SequenceType.choices,
                                          default=SequenceType.FRST)
    last_collection_date = models.DateField(_("dernier prélèvement"), null=True, blank=True)
    original_iban = models.CharField(_("IBAN d'origine (amendement)"), max_length=34, blank=True,
                                     help_text=_("Renseigné quand l'IBAN change : amendement SMNDA au prochain prélèvement."))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("mandat SEPA")
        verbose_name_plural = _("mandats SEPA")
        ordering = ["establishment", "rum"]
        constraints = [
            models.UniqueConstraint(fields=["establishment", "rum"], name="unique_rum_per_creditor"),
            models.CheckConstraint(condition=~Q(status="active") | Q(signature_date__isnull=False),
                                   name="active_mandate_is_signed"),
        ]

    def __str__(self):
        return f"{self.rum} — {self.account_holder}"
