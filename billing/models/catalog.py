"""Catalogue (layer 1): products with dated tariffs, accommodation packages, dated parameters."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from structures.models import Establishment, Section

from . import frozen


class Product(models.Model):
    class Kind(models.TextChoices):
        ACCOMMODATION = "accommodation", _("Hébergement")
        DEPENDENCY_12 = "dependency_12", _("Dépendance GIR 1-2")
        DEPENDENCY_34 = "dependency_34", _("Dépendance GIR 3-4")
        DEPENDENCY_56 = "dependency_56", _("Dépendance GIR 5-6 (talon)")
        TEMPORARY = "temporary", _("Hébergement temporaire")
        DAY_CARE = "day_care", _("Accueil de jour")
        OTHER = "other", _("Autre prestation")

    class Unit(models.TextChoices):
        DAY = "day", _("Jour")
        HALF_DAY = "half_day", _("Jour (demi-journée = moitié)")
        MONTH = "month", _("Mois")
        UNIT = "unit", _("Unité")

    class MonthlyMode(models.TextChoices):
        FULL = "full", _("Mois complet dès un jour de présence")
        PRORATA = "prorata", _("Au prorata des jours")

    establishment = models.ForeignKey(Establishment, verbose_name=_("établissement"), on_delete=models.PROTECT,
                                      related_name="products")
    code = models.CharField(_("code"), max_length=20)
    label = models.CharField(_("libellé"), max_length=120)
    kind = models.CharField(_("nature"), max_length=16, choices=Kind.choices)
    unit = models.CharField(_("unité"), max_length=10, choices=Unit.choices, default=Unit.DAY)
    monthly_mode = models.CharField(_("facturation mensuelle"), max_length=10, choices=MonthlyMode.choices,
                                    default=MonthlyMode.FULL)
    accounting_account = models.CharField(_("compte comptable"), max_length=20, blank=True)
    vat_rate = models.DecimalField(_("taux de TVA (%)"), max_digits=5, decimal_places=2, default=Decimal("0"))

    class Meta:
        verbose_name = _("produit")
        verbose_name_plural = _("produits")
        ordering = ["establishment", "code"]
        constraints = [models.UniqueConstraint(fields=["establishment", "code"], name="unique_product_code")]

    def __str__(self):
        return f"{self.code} — {self.label}"

    @property
    def is_dependency(self) -> bool:
        return self.kind in DEPENDENCY_KINDS

    @property
    def is_daily(self) -> bool:
        return self.unit in (self.Unit.DAY, self.Unit.HALF_DAY)


DEPENDENCY_KINDS = (Product.Kind.DEPENDENCY_12, Product.Kind.DEPENDENCY_34, Product.Kind.DEPENDENCY_56)
# Hébergement proper: reduced on absences from day 4, billed after death, paid by social aid.
LODGING_KINDS = (Product.Kind.ACCOMMODATION, Product.Kind.TEMPORARY)
# What a coverage rule of scope « hébergement » covers (day care included, extras such as TV excluded).
ACCOMMODATION_SCOPE_KINDS = LODGING_KINDS + (Product.Kind.DAY_CARE,)


_KIND_FOR_GIR = {1: Product.Kind.DEPENDENCY_12, 2: Product.Kind.DEPENDENCY_12, 3: Product.Kind.DEPENDENCY_34,
                 4: Product.Kind.DEPENDENCY_34}


def dependency_kind_for_gir(gir: int) -> str:
    return _KIND_FOR_GIR.get(gir, Product.Kind.DEPENDENCY_56)


class Tariff(frozen.FrozenWhenUsedMixin, models.Model):
    """Price of a product from ``valid_from`` until the next row (history kept, no overlaps).
    Frozen once an issued invoice used it: a new price is a new row."""

    FROZEN_FIELDS = ("product_id", "valid_from", "price")

    product = models.ForeignKey(Product, verbose_name=_("produit"), on_delete=models.CASCADE, related_name="tariffs")
    valid_from = models.DateField(_("à partir du"))
    price = models.DecimalField(_("prix unitaire"), max_digits=10, decimal_places=2,
                                validators=[MinValueValidator(Decimal("0"))])
    act_reference = models.CharField(_("référence de l'acte"), max_length=200, blank=True,
                                     help_text=_("Arrêté départemental, décision du conseil d'administration…"))
    created_at = models.DateTimeField(_("créé le"), auto_now_add=True)

    objects = frozen.FrozenWhenUsedQuerySet.as_manager()

    class Meta:
        verbose_name = _("tarif")
        verbose_name_plural = _("tarifs")
        ordering = ["product", "-valid_from"]
        constraints = [models.UniqueConstraint(fields=["product", "valid_from"], name="one_tariff_per_day")]

    def __str__(self):
        return f"{self.product.code} {self.price} € au {self.valid_from:%d/%m/%Y}"

    def is_used(self) -> bool:
        return frozen.tariff_is_used(product_id=self.product_id, valid_from=self.valid_from)


class Package(models.Model):
    """Accommodation package of a section: its products; dependency chosen by the GIR of the day."""

    section = models.ForeignKey(Section, verbose_name=_("section"), on_delete=models.CASCADE, related_name="packages")
    code = models.CharField(_("code"), max_length=20)
    label = models.CharField(_("libellé"), max_length=120)
    dependency_by_gir = models.BooleanField(_("dépendance selon le GIR"), default=True)
    products = models.ManyToManyField(Product, through="PackageItem", verbose_name=_("produits"))

    class Meta:
        verbose_name = _("forfait d'hébergement")
        verbose_name_plural = _("forfaits d'hébergement")
        ordering = ["section", "code"]
        constraints = [models.UniqueConstraint(fields=["section", "code"], name="unique_package_code")]

    def __str__(self):
        return f"{self.code} — {self.label}"


class PackageItem(models.Model):
    package = models.ForeignKey(Package, verbose_name=_("forfait"), on_delete=models.CASCADE, related_name="items")
    product = models.ForeignKey(Product, verbose_name=_("produit"), on_delete=models.PROTECT, related_name="+")

    class Meta:
        verbose_name = _("produit du forfait")
        verbose_name_plural = _("produits du forfait")
        constraints = [models.UniqueConstraint(fields=["package", "product"], name="unique_package_product")]

    def __str__(self):
        return str(self.product)


class NationalParameter(frozen.FrozenWhenUsedMixin, models.Model):
    """Dated national amounts (forfait journalier hospitalier, psychiatric forfait, pocket money)."""

    FROZEN_FIELDS = ("kind", "valid_from", "amount")

    class Kind(models.TextChoices):
        HOSPITAL_DAILY_CHARGE = "hospital_daily_charge", _("Forfait journalier hospitalier")
        PSYCHIATRIC_DAILY_CHARGE = "psychiatric_daily_charge", _("Forfait journalier psychiatrique")
        POCKET_MONEY_MINIMUM = "pocket_money_minimum", _("Minimum d'argent de poche (mensuel)")

    kind = models.CharField(_("paramètre"), max_length=32, choices=Kind.choices)
    valid_from = models.DateField(_("à partir du"))
    amount = models.DecimalField(_("montant"), max_digits=10, decimal_places=2)
    source = models.CharField(_("source"), max_length=200, blank=True)

    objects = frozen.FrozenWhenUsedQuerySet.as_manager()

    class Meta:
        verbose_name = _("paramètre national")
        verbose_name_plural = _("paramètres nationaux")
        ordering = ["kind", "-valid_from"]
        constraints = [models.UniqueConstraint(fields=["kind", "valid_from"], name="one_national_param_per_day")]

    def __str__(self):
        return f"{self.get_kind_display()} : {self.amount} € au {self.valid_from:%d/%m/%Y}"

    def is_used(self) -> bool:
        return frozen.national_parameter_is_used(kind=self.kind, valid_from=self.valid_from)


class DepartementParameter(frozen.FrozenWhenUsedMixin, models.Model):
    """Dated per-département settings (RDAS): convenience absences, talon on day 1, after death."""

    FROZEN_FIELDS = ("departement", "valid_from", "convenience_reduction", "convenience_cap_days",
                     "talon_on_first_day", "death_variable_charges", "death_max_days")

    departement = models.CharField(_("département"), max_length=3)
    valid_from = models.DateField(_("à partir du"))
    convenience_reduction = models.DecimalField(
        _("réduction pour absence de convenance"), max_digits=10, decimal_places=2, null=True, blank=True,
        help_text=_("Vide : le forfait journalier hospitalier du jour."))
    convenience_cap_days = models.PositiveIntegerField(_("plafond annuel de jours de convenance"), default=35)
    talon_on_first_day = models.BooleanField(_("talon facturé le 1er jour d'absence"), default=False)
    death_variable_charges = models.DecimalField(_("charges variables déduites après décès"), max_digits=10,
                                                 decimal_places=2, default=Decimal("0"))
    death_max_days = models.PositiveIntegerField(_("jours facturables après décès"), default=6)
    source = models.CharField(_("source"), max_length=200, blank=True)

    objects = frozen.FrozenWhenUsedQuerySet.as_manager()

    class Meta:
        verbose_name = _("paramètre départemental")
        verbose_name_plural = _("paramètres départementaux")
        ordering = ["departement", "-valid_from"]
        constraints = [models.UniqueConstraint(fields=["departement", "valid_from"], name="one_dept_param_per_day")]

    def __str__(self):
        return f"Département {self.departement} au {self.valid_from:%d/%m/%Y}"

    def is_used(self) -> bool:
        return frozen.departement_parameter_is_used(departement=self.departement, valid_from=self.valid_from)

    @classmethod
    def default(cls, departement: str) -> "DepartementParameter":
        return cls(departement=departement, valid_from=date(2000, 1, 1))
