"""SEPA direct debit: creditor identity per establishment, mandates (with their account history),
debit batches and their lines (billing-rules.md §11)."""
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from billing.models import BillingPeriod, Invoice
from residents.models import Relative, Resident
from structures.models import Establishment, Section

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
        SUSPENDED = "suspend", _("Suspendu (à revoir après un rejet)")

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
    revoked_on = models.DateField(_("révoqué le"), null=True, blank=True)
    revoke_reason = models.CharField(_("motif de la révocation"), max_length=250, blank=True)
    lapsed_on = models.DateField(_("caduc le"), null=True, blank=True)
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


class MandateAccount(models.Model):
    """History of a mandate's debtor accounts (an amendment keeps the RUM and adds a row)."""

    mandate = models.ForeignKey(Mandate, on_delete=models.CASCADE, related_name="accounts")
    iban = models.CharField(_("IBAN"), max_length=34)
    bic = models.CharField(_("BIC"), max_length=11, blank=True)
    account_holder = models.CharField(_("titulaire du compte"), max_length=140)
    valid_from = models.DateField(_("depuis le"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("compte du mandat")
        verbose_name_plural = _("comptes du mandat")
        ordering = ["mandate", "valid_from", "pk"]


class DebitBatch(models.Model):
    """A pain.008 debit batch of an issued period: draft → generated → sent → settled, or cancelled."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Brouillon")
        GENERATED = "generated", _("Fichier généré")
        SENT = "sent", _("Envoyé à la banque")
        SETTLED = "settled", _("Réglé")
        CANCELLED = "cancelled", _("Annulé")

    section = models.ForeignKey(Section, verbose_name=_("section"), on_delete=models.PROTECT,
                                related_name="debit_batches")
    period = models.ForeignKey(BillingPeriod, verbose_name=_("période"), on_delete=models.PROTECT,
                               related_name="debit_batches")
    collection_date = models.DateField(_("date de prélèvement"))
    status = models.CharField(_("état"), max_length=10, choices=Status.choices, default=Status.DRAFT)
    version = models.CharField(_("version du fichier"), max_length=16, blank=True)
    message_id = models.CharField(_("identifiant du message"), max_length=35, blank=True)
    xml = models.TextField(_("fichier pain.008"), blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    generated_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    settled_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("lot de prélèvements")
        verbose_name_plural = _("lots de prélèvements")
        ordering = ["-collection_date", "-pk"]

    def __str__(self):
        return f"{self.section} — {self.collection_date:%d/%m/%Y}"


class DebitLine(models.Model):
    """One invoice — or one installment of a plan — collected by a batch. ``active`` is False once the
    batch is cancelled: an invoice or installment is in at most one active line (never collected twice)."""

    batch = models.ForeignKey(DebitBatch, on_delete=models.CASCADE, related_name="lines")
    invoice = models.ForeignKey(Invoice, verbose_name=_("facture"), null=True, blank=True, on_delete=models.PROTECT,
                                related_name="debit_lines")
    installment = models.ForeignKey("Installment", verbose_name=_("échéance"), null=True, blank=True,
                                    on_delete=models.PROTECT, related_name="debit_lines")
    mandate = models.ForeignKey(Mandate, verbose_name=_("mandat"), on_delete=models.PROTECT,
                                related_name="debit_lines")
    amount = models.DecimalField(_("montant"), max_digits=12, decimal_places=2)
    sequence_type = models.CharField(_("séquence"), max_length=4, choices=Mandate.SequenceType.choices)
    end_to_end_id = models.CharField(_("référence de bout en bout"), max_length=35)
    iban = models.CharField(_("IBAN"), max_length=34)
    bic = models.CharField(_("BIC"), max_length=11, blank=True)
    debtor_name = models.CharField(_("débiteur"), max_length=140)
    original_iban = models.CharField(_("IBAN d'origine (amendement)"), max_length=34, blank=True)
    remittance = models.CharField(_("libellé"), max_length=140)
    active = models.BooleanField(default=True)
    return_code = models.CharField(_("motif du rejet ou retour"), max_length=4, blank=True)
    returned_on = models.DateField(_("rejeté ou retourné le"), null=True, blank=True)
    payment = models.ForeignKey("billing.Payment", null=True, blank=True, on_delete=models.PROTECT,
                                related_name="debit_lines")

    class Meta:
        verbose_name = _("prélèvement")
        verbose_name_plural = _("prélèvements")
        ordering = ["batch", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["invoice"], condition=Q(active=True),
                                    name="invoice_in_one_active_debit_batch"),
            # A returned installment's line stays (its batch's history) and no longer holds it: the
            # installment can be re-presented in a later batch (``installment_represent``).
            models.UniqueConstraint(fields=["installment"], condition=Q(active=True, return_code=""),
                                    name="installment_in_one_unreturned_active_line"),
            models.CheckConstraint(condition=Q(invoice__isnull=True, installment__isnull=False)
                                   | Q(invoice__isnull=False, installment__isnull=True),
                                   name="debit_line_invoice_or_installment"),
        ]


# ------------------------------------------------------------------ installment plans (mensualisation)

DEFAULT_SCHEDULE_TITLE = "Échéancier de prélèvements mensuels"
DEFAULT_SCHEDULE_HEADER = (
    "Vous avez choisi la mensualisation : le montant annuel estimé de votre séjour est réparti en échéances "
    "mensuelles prélevées sur votre compte aux dates ci-dessous. Ce document vaut pré-notification des "
    "prélèvements (montants, dates, référence unique du mandat et identifiant créancier SEPA).")
DEFAULT_SCHEDULE_FOOTER = (
    "Les factures mensuelles restent émises et sont réglées par les échéances reçues. En fin d'année, la "
    "différence entre les échéances prélevées et les sommes facturées est régularisée : un reste dû vous est "
    "facturé, un trop-perçu est déduit des factures suivantes ou remboursé. Pour reporter une échéance ou "
    "arrêter la mensualisation, adressez-vous au service facturation.")


class InstallmentSettings(models.Model):
    """Per section: how installment plans are built and what the schedule (échéancier) says."""

    section = models.OneToOneField(Section, on_delete=models.CASCADE, related_name="installment_settings")
    installment_count = models.PositiveSmallIntegerField(
        _("nombre d'échéances"), default=10, validators=[MinValueValidator(1), MaxValueValidator(12)])
    debit_day = models.PositiveSmallIntegerField(
        _("jour de prélèvement"), default=10, validators=[MinValueValidator(1), MaxValueValidator(28)])
    title = models.CharField(_("titre de l'échéancier"), max_length=120, default=DEFAULT_SCHEDULE_TITLE)
    header_text = models.TextField(_("texte d'en-tête de l'échéancier"), default=DEFAULT_SCHEDULE_HEADER)
    footer_text = models.TextField(_("texte de pied de l'échéancier"), default=DEFAULT_SCHEDULE_FOOTER)

    class Meta:
        verbose_name = _("paramètres de mensualisation")
        verbose_name_plural = _("paramètres de mensualisation")


class InstallmentPlan(models.Model):
    """« Utiliser la mensualisation » for a resident: a yearly amount spread over monthly installments,
    debited from the mandate of the debtor (the resident, or the paying relative)."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("En cours")
        STOPPED = "stopped", _("Arrêtée")

    section = models.ForeignKey(Section, verbose_name=_("section"), on_delete=models.PROTECT,
                                related_name="installment_plans")
    resident = models.ForeignKey(Resident, verbose_name=_("résident"), on_delete=models.PROTECT,
                                 related_name="installment_plans")
    relative = models.ForeignKey(Relative, verbose_name=_("proche débiteur"), null=True, blank=True,
                                 on_delete=models.PROTECT, related_name="installment_plans",
                                 help_text=_("Vide : le résident est le débiteur."))
    year_start = models.DateField(_("début de l'année de l'échéancier"))
    yearly_amount = models.DecimalField(_("montant annuel"), max_digits=12, decimal_places=2,
                                        validators=[MinValueValidator(Decimal("0.01"))])
    installment_count = models.PositiveSmallIntegerField(_("nombre d'échéances"))
    debit_day = models.PositiveSmallIntegerField(_("jour de prélèvement"))
    estimate_note = models.CharField(_("base de l'estimation"), max_length=250, blank=True)
    status = models.CharField(_("état"), max_length=8, choices=Status.choices, default=Status.ACTIVE)
    stopped_on = models.DateField(_("arrêtée le"), null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("échéancier (mensualisation)")
        verbose_name_plural = _("échéanciers (mensualisation)")
        ordering = ["section", "-year_start", "resident"]
        constraints = [
            models.UniqueConstraint(fields=["section", "resident"], condition=Q(status="active"),
                                    name="one_active_installment_plan_per_resident"),
        ]

    def __str__(self):
        return f"{self.resident} — {self.year_start:%m/%Y}"


class Installment(models.Model):
    """One monthly installment of a plan. The amounts of the open ones are recomputed when one is
    postponed; collected ones become a *prélèvement* payment when their batch is settled; a rejected
    one can be re-presented (due again, its amount kept, collected by the next batch)."""

    class State(models.TextChoices):
        DUE = "due", _("À venir")
        COLLECTED = "collected", _("Prélevée")
        POSTPONED = "postponed", _("Reportée")
        REJECTED = "rejected", _("Rejetée")
        CANCELLED = "cancelled", _("Annulée (arrêt de la mensualisation)")

    plan = models.ForeignKey(InstallmentPlan, on_delete=models.CASCADE, related_name="installments")
    number = models.PositiveSmallIntegerField(_("n°"))
    due_date = models.DateField(_("date de prélèvement prévue"))
    amount = models.DecimalField(_("montant"), max_digits=12, decimal_places=2)
    state = models.CharField(_("état"), max_length=10, choices=State.choices, default=State.DUE)
    postponed_on = models.DateField(_("reportée le"), null=True, blank=True)
    representations = models.PositiveSmallIntegerField(
        _("représentations"), default=0,
        help_text=_("Nombre de fois où l'échéance, rejetée ou retournée par la banque, a été représentée."))
    represented_on = models.DateField(_("représentée le"), null=True, blank=True)

    class Meta:
        verbose_name = _("échéance")
        verbose_name_plural = _("échéances")
        ordering = ["plan", "number"]
        constraints = [models.UniqueConstraint(fields=["plan", "number"], name="unique_installment_number")]

    def __str__(self):
        return f"{self.number} — {self.due_date:%d/%m/%Y} — {self.amount}"
DEFAULT_MANDATE_AUTHORISATION = (
    "En signant ce formulaire de mandat, vous autorisez {creancier} à envoyer des instructions à votre banque pour "
    "débiter votre compte, et votre banque à débiter votre compte conformément aux instructions de {creancier}. "
    "Vous bénéficiez du droit d'être remboursé par votre banque selon les conditions décrites dans la convention que "
    "vous avez passée avec elle. Une demande de remboursement doit être présentée dans les 8 semaines suivant la date "
    "de débit de votre compte pour un prélèvement autorisé. Vos droits concernant le présent mandat sont expliqués "
    "dans un document que vous pouvez obtenir auprès de votre banque.")
DEFAULT_MANDATE_NOTICE = (
    "Note : vos droits concernant le présent mandat sont expliqués dans un document que vous pouvez obtenir auprès de "
    "votre banque. Les informations contenues dans le présent mandat, qui doit être complété, sont destinées à n'être "
    "utilisées par le créancier que pour la gestion de sa relation avec son client. Elles pourront donner lieu à "
    "l'exercice, par ce dernier, de ses droits d'opposition, d'accès et de rectification tels que prévus par la "
    "réglementation sur la protection des données. Chaque prélèvement est annoncé par la facture, au moins {delai} "
    "jours avant la date de débit (date, montant, RUM et ICS).")
MANDATE_TEXT_PLACEHOLDERS = ("creancier", "delai", "ics")


class MandateText(models.Model):
    """The legal SEPA texts printed on the mandate form, editable per establishment (creditor); the
    French defaults above apply while none is saved. Placeholders: ``{creancier}``, ``{delai}``, ``{ics}``."""

    establishment = models.OneToOneField(Establishment, verbose_name=_("créancier"), on_delete=models.CASCADE,
                                         related_name="sepa_mandate_text")
    authorisation = models.TextField(_("texte d'autorisation"), default=DEFAULT_MANDATE_AUTHORISATION)
    notice = models.TextField(_("note (droits, données personnelles, pré-notification)"), default=DEFAULT_MANDATE_NOTICE)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("textes du mandat SEPA")
        verbose_name_plural = _("textes du mandat SEPA")

    def __str__(self):
        return str(self.establishment)
