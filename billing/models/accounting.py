"""Accounting export (books.md §2): the account map of an establishment and the exported entries.

An export (``AccountingExport``) holds the entries (``AccountingEntry`` + ``AccountingLine``) built
from the issued invoices and the payments of a date range. Each source (an invoice, a payment, its
cancellation, a refund, a bank return…) is exported once: its ``source_key`` is unique per
establishment. A draft export can be rebuilt; once « transmis à la comptabilité » its entries are
frozen (the models refuse changes) and later entries go to the next export.
"""
from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from structures.models import Establishment

from .catalog import Product

ACCOUNT_VALIDATOR = RegexValidator(r"^\d{3}[0-9A-Z]{0,17}$",
                                   _("Un compte commence par 3 chiffres du plan comptable (ex. 411, 73531)."))
JOURNAL_VALIDATOR = RegexValidator(r"^[A-Z0-9]{1,6}$", _("1 à 6 lettres majuscules ou chiffres."))


class Financing(models.TextChoices):
    """Who finances a line: the resident's share (resident or paying relative) or a payer's kind."""

    RESIDENT = "resident", _("Résident (usager)")
    DEPARTEMENT = "departement", _("Département")
    HEALTH_INSURANCE = "health_insurance", _("Assurance maladie")
    PENSION_FUND = "pension_fund", _("Caisse de retraite")
    MUTUAL = "mutual", _("Mutuelle")
    OTHER = "other", _("Autre payeur")


class AccountMap(models.Model):
    """The accounts of one establishment's exports (editable by managers; defaults per legal status)."""

    establishment = models.OneToOneField(Establishment, verbose_name=_("établissement"), on_delete=models.CASCADE,
                                         related_name="account_map")
    sales_journal = models.CharField(_("journal des ventes"), max_length=6, default="VT",
                                     validators=[JOURNAL_VALIDATOR])
    sales_journal_label = models.CharField(_("libellé du journal des ventes"), max_length=60, default="Ventes")
    bank_journal = models.CharField(_("journal des règlements"), max_length=6, default="BQ",
                                    validators=[JOURNAL_VALIDATOR])
    bank_journal_label = models.CharField(_("libellé du journal des règlements"), max_length=60, default="Banque")
    customer_account = models.CharField(_("compte collectif clients"), max_length=20, default="411",
                                        validators=[ACCOUNT_VALIDATOR],
                                        help_text=_("Avec un compte auxiliaire par débiteur (résident, proche, payeur "
                                                    "sans compte propre)."))
    default_revenue_account = models.CharField(_("compte de produits par défaut"), max_length=20, default="7088",
                                               validators=[ACCOUNT_VALIDATOR],
                                               help_text=_("Pour une ligne qu'aucune règle ne classe."))
    cheque_account = models.CharField(_("compte des chèques"), max_length=20, default="512",
                                      validators=[ACCOUNT_VALIDATOR])
    transfer_account = models.CharField(_("compte des virements"), max_length=20, default="512",
                                        validators=[ACCOUNT_VALIDATOR])
    direct_debit_account = models.CharField(_("compte des prélèvements"), max_length=20, default="512",
                                            validators=[ACCOUNT_VALIDATOR])
    payer_account = models.CharField(_("compte des versements des payeurs"), max_length=20, default="512",
                                     validators=[ACCOUNT_VALIDATOR])
    cash_account = models.CharField(_("compte de caisse"), max_length=20, default="530",
                                    validators=[ACCOUNT_VALIDATOR])
    pocket_money_account = models.CharField(_("compte de l'argent de poche"), max_length=20, default="4671",
                                            validators=[ACCOUNT_VALIDATOR],
                                            help_text=_("Argent de poche des résidents à l'aide sociale (à convenir "
                                                        "avec le comptable)."))
    split_by_financing = models.BooleanField(
        _("décomposer les factures par financement"), default=True,
        help_text=_("Les produits d'une facture adressée à un payeur vont sur le compte de ce financement "
                    "(ex. 735221 pour l'hébergement payé par le département) ; sinon sur le compte de la nature "
                    "du produit."))

    class Meta:
        verbose_name = _("plan de comptes d'export")
        verbose_name_plural = _("plans de comptes d'export")

    def __str__(self):
        return f"Comptes de {self.establishment}"

    def bank_account_for(self, mode: str) -> str:
        return {"cheque": self.cheque_account, "transfer": self.transfer_account,
                "direct_debit": self.direct_debit_account, "payer": self.payer_account,
                "cash": self.cash_account}.get(mode, self.transfer_account)


class RevenueAccount(models.Model):
    """Revenue account of (product kind × financing); an empty product kind covers every kind."""

    account_map = models.ForeignKey(AccountMap, verbose_name=_("plan de comptes"), on_delete=models.CASCADE,
                                    related_name="revenue_accounts")
    product_kind = models.CharField(_("nature de produit"), max_length=16, choices=Product.Kind.choices, blank=True,
                                    help_text=_("Vide : toutes les natures."))
    financing = models.CharField(_("financement"), max_length=20, choices=Financing.choices)
    account = models.CharField(_("compte"), max_length=20, validators=[ACCOUNT_VALIDATOR])
    label = models.CharField(_("libellé du compte"), max_length=80, blank=True)

    class Meta:
        verbose_name = _("compte de produits")
        verbose_name_plural = _("comptes de produits")
        ordering = ["account_map", "financing", "product_kind"]
        constraints = [models.UniqueConstraint(fields=["account_map", "product_kind", "financing"],
                                               name="unique_revenue_account")]

    def __str__(self):
        kind = self.get_product_kind_display() or _("Toutes natures")
        return f"{kind} / {self.get_financing_display()} → {self.account}"


class FrozenExportError(ValidationError):
    pass


class AccountingExport(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Brouillon")
        TRANSMITTED = "transmitted", _("Transmis à la comptabilité")

    establishment = models.ForeignKey(Establishment, verbose_name=_("établissement"), on_delete=models.PROTECT,
                                      related_name="accounting_exports")
    date_from = models.DateField(_("du"))
    date_to = models.DateField(_("au"))
    status = models.CharField(_("état"), max_length=12, choices=Status.choices, default=Status.DRAFT)
    split_by_financing = models.BooleanField(_("décomposé par financement"), default=True)
    letters_count = models.PositiveIntegerField(_("lettrages"), default=0)
    created_at = models.DateTimeField(_("créé le"), auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("créé par"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    transmitted_at = models.DateTimeField(_("transmis le"), null=True, blank=True)
    transmitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("transmis par"), null=True, blank=True,
                                       on_delete=models.SET_NULL, related_name="+")
    fec_sha256 = models.CharField(_("empreinte du FEC transmis"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("export comptable")
        verbose_name_plural = _("exports comptables")
        ordering = ["establishment", "-date_to", "-pk"]

    def __str__(self):
        return f"{self.establishment.code} du {self.date_from:%d/%m/%Y} au {self.date_to:%d/%m/%Y}"

    @property
    def is_transmitted(self) -> bool:
        return self.status == self.Status.TRANSMITTED

    def delete(self, *args, **kwargs):
        if self.is_transmitted:
            raise FrozenExportError(_("Un export transmis à la comptabilité ne se supprime pas."))
        return super().delete(*args, **kwargs)


class _FrozenQuerySet(models.QuerySet):
    """Bulk changes refused on rows of transmitted exports (``export_path`` leads to the export)."""

    export_path = "export"

    def _check_open(self):
        if self.filter(**{f"{self.export_path}__status": AccountingExport.Status.TRANSMITTED}).exists():
            raise FrozenExportError(_("Cet export est transmis à la comptabilité : ses écritures ne changent plus."))

    def update(self, **kwargs):
        self._check_open()
        return super().update(**kwargs)

    def delete(self):
        self._check_open()
        return super().delete()


class EntryQuerySet(_FrozenQuerySet):
    export_path = "export"


class LineQuerySet(_FrozenQuerySet):
    export_path = "entry__export"


class AccountingEntry(models.Model):
    """One balanced entry (écriture) of an export: ``number`` continues per journal and establishment."""

    export = models.ForeignKey(AccountingExport, verbose_name=_("export"), on_delete=models.CASCADE,
                               related_name="entries")
    establishment = models.ForeignKey(Establishment, verbose_name=_("établissement"), on_delete=models.PROTECT,
                                      related_name="+")
    journal = models.CharField(_("journal"), max_length=6)
    journal_label = models.CharField(_("libellé du journal"), max_length=60)
    number = models.PositiveIntegerField(_("n° d'écriture"))
    date = models.DateField(_("date"))
    piece_ref = models.CharField(_("pièce"), max_length=40)
    piece_date = models.DateField(_("date de la pièce"))
    label = models.CharField(_("libellé"), max_length=200)
    # "invoice:12", "payment:5", "payment-cancel:5", "refund:9", "bank-return:…": each exported once.
    source_key = models.CharField(_("origine"), max_length=60)

    objects = EntryQuerySet.as_manager()

    class Meta:
        verbose_name = _("écriture comptable")
        verbose_name_plural = _("écritures comptables")
        ordering = ["export", "journal", "number"]
        constraints = [
            models.UniqueConstraint(fields=["establishment", "source_key"], name="entry_source_once"),
            models.UniqueConstraint(fields=["establishment", "journal", "number"], name="entry_number_once"),
        ]

    def __str__(self):
        return f"{self.journal} {self.number} {self.piece_ref}"

    def _check_open(self):
        if AccountingExport.objects.filter(pk=self.export_id, status=AccountingExport.Status.TRANSMITTED).exists():
            raise FrozenExportError(_("Cet export est transmis à la comptabilité : ses écritures ne changent plus."))

    def save(self, *args, **kwargs):
        self._check_open()
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        self._check_open()
        return super().delete(*args, **kwargs)


class AccountingLine(models.Model):
    entry = models.ForeignKey(AccountingEntry, verbose_name=_("écriture"), on_delete=models.CASCADE,
                              related_name="lines")
    position = models.PositiveIntegerField(_("position"), default=0)
    account = models.CharField(_("compte"), max_length=20)
    account_label = models.CharField(_("libellé du compte"), max_length=80, blank=True)
    aux_account = models.CharField(_("compte auxiliaire"), max_length=20, blank=True)
    aux_label = models.CharField(_("libellé auxiliaire"), max_length=120, blank=True)
    label = models.CharField(_("libellé"), max_length=200)
    debit = models.DecimalField(_("débit"), max_digits=12, decimal_places=2, default=0)
    credit = models.DecimalField(_("crédit"), max_digits=12, decimal_places=2, default=0)
    letter = models.CharField(_("lettrage"), max_length=8, blank=True)
    letter_date = models.DateField(_("date de lettrage"), null=True, blank=True)

    objects = LineQuerySet.as_manager()

    class Meta:
        verbose_name = _("ligne d'écriture")
        verbose_name_plural = _("lignes d'écriture")
        ordering = ["entry", "position", "pk"]

    def __str__(self):
        return f"{self.account} {self.debit} / {self.credit}"

    def save(self, *args, **kwargs):
        self.entry._check_open()
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        self.entry._check_open()
        return super().delete(*args, **kwargs)
