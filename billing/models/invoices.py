"""Billing engine records (layer 3): periods, package assignments, invoices, lines, number series."""
from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from payers.models import Payer, PayerGroup
from residents.models import Relative, Resident, Stay
from structures.models import Establishment, Section

from .catalog import Package, Product


class StayPackage(models.Model):
    """The accommodation package of a stay from a date (a stay may change package)."""

    stay = models.ForeignKey(Stay, verbose_name=_("séjour"), on_delete=models.CASCADE,
                             related_name="package_assignments")
    package = models.ForeignKey(Package, verbose_name=_("forfait"), on_delete=models.PROTECT, related_name="+")
    valid_from = models.DateField(_("à partir du"))

    class Meta:
        verbose_name = _("forfait du séjour")
        verbose_name_plural = _("forfaits des séjours")
        ordering = ["stay", "-valid_from"]
        constraints = [models.UniqueConstraint(fields=["stay", "valid_from"], name="one_package_per_stay_day")]

    def __str__(self):
        return f"{self.package.code} à partir du {self.valid_from:%d/%m/%Y}"


class BillingPeriod(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", _("Ouverte")
        CLOSED = "closed", _("Clôturée")

    section = models.ForeignKey(Section, verbose_name=_("section"), on_delete=models.PROTECT, related_name="periods")
    start = models.DateField(_("du"))
    end = models.DateField(_("au"))
    accounting_date = models.DateField(_("date de comptabilisation"))
    label = models.CharField(_("libellé"), max_length=60)
    status = models.CharField(_("état"), max_length=8, choices=Status.choices, default=Status.OPEN)
    generated_at = models.DateTimeField(_("générée le"), null=True, blank=True)
    drafts_stale_since = models.DateTimeField(
        _("brouillons à régénérer depuis"), null=True, blank=True,
        help_text=_("Une donnée de facturation a changé après la génération : régénérez avant d'émettre."))
    created_at = models.DateTimeField(_("créée le"), auto_now_add=True)

    class Meta:
        verbose_name = _("période de facturation")
        verbose_name_plural = _("périodes de facturation")
        ordering = ["section", "-start"]
        constraints = [
            models.UniqueConstraint(fields=["section", "start"], name="unique_period_start"),
            models.CheckConstraint(condition=Q(end__gte=models.F("start")), name="period_end_after_start"),
        ]

    def __str__(self):
        return f"{self.section.alias} {self.label}"


class NumberSequence(models.Model):
    """Gapless counter of one series (establishment, kind, year), incremented under a row lock."""

    establishment = models.ForeignKey(Establishment, verbose_name=_("établissement"), on_delete=models.PROTECT,
                                      related_name="+")
    kind = models.CharField(_("série"), max_length=12,
                            choices=[("invoice", _("Factures")), ("credit_note", _("Avoirs")),
                                     ("statement", _("Bordereaux"))])
    year = models.PositiveIntegerField(_("année"))
    last_number = models.PositiveIntegerField(_("dernier numéro"), default=0)

    class Meta:
        verbose_name = _("série de numéros")
        verbose_name_plural = _("séries de numéros")
        constraints = [models.UniqueConstraint(fields=["establishment", "kind", "year"], name="unique_sequence")]

    def __str__(self):
        return f"{self.establishment.code} {self.kind} {self.year} : {self.last_number}"


class IssuedInvoiceError(ValidationError):
    pass


class InvoiceQuerySet(models.QuerySet):
    def delete(self):
        if self.exclude(status=Invoice.Status.DRAFT).exists():
            raise IssuedInvoiceError(_("Une facture émise ne peut pas être supprimée : établissez un avoir."))
        return super().delete()

    def update(self, **kwargs):
        """Bulk updates follow the same rules as ``Invoice.save``: no number (given by the issuing
        service only), status only draft → issued (numbered drafts), nothing frozen on issued rows."""
        fields = {Invoice._meta.get_field(name).attname for name in kwargs}
        if "number" in fields:
            raise IssuedInvoiceError(_("Le numéro d'une facture est attribué par l'émission uniquement."))
        if "status" in fields:
            target = kwargs["status"]
            if target != Invoice.Status.ISSUED and target != Invoice.Status.DRAFT:
                raise IssuedInvoiceError(_("Changement d'état « %(status)s » impossible par une mise à jour groupée : "
                                           "il passe par les services (avoir, règlement).") % {"status": target})
            if self.exclude(status=Invoice.Status.DRAFT).exists():
                raise IssuedInvoiceError(_("Seul un brouillon peut être émis."))
            if target == Invoice.Status.ISSUED and self.filter(number="").exists():
                raise IssuedInvoiceError(_("Une facture s'émet par « Émettre » (numéro attribué à l'émission)."))
        elif fields - Invoice.MUTABLE_WHEN_ISSUED and self.exclude(status=Invoice.Status.DRAFT).exists():
            raise IssuedInvoiceError(_("Une facture émise ne peut plus être modifiée (%(fields)s). Établissez un avoir.")
                                     % {"fields": ", ".join(sorted(fields - Invoice.MUTABLE_WHEN_ISSUED))})
        return super().update(**kwargs)


class Invoice(models.Model):
    class Kind(models.TextChoices):
        INVOICE = "invoice", _("Facture")
        CREDIT_NOTE = "credit_note", _("Avoir")
        RAPPEL = "rappel", _("Facture de rappel")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Brouillon")
        ISSUED = "issued", _("Émise")
        CANCELLED = "cancelled", _("Annulée")

    class DebtorKind(models.TextChoices):
        RESIDENT = "resident", _("Résident")
        RELATIVE = "relative", _("Proche payeur")
        PAYER = "payer", _("Payeur")

    # Fields that may still change once issued (delivery and collection bookkeeping).
    MUTABLE_WHEN_ISSUED = {"pdf", "pdf_rendered_at", "status", "paid_amount", "last_sent_at", "updated_at"}
    # Status changes allowed once issued (draft → issued only through ``billing.services.issuing``;
    # issued → cancelled only when credit notes cover the whole total). Paid states will add theirs.
    TRANSITIONS = {"issued": ("cancelled",)}

    period = models.ForeignKey(BillingPeriod, verbose_name=_("période"), null=True, blank=True,
                               on_delete=models.PROTECT, related_name="invoices")
    section = models.ForeignKey(Section, verbose_name=_("section"), on_delete=models.PROTECT, related_name="invoices")
    establishment = models.ForeignKey(Establishment, verbose_name=_("établissement"), on_delete=models.PROTECT,
                                      related_name="invoices")
    kind = models.CharField(_("type"), max_length=12, choices=Kind.choices, default=Kind.INVOICE)
    status = models.CharField(_("état"), max_length=10, choices=Status.choices, default=Status.DRAFT)
    number = models.CharField(_("numéro"), max_length=30, blank=True)
    debtor_kind = models.CharField(_("débiteur"), max_length=10, choices=DebtorKind.choices)
    resident = models.ForeignKey(Resident, verbose_name=_("résident"), null=True, blank=True,
                                 on_delete=models.PROTECT, related_name="invoices")
    relative = models.ForeignKey(Relative, verbose_name=_("proche"), null=True, blank=True,
                                 on_delete=models.PROTECT, related_name="invoices")
    payer = models.ForeignKey(Payer, verbose_name=_("payeur"), null=True, blank=True, on_delete=models.PROTECT,
                              related_name="invoices")
    payer_group = models.ForeignKey(PayerGroup, verbose_name=_("groupe"), null=True, blank=True,
                                    on_delete=models.PROTECT, related_name="invoices")
    credited_invoice = models.ForeignKey("self", verbose_name=_("facture créditée"), null=True, blank=True,
                                         on_delete=models.PROTECT, related_name="credit_notes")
    comment = models.CharField(_("motif"), max_length=200, blank=True,
                               help_text=_("Motif d'un avoir, imprimé sur le document."))
    date_from = models.DateField(_("du"))
    date_to = models.DateField(_("au"))
    issue_date = models.DateField(_("date d'émission"), null=True, blank=True)
    due_date = models.DateField(_("échéance"), null=True, blank=True)
    total = models.DecimalField(_("total"), max_digits=12, decimal_places=2, default=Decimal("0.00"))
    paid_amount = models.DecimalField(_("réglé"), max_digits=12, decimal_places=2, default=Decimal("0.00"))
    # Identity snapshots copied at issue: later edits of people or establishments never change them.
    debtor_name = models.CharField(_("nom du débiteur"), max_length=250, blank=True)
    debtor_address = models.TextField(_("adresse du débiteur"), blank=True)
    debtor_email = models.CharField(_("e-mail du débiteur"), max_length=250, blank=True)
    resident_name = models.CharField(_("nom du résident"), max_length=250, blank=True)
    establishment_snapshot = models.JSONField(_("identité de l'établissement"), default=dict, blank=True)
    # Chorus Pro data copied from the payer at issue (SIRET, code service, engagement, profile): non-empty
    # means the invoice's PDF is a Factur-X (billing.services.facturx).
    einvoice = models.JSONField(_("données Factur-X (Chorus Pro)"), default=dict, blank=True)
    payment_mode = models.CharField(_("mode de règlement"), max_length=14, blank=True)
    pdf = models.FileField(_("PDF"), upload_to="invoices/%Y/%m/", blank=True)
    pdf_rendered_at = models.DateTimeField(_("PDF produit le"), null=True, blank=True)
    last_sent_at = models.DateTimeField(_("dernier envoi"), null=True, blank=True)
    issued_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("émise par"), null=True, blank=True,
                                  on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("créée le"), auto_now_add=True)
    updated_at = models.DateTimeField(_("modifiée le"), auto_now=True)

    objects = InvoiceQuerySet.as_manager()

    class Meta:
        verbose_name = _("facture")
        verbose_name_plural = _("factures")
        ordering = ["section", "number", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["establishment", "number"], condition=~Q(number=""),
                                    name="unique_invoice_number"),
            models.CheckConstraint(condition=Q(status="draft") | ~Q(number=""), name="issued_invoice_has_number"),
        ]
        indexes = [models.Index(fields=["period", "status"])]

    def __str__(self):
        return self.number or f"Brouillon n° {self.pk}"

    @property
    def is_draft(self) -> bool:
        return self.status == self.Status.DRAFT

    @property
    def balance(self) -> Decimal:
        return self.total - self.paid_amount

    def save(self, *args, **kwargs):
        stored = type(self).objects.filter(pk=self.pk).values().first() if self.pk else None
        if stored is None:
            if self.status != self.Status.DRAFT or self.number:
                raise IssuedInvoiceError(_("Une facture se crée en brouillon, sans numéro : le numéro et l'état "
                                           "« émise » sont donnés par l'émission."))
        elif stored["status"] == self.Status.DRAFT:
            if self.number != stored["number"]:
                raise IssuedInvoiceError(_("Le numéro d'une facture est attribué par l'émission uniquement."))
            if self.status != stored["status"]:
                raise IssuedInvoiceError(_("Une facture brouillon s'émet par « Émettre » (numéro, date, identité du "
                                           "débiteur), pas en changeant son état."))
        else:
            changed = {f.attname for f in self._meta.concrete_fields
                       if f.attname in stored and stored[f.attname] != getattr(self, f.attname)}
            forbidden = changed - self.MUTABLE_WHEN_ISSUED
            if forbidden:
                raise IssuedInvoiceError(
                    _("La facture %(number)s est émise : elle ne peut plus être modifiée (%(fields)s). "
                      "Établissez un avoir.") % {"number": stored["number"], "fields": ", ".join(sorted(forbidden))})
            if "status" in changed:
                self._check_transition(stored["status"], self.status, stored["number"])
        super().save(*args, **kwargs)
        if stored is not None and stored["status"] != self.status:
            self._log_status_change(stored["status"])

    def _log_status_change(self, old: str) -> None:
        from auditlog.models import LogEntry

        LogEntry.objects.log_create(self, action=LogEntry.Action.UPDATE, changes={"status": [old, self.status]})

    def _check_transition(self, old: str, new: str, number: str) -> None:
        if new not in self.TRANSITIONS.get(old, ()):
            raise IssuedInvoiceError(_("La facture %(number)s ne peut pas passer de l'état « %(old)s » à « %(new)s ».")
                                     % {"number": number, "old": self.Status(old).label,
                                        "new": dict(self.Status.choices).get(new, new)})
        if new == self.Status.CANCELLED:
            credited = (self.credit_notes.exclude(status=self.Status.DRAFT)
                        .aggregate(total=models.Sum("total"))["total"] or Decimal("0"))
            if self.kind == self.Kind.CREDIT_NOTE or credited + self.total != 0:
                raise IssuedInvoiceError(_("La facture %(number)s ne peut être annulée que par un avoir de la totalité "
                                           "de son montant.") % {"number": number})

    def delete(self, *args, **kwargs):
        if self.status != self.Status.DRAFT:
            raise IssuedInvoiceError(_("Une facture émise ne peut pas être supprimée : établissez un avoir."))
        return super().delete(*args, **kwargs)


class InvoiceLineQuerySet(models.QuerySet):
    def delete(self):
        if self.exclude(invoice__status=Invoice.Status.DRAFT).exists():
            raise IssuedInvoiceError(_("Les lignes d'une facture émise ne peuvent pas être supprimées."))
        return super().delete()


class InvoiceLine(models.Model):
    class Reason(models.TextChoices):
        PRESENCE = "presence", _("Présence")
        ABSENCE_HOSPITAL = "absence_hospital", _("Absence pour hospitalisation (à partir du 4e jour)")
        ABSENCE_PSY = "absence_psy", _("Absence pour hospitalisation psychiatrique (à partir du 4e jour)")
        ABSENCE_CONVENIENCE = "absence_convenience", _("Absence pour convenance personnelle (à partir du 4e jour)")
        ABSENCE_CONVENIENCE_OVER_CAP = "absence_convenience_cap", _("Absence pour convenance au-delà du plafond annuel")
        AFTER_DEATH = "after_death", _("Après décès, effets personnels dans la chambre")
        MONTHLY = "monthly", _("Forfait mensuel")
        SOCIAL_AID_CONTRIBUTION = "ash_contribution", _("Participation du résident à l'aide sociale")
        RAPPEL = "rappel", _("Rappel de tarif")
        CREDIT = "credit", _("Avoir")
        MANUAL = "manual", _("Saisie manuelle")
        REGULARISATION = "regularisation", _("Régularisation")
        POCKET_MONEY = "pocket_money", _("Régularisation trimestrielle de l'argent de poche")

    invoice = models.ForeignKey(Invoice, verbose_name=_("facture"), on_delete=models.CASCADE, related_name="lines")
    resident = models.ForeignKey(Resident, verbose_name=_("résident"), null=True, blank=True,
                                 on_delete=models.PROTECT, related_name="+")
    stay = models.ForeignKey(Stay, verbose_name=_("séjour"), null=True, blank=True, on_delete=models.PROTECT,
                             related_name="+")
    product = models.ForeignKey(Product, verbose_name=_("produit"), null=True, blank=True, on_delete=models.PROTECT,
                                related_name="+")
    label = models.CharField(_("libellé"), max_length=250)
    reason = models.CharField(_("motif"), max_length=24, choices=Reason.choices, default=Reason.PRESENCE)
    date_from = models.DateField(_("du"))
    date_to = models.DateField(_("au"))
    quantity = models.DecimalField(_("quantité"), max_digits=10, decimal_places=2)
    unit_price = models.DecimalField(_("prix unitaire"), max_digits=10, decimal_places=2)
    amount = models.DecimalField(_("montant"), max_digits=12, decimal_places=2)
    vat_rate = models.DecimalField(_("TVA (%)"), max_digits=5, decimal_places=2, default=Decimal("0"))
    # For credit notes: the line of the credited invoice this line corrects (per-line limits, §6).
    credited_line = models.ForeignKey("self", verbose_name=_("ligne créditée"), null=True, blank=True,
                                      on_delete=models.PROTECT, related_name="credits")
    # For rappels: the unit price that was invoiced before.
    previous_unit_price = models.DecimalField(_("ancien prix"), max_digits=10, decimal_places=2, null=True, blank=True)
    position = models.PositiveIntegerField(_("position"), default=0)

    objects = InvoiceLineQuerySet.as_manager()

    class Meta:
        verbose_name = _("ligne de facture")
        verbose_name_plural = _("lignes de facture")
        ordering = ["invoice", "position", "pk"]

    def __str__(self):
        return self.label

    def save(self, *args, **kwargs):
        if self.invoice_id and Invoice.objects.filter(pk=self.invoice_id).exclude(status=Invoice.Status.DRAFT).exists():
            raise IssuedInvoiceError(_("Les lignes d'une facture émise ne peuvent pas être modifiées."))
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        if self.invoice.status != Invoice.Status.DRAFT:
            raise IssuedInvoiceError(_("Les lignes d'une facture émise ne peuvent pas être supprimées."))
        return super().delete(*args, **kwargs)
