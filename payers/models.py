"""Third-party payers (départements, insurers, pension funds), their groups and coverage rules."""
from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from residents.models import Stay
from structures.models import AddressMixin, Organisation


class Payer(AddressMixin):
    class StatementMode(models.TextChoices):
        GLOBAL = "global", _("Globaux (un bordereau pour tous les bénéficiaires)")
        INDIVIDUAL = "individual", _("Individuels (un bordereau par bénéficiaire)")

    class Kind(models.TextChoices):
        DEPARTEMENT = "departement", _("Département")
        HEALTH_INSURANCE = "health_insurance", _("Assurance maladie")
        PENSION_FUND = "pension_fund", _("Caisse de retraite")
        MUTUAL = "mutual", _("Mutuelle")
        OTHER = "other", _("Autre")

    class FacturxProfile(models.TextChoices):
        BASIC = "basic", _("BASIC")
        EN16931 = "en16931", _("EN 16931 (recommandé)")
        EXTENDED = "extended", _("EXTENDED")

    organisation = models.ForeignKey(Organisation, verbose_name=_("association"), on_delete=models.PROTECT,
                                     related_name="payers")
    code = models.CharField(_("code"), max_length=20)
    name = models.CharField(_("nom"), max_length=200)
    kind = models.CharField(_("nature"), max_length=20, choices=Kind.choices)
    departement = models.CharField(_("département"), max_length=3, blank=True)
    apa_dotation_globale = models.BooleanField(
        _("APA en dotation globale"), default=False,
        help_text=_("La part APA n'est pas facturée individuellement (forfait global dépendance)."))
    email = models.EmailField(_("e-mail"), blank=True)
    accounting_account = models.CharField(_("compte comptable"), max_length=20, blank=True)
    siret = models.CharField(_("SIRET"), max_length=14, blank=True)
    statement_mode = models.CharField(_("bordereaux"), max_length=10, choices=StatementMode.choices,
                                      default=StatementMode.GLOBAL)
    paid_to_beneficiary = models.BooleanField(
        _("aide versée directement au bénéficiaire"), default=False,
        help_text=_("Cochée : aucun bordereau n'est établi pour ce payeur."))
    pocket_money_minimum = models.DecimalField(
        _("minimum d'argent de poche particulier (mensuel)"), max_digits=10, decimal_places=2, null=True,
        blank=True, help_text=_("Vide : le minimum légal du mois. Une décision d'aide sociale peut fixer le sien."))
    # Chorus Pro (books.md §3): invoices to this payer are Factur-X PDFs (PDF/A-3 with the CII XML).
    chorus_pro = models.BooleanField(
        _("factures déposées sur Chorus Pro (Factur-X)"), default=False,
        help_text=_("Cochée : les factures et avoirs adressés à ce payeur sont des Factur-X (SIRET obligatoire)."))
    chorus_service_code = models.CharField(
        _("code service"), max_length=100, blank=True,
        help_text=_("Code service exécutant communiqué par le payeur (BT-10, référence acheteur)."))
    chorus_engagement_number = models.CharField(
        _("numéro d'engagement"), max_length=50, blank=True,
        help_text=_("Numéro d'engagement juridique (bon de commande) communiqué par le payeur (BT-13)."))
    chorus_engagement_required = models.BooleanField(
        _("numéro d'engagement obligatoire"), default=False,
        help_text=_("Cochée : aucune facture n'est émise pour ce payeur sans numéro d'engagement."))
    facturx_profile = models.CharField(_("profil Factur-X"), max_length=10, choices=FacturxProfile.choices,
                                       default=FacturxProfile.EN16931)

    class Meta:
        verbose_name = _("payeur")
        verbose_name_plural = _("payeurs")
        ordering = ["code"]
        constraints = [models.UniqueConstraint(fields=["organisation", "code"], name="unique_payer_code")]

    def __str__(self):
        return f"{self.code} — {self.name}"

    @property
    def receives_statements(self) -> bool:
        return not self.paid_to_beneficiary


class PayerNote(models.Model):
    """A dated internal note on a payer (a thread, newest first); never sent to the payer."""

    payer = models.ForeignKey(Payer, verbose_name=_("payeur"), on_delete=models.CASCADE, related_name="notes")
    text = models.TextField(_("note"))
    author = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("auteur"), null=True, blank=True,
                               on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("date"), auto_now_add=True)

    class Meta:
        verbose_name = _("note sur un payeur")
        verbose_name_plural = _("notes sur les payeurs")
        ordering = ["payer", "-created_at", "-pk"]

    def __str__(self):
        return f"{self.payer.code} {self.created_at:%d/%m/%Y}"


class PayerGroup(models.Model):
    """A sub-account of a payer that receives its own invoices (e.g. ASH and APA of a département)."""

    payer = models.ForeignKey(Payer, verbose_name=_("payeur"), on_delete=models.CASCADE, related_name="groups")
    code = models.CharField(_("code"), max_length=20)
    label = models.CharField(_("libellé"), max_length=120)

    class Meta:
        verbose_name = _("groupe de payeur")
        verbose_name_plural = _("groupes de payeur")
        ordering = ["payer", "code"]
        constraints = [models.UniqueConstraint(fields=["payer", "code"], name="unique_payer_group_code")]

    def __str__(self):
        return f"{self.payer.code} / {self.code} — {self.label}"


class CoverageRule(models.Model):
    """A payer's dated share of some products of one stay. Rules apply in ``priority`` order;
    what remains is the resident's (or the relative who pays)."""

    class Scope(models.TextChoices):
        ALL = "all", _("Tous les produits")
        ACCOMMODATION = "accommodation", _("Hébergement")
        DEPENDENCY = "dependency", _("Dépendance")
        PRODUCTS = "products", _("Produits choisis")

    class Mode(models.TextChoices):
        ALL = "all", _("La totalité")
        PERCENT = "percent", _("Un pourcentage")
        AMOUNT_PER_UNIT = "amount_per_unit", _("Un montant par unité")
        ABOVE_RESIDENT_SHARE = "above_resident_share", _("Tout au-delà d'une part résident par unité")
        ABOVE_TALON = "above_talon", _("APA : tarif du GIR moins le talon")

    stay = models.ForeignKey(Stay, verbose_name=_("séjour"), on_delete=models.CASCADE, related_name="coverage_rules")
    payer = models.ForeignKey(Payer, verbose_name=_("payeur"), on_delete=models.PROTECT, related_name="rules")
    group = models.ForeignKey(PayerGroup, verbose_name=_("groupe"), null=True, blank=True, on_delete=models.PROTECT,
                              related_name="rules")
    scope = models.CharField(_("produits couverts"), max_length=14, choices=Scope.choices, default=Scope.ALL)
    products = models.ManyToManyField("billing.Product", verbose_name=_("produits"), blank=True, related_name="+")
    mode = models.CharField(_("prise en charge"), max_length=22, choices=Mode.choices, default=Mode.ALL)
    value = models.DecimalField(_("valeur"), max_digits=10, decimal_places=2, default=Decimal("0"),
                                help_text=_("Pourcentage, montant par unité ou part résident selon le mode."))
    monthly_cap_units = models.PositiveIntegerField(_("plafond mensuel (unités)"), null=True, blank=True)
    valid_from = models.DateField(_("à partir du"))
    valid_to = models.DateField(_("jusqu'au"), null=True, blank=True)
    priority = models.PositiveIntegerField(_("ordre"), default=10)
    invoiced = models.BooleanField(_("facturé au payeur"), default=True,
                                   help_text=_("Décoché : part financée hors facture (dotation globale)."))
    decision_reference = models.CharField(_("référence de la décision"), max_length=100, blank=True)

    class Meta:
        verbose_name = _("règle de prise en charge")
        verbose_name_plural = _("règles de prise en charge")
        ordering = ["stay", "priority", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(valid_to__isnull=True) | Q(valid_to__gte=models.F("valid_from")),
                                   name="coverage_valid_range"),
        ]

    def __str__(self):
        return f"{self.payer.code} {self.get_mode_display()} ({self.get_scope_display()})"


class SocialAidDecision(models.Model):
    """Aide sociale à l'hébergement (ASH) for a stay: the département (group ASH) pays the hébergement;
    the resident contributes 90 % of resources (housing allowance in full) and keeps the pocket money
    = max(10 % of resources, legal minimum or the payer's particular minimum). "Net" model: the
    département is invoiced the hébergement minus the resident's contribution."""

    stay = models.ForeignKey(Stay, verbose_name=_("séjour"), on_delete=models.CASCADE,
                             related_name="social_aid_decisions")
    payer = models.ForeignKey(Payer, verbose_name=_("département"), on_delete=models.PROTECT,
                              related_name="social_aid_decisions")
    group = models.ForeignKey(PayerGroup, verbose_name=_("groupe"), null=True, blank=True,
                              on_delete=models.PROTECT, related_name="social_aid_decisions")
    decision_reference = models.CharField(_("n° de décision"), max_length=100, blank=True)
    valid_from = models.DateField(_("à partir du"))
    valid_to = models.DateField(_("jusqu'au"), null=True, blank=True)
    monthly_resources = models.DecimalField(
        _("ressources mensuelles (hors allocation logement)"), max_digits=10, decimal_places=2)
    housing_allowance = models.DecimalField(_("allocation logement mensuelle"), max_digits=10, decimal_places=2,
                                            default=Decimal("0"))
    pocket_money_minimum = models.DecimalField(
        _("minimum d'argent de poche particulier"), max_digits=10, decimal_places=2, null=True, blank=True,
        help_text=_("Vide : le minimum légal du mois (1 % de l'ASPA annuelle)."))

    class Meta:
        verbose_name = _("décision d'aide sociale")
        verbose_name_plural = _("décisions d'aide sociale")
        ordering = ["stay", "-valid_from"]
        constraints = [
            models.CheckConstraint(condition=Q(valid_to__isnull=True) | Q(valid_to__gte=models.F("valid_from")),
                                   name="social_aid_valid_range"),
        ]

    def __str__(self):
        return f"ASH {self.payer.code} {self.decision_reference} au {self.valid_from:%d/%m/%Y}"


class SocialAidApplication(models.Model):
    """A social-aid (ASH) application for a stay, filed with the département (*dépôt du dossier*) and
    waiting for its decision — often for months, and the département then pays retroactively. While it
    is *en attente*, the resident's invoices are not chased (no *relance*); once *accordée*, the
    decision is entered as a ``SocialAidDecision`` (linked here); once *refusée*, the resident pays and
    the invoices are reminded again."""

    class Status(models.TextChoices):
        PENDING = "pending", _("En attente")
        GRANTED = "granted", _("Accordée")
        REFUSED = "refused", _("Refusée")

    stay = models.ForeignKey(Stay, verbose_name=_("séjour"), on_delete=models.CASCADE,
                             related_name="social_aid_applications")
    payer = models.ForeignKey(Payer, verbose_name=_("département"), on_delete=models.PROTECT,
                              related_name="social_aid_applications")
    filed_on = models.DateField(_("dépôt du dossier"))
    status = models.CharField(_("état"), max_length=10, choices=Status.choices, default=Status.PENDING)
    decided_on = models.DateField(_("date de la décision"), null=True, blank=True)
    decision = models.OneToOneField(SocialAidDecision, verbose_name=_("décision d'aide sociale"), null=True,
                                    blank=True, on_delete=models.SET_NULL, related_name="application")
    note = models.TextField(_("note"), blank=True)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("modifiée par"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(_("modifiée le"), auto_now=True)

    class Meta:
        verbose_name = _("demande d'aide sociale")
        verbose_name_plural = _("demandes d'aide sociale")
        ordering = ["stay", "-filed_on", "-pk"]
        constraints = [
            # A decision date once decided, none while pending.
            models.CheckConstraint(condition=Q(status="pending", decided_on__isnull=True)
                                   | (~Q(status="pending") & Q(decided_on__isnull=False)),
                                   name="social_aid_application_decided_on"),
            models.CheckConstraint(condition=Q(decided_on__isnull=True) | Q(decided_on__gte=models.F("filed_on")),
                                   name="social_aid_application_dates"),
            models.UniqueConstraint(fields=["stay"], condition=Q(status="pending"),
                                    name="one_pending_social_aid_application_per_stay"),
        ]
        indexes = [models.Index(fields=["status", "filed_on"], name="payers_ash_application_status")]

    def __str__(self):
        return f"Demande ASH {self.payer.code} déposée le {self.filed_on:%d/%m/%Y} ({self.get_status_display()})"

    @property
    def is_pending(self) -> bool:
        return self.status == self.Status.PENDING


class AidPlanValues(models.Model):
    """What an aid plan finances per unit (day, half-day or month of the product), shared by a payer's
    default values per product (« Paramétrage ») and the plans of its beneficiaries."""

    class BillingMode(models.TextChoices):
        PLAN_RATE = "plan_rate", _("Tarif du plan (dans la limite du plafond, puis tarif du produit)")
        PRODUCT_PRICE = "product_price", _("Tarif du produit (pendant et au-delà de la prise en charge)")

    rate = models.DecimalField(_("tarif du plan (par unité)"), max_digits=10, decimal_places=2,
                               help_text=_("Montant d'une unité financée (jour, demi-journée ou mois du produit)."))
    coverage_percent = models.DecimalField(
        _("taux de prise en charge (%)"), max_digits=5, decimal_places=2, default=Decimal("100"),
        help_text=_("Part du tarif du plan payée par le payeur (100 : la totalité)."))
    monthly_cap_units = models.DecimalField(
        _("plafond mensuel (unités)"), max_digits=6, decimal_places=1, null=True, blank=True,
        help_text=_("Nombre d'unités financées par mois ; vide : sans plafond."))
    holiday_rate = models.DecimalField(
        _("tarif majoré dimanche / jour férié"), max_digits=10, decimal_places=2, null=True, blank=True,
        help_text=_("Vide : le tarif du plan."))
    holiday_coverage_percent = models.DecimalField(
        _("taux de prise en charge dimanche / jour férié (%)"), max_digits=5, decimal_places=2, null=True,
        blank=True, help_text=_("Vide : le taux du plan."))
    holiday_cap_units = models.DecimalField(
        _("plafond dimanches / jours fériés (unités par mois)"), max_digits=6, decimal_places=1, null=True,
        blank=True, help_text=_("0 : dimanches et jours fériés non financés ; vide : financés comme les autres "
                                "jours. Au-delà de ce plafond, au tarif et dans le plafond des autres jours."))
    billing_mode = models.CharField(_("facturation pendant la prise en charge"), max_length=14,
                                    choices=BillingMode.choices, default=BillingMode.PLAN_RATE)

    class Meta:
        abstract = True

    VALUE_FIELDS = ("rate", "coverage_percent", "monthly_cap_units", "holiday_rate", "holiday_coverage_percent",
                    "holiday_cap_units", "billing_mode")

    def values(self) -> dict:
        return {name: getattr(self, name) for name in self.VALUE_FIELDS}


class AidPlanDefault(AidPlanValues):
    """A payer's default aid-plan values for one product (tab « Paramétrage »), copied into new plans."""

    payer = models.ForeignKey(Payer, verbose_name=_("payeur"), on_delete=models.CASCADE,
                              related_name="aid_plan_defaults")
    product = models.ForeignKey("billing.Product", verbose_name=_("produit"), on_delete=models.CASCADE,
                                related_name="+")

    class Meta:
        verbose_name = _("valeurs par défaut de plan d'aide")
        verbose_name_plural = _("valeurs par défaut de plan d'aide")
        ordering = ["payer", "product__code"]
        constraints = [models.UniqueConstraint(fields=["payer", "product"], name="unique_aid_plan_default")]

    def __str__(self):
        return f"{self.payer.code} {self.product.code}"


class AidPlan(AidPlanValues):
    """A payer's coverage decision for one beneficiary (the stay's resident) and one product.
    Only *validé* plans are applied by generation (billing-rules §4)."""

    class Status(models.TextChoices):
        ENTERED = "entered", _("Saisi")
        VALIDATED = "validated", _("Validé")

    stay = models.ForeignKey(Stay, verbose_name=_("séjour"), on_delete=models.CASCADE, related_name="aid_plans")
    payer = models.ForeignKey(Payer, verbose_name=_("payeur"), on_delete=models.PROTECT, related_name="aid_plans")
    group = models.ForeignKey(PayerGroup, verbose_name=_("groupe"), null=True, blank=True, on_delete=models.PROTECT,
                              related_name="aid_plans")
    product = models.ForeignKey("billing.Product", verbose_name=_("produit"), on_delete=models.PROTECT,
                                related_name="+")
    decision_reference = models.CharField(_("référence de la décision"), max_length=100, blank=True)
    valid_from = models.DateField(_("début de validité"))
    valid_to = models.DateField(_("fin de validité"), null=True, blank=True)
    status = models.CharField(_("état"), max_length=10, choices=Status.choices, default=Status.ENTERED)
    validated_at = models.DateTimeField(_("validé le"), null=True, blank=True)
    validated_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("validé par"), null=True, blank=True,
                                     on_delete=models.SET_NULL, related_name="+")

    class Meta:
        verbose_name = _("plan d'aide")
        verbose_name_plural = _("plans d'aide")
        ordering = ["stay", "product", "-valid_from"]
        constraints = [
            models.CheckConstraint(condition=Q(valid_to__isnull=True) | Q(valid_to__gte=models.F("valid_from")),
                                   name="aid_plan_valid_range"),
        ]

    def __str__(self):
        return f"{self.payer.code} {self.product.code} {self.stay.resident} au {self.valid_from:%d/%m/%Y}"

    @property
    def is_validated(self) -> bool:
        return self.status == self.Status.VALIDATED
