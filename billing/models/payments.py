"""Payments and their allocations to invoices (billing engine, layer 3).

Entries only: a payment, a refund and an allocation are never updated in their amounts nor deleted.
Cancelling a payment keeps the row (``cancelled_at`` + reason) and adds negative allocations that
reverse what it paid; a manual re-allocation does the same. An invoice's paid amount is the sum of
its allocations (``Invoice.paid_amount`` is the cache of that sum, written in the same transaction).
"""
from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from payers.models import Payer
from residents.models import Relative, Resident
from structures.models import Section

from .invoices import Invoice


class PaymentQuerySet(models.QuerySet):
    def delete(self):
        raise PaymentDeleteError(_("Un règlement ne se supprime pas : annulez-le avec un motif."))


class PaymentDeleteError(Exception):
    pass


class PaymentBatch(models.Model):
    """Payments keyed together (a day's cheques or transfers); for cheques it prints the
    *bordereau de remise de chèques* given to the bank."""

    section = models.ForeignKey(Section, verbose_name=_("section"), on_delete=models.PROTECT,
                                related_name="payment_batches")
    date = models.DateField(_("date de remise"))
    mode = models.CharField(_("mode"), max_length=14)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("saisi par"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("saisi le"), auto_now_add=True)

    class Meta:
        verbose_name = _("remise de règlements")
        verbose_name_plural = _("remises de règlements")
        ordering = ["section", "-date", "-pk"]

    def __str__(self):
        return f"{self.reference} du {self.date:%d/%m/%Y}"

    @property
    def reference(self) -> str:
        return f"REM-{self.pk:06d}"


class Payment(models.Model):
    class Kind(models.TextChoices):
        PAYMENT = "payment", _("Règlement")
        REFUND = "refund", _("Remboursement")

    class Mode(models.TextChoices):
        CHEQUE = "cheque", _("Chèque")
        TRANSFER = "transfer", _("Virement")
        CASH = "cash", _("Espèces")
        DIRECT_DEBIT = "direct_debit", _("Prélèvement")
        PAYER = "payer", _("Payeur")

    section = models.ForeignKey(Section, verbose_name=_("section"), on_delete=models.PROTECT, related_name="payments")
    kind = models.CharField(_("type"), max_length=8, choices=Kind.choices, default=Kind.PAYMENT)
    # The debtor, identified like an invoice's: resident, paying relative (with its resident) or payer.
    debtor_kind = models.CharField(_("débiteur"), max_length=10, choices=Invoice.DebtorKind.choices)
    resident = models.ForeignKey(Resident, verbose_name=_("résident"), null=True, blank=True,
                                 on_delete=models.PROTECT, related_name="payments")
    relative = models.ForeignKey(Relative, verbose_name=_("proche"), null=True, blank=True,
                                 on_delete=models.PROTECT, related_name="payments")
    payer = models.ForeignKey(Payer, verbose_name=_("payeur"), null=True, blank=True, on_delete=models.PROTECT,
                              related_name="payments")
    invoice = models.ForeignKey(Invoice, verbose_name=_("facture désignée"), null=True, blank=True,
                                on_delete=models.PROTECT, related_name="named_payments",
                                help_text=_("La facture que le règlement désigne ; il lui est imputé en premier."))
    batch = models.ForeignKey(PaymentBatch, verbose_name=_("remise"), null=True, blank=True,
                              on_delete=models.PROTECT, related_name="payments")
    date = models.DateField(_("date"))
    amount = models.DecimalField(_("montant"), max_digits=12, decimal_places=2)
    mode = models.CharField(_("mode"), max_length=14, choices=Mode.choices)
    reference = models.CharField(_("référence"), max_length=80, blank=True,
                                 help_text=_("N° de chèque, libellé du virement…"))
    bank = models.CharField(_("banque"), max_length=80, blank=True)
    drawer = models.CharField(_("tireur"), max_length=120, blank=True)
    comment = models.CharField(_("commentaire"), max_length=250, blank=True)
    entered_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("saisi par"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("saisi le"), auto_now_add=True)
    cancelled_at = models.DateTimeField(_("annulé le"), null=True, blank=True)
    cancelled_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("annulé par"), null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="+")
    cancel_reason = models.CharField(_("motif d'annulation"), max_length=250, blank=True)

    objects = PaymentQuerySet.as_manager()

    class Meta:
        verbose_name = _("règlement")
        verbose_name_plural = _("règlements")
        ordering = ["section", "-date", "-pk"]
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="payment_amount_positive"),
            models.CheckConstraint(condition=Q(cancelled_at__isnull=True) | ~Q(cancel_reason=""),
                                   name="payment_cancel_has_reason"),
        ]
        indexes = [models.Index(fields=["section", "debtor_kind", "resident", "relative", "payer"])]

    def __str__(self):
        return f"{self.get_kind_display()} {self.get_mode_display()} {self.amount} € du {self.date:%d/%m/%Y}"

    @property
    def is_cancelled(self) -> bool:
        return self.cancelled_at is not None

    @property
    def signed_amount(self) -> Decimal:
        """What the entry does to the debtor's balance: a payment lowers it, a refund raises it."""
        return -self.amount if self.kind == self.Kind.PAYMENT else self.amount

    def delete(self, *args, **kwargs):
        raise PaymentDeleteError(_("Un règlement ne se supprime pas : annulez-le avec un motif."))


class PaymentAllocationQuerySet(models.QuerySet):
    def delete(self):
        raise PaymentDeleteError(_("Une imputation ne se supprime pas : elle s'annule par une imputation inverse."))


class PaymentAllocation(models.Model):
    """``amount`` of a payment or of a credit note put on ``invoice``. A negative amount reverses an
    earlier allocation (cancellation, re-allocation): the invoice's paid amount is the sum."""

    invoice = models.ForeignKey(Invoice, verbose_name=_("facture"), on_delete=models.PROTECT,
                                related_name="allocations")
    payment = models.ForeignKey(Payment, verbose_name=_("règlement"), null=True, blank=True,
                                on_delete=models.PROTECT, related_name="allocations")
    credit_note = models.ForeignKey(Invoice, verbose_name=_("avoir"), null=True, blank=True,
                                    on_delete=models.PROTECT, related_name="credit_allocations")
    amount = models.DecimalField(_("montant"), max_digits=12, decimal_places=2)
    date = models.DateField(_("date"))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    objects = PaymentAllocationQuerySet.as_manager()

    class Meta:
        verbose_name = _("imputation")
        verbose_name_plural = _("imputations")
        ordering = ["invoice", "created_at", "pk"]
        constraints = [
            models.CheckConstraint(condition=(Q(payment__isnull=False) & Q(credit_note__isnull=True))
                                   | (Q(payment__isnull=True) & Q(credit_note__isnull=False)),
                                   name="allocation_one_source"),
            models.CheckConstraint(condition=~Q(amount=0), name="allocation_not_zero"),
        ]

    def __str__(self):
        return f"{self.amount} € → {self.invoice}"

    def save(self, *args, **kwargs):
        if self.pk:
            raise PaymentDeleteError(_("Une imputation ne se modifie pas : elle s'annule par une imputation inverse."))
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PaymentDeleteError(_("Une imputation ne se supprime pas : elle s'annule par une imputation inverse."))
