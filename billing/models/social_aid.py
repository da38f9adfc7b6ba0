"""The quarterly pocket-money settlement of a resident under social aid (billing-rules §8), once issued:
one row per decision and quarter (re-running a quarter never issues twice), with the documents it
issued — the credit note(s) giving the resident back what the quarter's contributions took from the
pocket money, and the invoice of the same amount to the département (net model) — or none when the
quarter was confirmed at zero."""
from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from payers.models import Payer, SocialAidDecision
from residents.models import Resident
from structures.models import Section

from .invoices import Invoice


class PocketMoneySettlement(models.Model):
    section = models.ForeignKey(Section, verbose_name=_("section"), on_delete=models.PROTECT, related_name="+")
    quarter = models.CharField(_("trimestre"), max_length=7, help_text=_("AAAA-T1 … AAAA-T4"))
    decision = models.ForeignKey(SocialAidDecision, verbose_name=_("décision d'aide sociale"),
                                 on_delete=models.PROTECT, related_name="pocket_money_settlements")
    payer = models.ForeignKey(Payer, verbose_name=_("département"), on_delete=models.PROTECT, related_name="+")
    resident = models.ForeignKey(Resident, verbose_name=_("résident"), on_delete=models.PROTECT, related_name="+")
    resident_name = models.CharField(_("résident"), max_length=250)
    months = models.PositiveSmallIntegerField(_("mois"))
    resources = models.DecimalField(_("ressources du trimestre"), max_digits=12, decimal_places=2)
    contributions = models.DecimalField(_("participations facturées"), max_digits=12, decimal_places=2)
    minimum = models.DecimalField(_("minimum mensuel"), max_digits=10, decimal_places=2)
    refund = models.DecimalField(_("argent de poche rendu"), max_digits=12, decimal_places=2,
                                 default=Decimal("0.00"))
    credit_notes = models.ManyToManyField(Invoice, verbose_name=_("avoirs au résident"), blank=True,
                                          related_name="+")
    payer_invoice = models.ForeignKey(Invoice, verbose_name=_("facture au département"), null=True, blank=True,
                                      on_delete=models.PROTECT, related_name="+")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("par"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("le"), auto_now_add=True)

    class Meta:
        verbose_name = _("régularisation d'argent de poche")
        verbose_name_plural = _("régularisations d'argent de poche")
        ordering = ["section", "-quarter", "payer", "resident_name"]
        constraints = [models.UniqueConstraint(fields=["decision", "quarter"], name="one_pocket_money_per_quarter")]

    def __str__(self):
        return f"{self.quarter} {self.resident_name}"
