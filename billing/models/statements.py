"""Payer statements (*bordereaux*, billing engine layer 3): what a payer is sent for a period — the sum
of its issued invoices, one statement for all its beneficiaries (*global*) or one per beneficiary
(*individuel*), with the credit notes on invoices of earlier validated statements as deductions."""
from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from payers.models import Payer, PayerGroup
from residents.models import Resident
from structures.models import Establishment, Section

from .invoices import BillingPeriod, Invoice


class StatementQuerySet(models.QuerySet):
    def delete(self):
        if self.exclude(status=Statement.Status.DRAFT).exists():
            raise ValidationError(_("Un bordereau validé ne se supprime pas."))
        return super().delete()


class Statement(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Créé")
        VALIDATED = "validated", _("Validé")

    section = models.ForeignKey(Section, verbose_name=_("section"), on_delete=models.PROTECT, related_name="+")
    establishment = models.ForeignKey(Establishment, verbose_name=_("établissement"), on_delete=models.PROTECT,
                                      related_name="+")
    period = models.ForeignKey(BillingPeriod, verbose_name=_("période"), null=True, blank=True,
                               on_delete=models.PROTECT, related_name="statements",
                               help_text=_("Vide : bordereau sur une plage de dates (payeurs facturés au trimestre)."))
    date_from = models.DateField(_("du"), null=True, blank=True)
    date_to = models.DateField(_("au"), null=True, blank=True)
    payer = models.ForeignKey(Payer, verbose_name=_("payeur"), on_delete=models.PROTECT, related_name="statements")
    payer_group = models.ForeignKey(PayerGroup, verbose_name=_("groupe"), null=True, blank=True,
                                    on_delete=models.PROTECT, related_name="statements")
    resident = models.ForeignKey(Resident, verbose_name=_("bénéficiaire"), null=True, blank=True,
                                 on_delete=models.PROTECT, related_name="statements",
                                 help_text=_("Bordereau individuel : son seul bénéficiaire."))
    status = models.CharField(_("état"), max_length=10, choices=Status.choices, default=Status.DRAFT)
    number = models.CharField(_("numéro"), max_length=30, blank=True)
    statement_date = models.DateField(_("date du bordereau"))
    total = models.DecimalField(_("total"), max_digits=12, decimal_places=2, default=Decimal("0.00"))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("créé par"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("créé le"), auto_now_add=True)
    validated_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("validé par"), null=True,
                                     blank=True, on_delete=models.SET_NULL, related_name="+")
    validated_at = models.DateTimeField(_("validé le"), null=True, blank=True)
    last_sent_at = models.DateTimeField(_("dernier envoi"), null=True, blank=True)

    objects = StatementQuerySet.as_manager()

    class Meta:
        verbose_name = _("bordereau")
        verbose_name_plural = _("bordereaux")
        ordering = ["section", "-statement_date", "number", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["establishment", "number"], condition=~Q(number=""),
                                    name="unique_statement_number"),
            models.CheckConstraint(condition=Q(status="draft") | ~Q(number=""), name="validated_statement_has_number"),
        ]

    def __str__(self):
        return self.number or f"Bordereau provisoire n° {self.pk}"

    def delete(self, *args, **kwargs):
        if self.status != self.Status.DRAFT:
            raise ValidationError(_("Un bordereau validé ne se supprime pas."))
        return super().delete(*args, **kwargs)

    @property
    def period_label(self) -> str:
        """The period's label, or « du JJ/MM/AAAA au JJ/MM/AAAA » for a date-range statement."""
        if self.period_id:
            return self.period.label
        return _("du %(start)s au %(end)s") % {"start": self.date_from.strftime("%d/%m/%Y"),
                                               "end": self.date_to.strftime("%d/%m/%Y")}


class StatementLine(models.Model):
    """One beneficiary of one invoice on a statement (a payer's invoice has lines for several
    residents); a credit note on an invoice of an earlier validated statement is a *déduction*."""

    statement = models.ForeignKey(Statement, verbose_name=_("bordereau"), on_delete=models.CASCADE,
                                  related_name="lines")
    invoice = models.ForeignKey(Invoice, verbose_name=_("facture ou avoir"), on_delete=models.PROTECT,
                                related_name="statement_lines")
    resident = models.ForeignKey(Resident, verbose_name=_("bénéficiaire"), null=True, blank=True,
                                 on_delete=models.PROTECT, related_name="+")
    resident_name = models.CharField(_("bénéficiaire"), max_length=250)
    days = models.DecimalField(_("jours"), max_digits=8, decimal_places=2, default=Decimal("0"))
    amount = models.DecimalField(_("montant"), max_digits=12, decimal_places=2)
    is_deduction = models.BooleanField(_("déduction"), default=False)

    class Meta:
        verbose_name = _("ligne de bordereau")
        verbose_name_plural = _("lignes de bordereau")
        ordering = ["statement", "resident_name", "pk"]
        constraints = [models.UniqueConstraint(fields=["invoice", "resident"], name="one_statement_line_per_beneficiary",
                                               nulls_distinct=False)]

    def __str__(self):
        return f"{self.statement} {self.invoice}"
