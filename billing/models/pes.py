"""PES V2 ORMC (books.md §1): the settings of a public establishment, the rôles sent to the public
accountant and their articles (titres).

A rôle (bordereau TypBord 06) stores what its file was made of — the header identity, each article's
debtor, SEPA block and lines — as snapshots, and the bytes of the file: regenerating a past rôle gives
the same bytes, whatever changed since in the settings or the residents' files. Rôle numbers
(``IdBord``) are unique and sequential per establishment and exercice (``PesCounter``, row-locked).
"""
from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from structures.models import Establishment, Section

from .invoices import BillingPeriod, Invoice

DEFAULT_PRODUCT_CODES = {"accommodation": "HEB", "dependency_12": "DEP", "dependency_34": "DEP",
                         "dependency_56": "DEP", "temporary": "HT", "day_care": "AJ", "other": "DIV"}
# Debtor kind (resident, relative, or the payer's kind) → "CatTiers/NatJur/TypTiers" (books.md §1.2;
# the (CatTiers, NatJur) grid of the DGFiP was not found: UNCERTAIN, editable).
DEFAULT_TIERS_CODES = {"resident": "01/01/01", "relative": "01/01/01", "departement": "22/09/01",
                       "health_insurance": "60/04/01", "pension_fund": "61/05/01", "mutual": "62/05/01",
                       "other": "50/03/01"}


class PesSettings(models.Model):
    class Edition(models.TextChoices):
        NONE = "", _("Aucune (l'établissement envoie lui-même les avis)")
        CHORUS = "03", _("03 — via Chorus Pro")
        NO_PROCESSING = "04", _("04 — pas de traitement DGFiP")
        HELIOS = "06", _("06 — Hélios édite et envoie l'avis (ASAP)")
        SEVEN = "07", _("07")
        EIGHT = "08", _("08 — via Chorus Pro")

    class PerEncoding(models.TextChoices):
        FIRST_CHAR = "first_char", _("1er chiffre du mois (usage Noethys : octobre → 1)")
        LAST_DIGIT = "last_digit", _("Dernier chiffre du mois (octobre → 0)")
        FIXED = "fixed", _("Valeur fixe")

    establishment = models.OneToOneField(Establishment, verbose_name=_("établissement"), on_delete=models.CASCADE,
                                         related_name="pes_settings")
    id_post = models.CharField(_("poste comptable (IdPost)"), max_length=7,
                               validators=[RegexValidator(r"^\d{6,7}$", _("6 ou 7 chiffres."))])
    id_coll = models.CharField(_("SIRET de la collectivité (IdColl)"), max_length=14,
                               validators=[RegexValidator(r"^\d{14}$", _("14 chiffres."))])
    fin_jur = models.CharField(_("FINESS juridique (FinJur)"), max_length=9,
                               validators=[RegexValidator(r"^\d{2}[0-9AB]\d{6}$", _("9 caractères FINESS."))],
                               help_text=_("Obligatoire pour un établissement social ou médico-social (M22)."))
    cod_col = models.CharField(_("code collectivité (CodCol)"), max_length=3,
                               validators=[RegexValidator(r"^\d{3}$", _("3 chiffres."))])
    cod_bud = models.CharField(_("code budget (CodBud)"), max_length=2,
                               validators=[RegexValidator(r"^[0-9A-Z][0-9]$", _("Une lettre ou un chiffre, puis un "
                                                                                 "chiffre."))])
    libelle_col_bud = models.CharField(_("libellé collectivité/budget"), max_length=38, blank=True)
    sigle = models.CharField(_("émetteur (Sigle)"), max_length=32, default="SEJOUR")
    first_role_number = models.PositiveIntegerField(
        _("premier n° de rôle de l'exercice"), default=1,
        help_text=_("Pour reprendre la numérotation d'un autre logiciel en cours d'année."))
    objet_template = models.CharField(_("objet du rôle"), max_length=120, default="Frais de séjour {mois}",
                                      help_text=_("{mois} : le mois facturé (ex. JANVIER 2026)."))
    edition = models.CharField(_("édition (Edition)"), max_length=2, choices=Edition.choices, blank=True)
    per_encoding = models.CharField(_("codage de la période (Per)"), max_length=12, choices=PerEncoding.choices,
                                    default=PerEncoding.FIRST_CHAR,
                                    help_text=_("Un seul chiffre : à convenir avec le comptable."))
    per_fixed = models.CharField(_("valeur fixe de Per"), max_length=1, default="1",
                                 validators=[RegexValidator(r"^\d$", _("Un chiffre."))])
    asp_delay_days = models.PositiveSmallIntegerField(_("délai avant l'avis (DteAsp), jours"), default=0)
    debit_delay_days = models.PositiveSmallIntegerField(_("délai avant le prélèvement (DtePrel), jours"), default=15)
    debit_label = models.CharField(_("libellé du prélèvement"), max_length=100, default="FRAIS DE SEJOUR {mois}")
    product_codes = models.JSONField(_("codes produit local (CodProdLoc) par nature"), default=dict, blank=True,
                                     help_text=_("Nature de produit → code de 1 à 4 caractères."))
    tiers_codes = models.JSONField(_("CatTiers/NatJur/TypTiers par débiteur"), default=dict, blank=True,
                                   help_text=_("resident, relative ou nature du payeur → « 01/01/01 »."))
    attach_pdfs = models.BooleanField(_("joindre les factures en PDF (PES PJ)"), default=False)
    pj_type = models.CharField(_("type de pièce jointe (TypePJ)"), max_length=3, default="007",
                               validators=[RegexValidator(r"^\d{3}$", _("3 chiffres."))])

    class Meta:
        verbose_name = _("paramètres PES")
        verbose_name_plural = _("paramètres PES")

    def __str__(self):
        return f"PES {self.establishment}"

    def product_code(self, kind: str) -> str:
        return (self.product_codes or {}).get(kind) or DEFAULT_PRODUCT_CODES.get(kind, "DIV")

    def tiers_code(self, key: str) -> tuple[str, str, str]:
        value = (self.tiers_codes or {}).get(key) or DEFAULT_TIERS_CODES.get(key) or DEFAULT_TIERS_CODES["other"]
        cat, nat, typ = value.split("/")
        return cat, nat, typ


class PesCounter(models.Model):
    """Last rôle number of an (establishment, exercice), incremented under a row lock."""

    establishment = models.ForeignKey(Establishment, on_delete=models.PROTECT, related_name="+")
    exercice = models.PositiveIntegerField(_("exercice"))
    last_number = models.PositiveIntegerField(_("dernier n° de rôle"), default=0)

    class Meta:
        verbose_name = _("compteur de rôles PES")
        constraints = [models.UniqueConstraint(fields=["establishment", "exercice"], name="unique_pes_counter")]


class PesRole(models.Model):
    class Status(models.TextChoices):
        GENERATED = "generated", _("Généré")
        ACCEPTED = "accepted", _("Accepté par le comptable")
        REJECTED = "rejected", _("Rejeté")

    establishment = models.ForeignKey(Establishment, verbose_name=_("établissement"), on_delete=models.PROTECT,
                                      related_name="pes_roles")
    section = models.ForeignKey(Section, verbose_name=_("section"), on_delete=models.PROTECT, related_name="+")
    period = models.ForeignKey(BillingPeriod, verbose_name=_("période"), null=True, blank=True,
                               on_delete=models.PROTECT, related_name="pes_roles")
    exercice = models.PositiveIntegerField(_("exercice"))
    id_bord = models.PositiveIntegerField(_("n° de rôle"))
    nom_fic = models.CharField(_("nom du fichier"), max_length=100)
    dte_bord_em = models.DateField(_("émis le"))
    dte_asp = models.DateField(_("date de l'avis"))
    objet = models.CharField(_("objet"), max_length=160)
    header = models.JSONField(_("identité de l'envoi"), default=dict)
    total = models.DecimalField(_("montant"), max_digits=14, decimal_places=2)
    pieces_count = models.PositiveIntegerField(_("titres"))
    with_attachments = models.BooleanField(_("factures jointes"), default=False)
    content = models.BinaryField(_("fichier"))
    sha256 = models.CharField(_("empreinte"), max_length=64)
    status = models.CharField(_("état"), max_length=10, choices=Status.choices, default=Status.GENERATED)
    ack_reason = models.TextField(_("motif du rejet"), blank=True)
    ack_at = models.DateTimeField(_("acquitté le"), null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    # The « Générer le flux » request (its job's key, kept by « Relancer »): one rôle per request at most.
    request_key = models.CharField(_("demande"), max_length=32, blank=True, default="")

    class Meta:
        verbose_name = _("rôle PES")
        verbose_name_plural = _("rôles PES")
        ordering = ["establishment", "-exercice", "-id_bord"]
        constraints = [
            models.UniqueConstraint(fields=["establishment", "exercice", "id_bord"], name="unique_pes_role_number"),
            models.UniqueConstraint(fields=["establishment", "nom_fic"], name="unique_pes_file_name"),
            models.UniqueConstraint(fields=["request_key"], condition=~models.Q(request_key=""),
                                    name="unique_pes_role_request"),
        ]

    def __str__(self):
        return f"Rôle {self.id_bord}/{self.exercice} {self.establishment.code}"

    def save(self, *args, **kwargs):
        digest = hashlib.sha256(bytes(self.content)).hexdigest()
        if self.pk and (digest != self.sha256 or PesRole.objects.filter(pk=self.pk).exclude(sha256=digest).exists()):
            raise ValidationError(_("Le fichier d'un rôle généré ne change plus."))
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError(_("Un rôle généré ne se supprime pas : son numéro est connu du comptable ; "
                                "un rôle rejeté libère ses factures pour le rôle suivant."))


class PesArticle(models.Model):
    """One titre (pièce TypPce 15) of a rôle: one debtor, lines per product code; or the titre
    d'annulation (NatPce 06) of a credit note."""

    role = models.ForeignKey(PesRole, verbose_name=_("rôle"), on_delete=models.CASCADE, related_name="articles")
    id_pce = models.PositiveIntegerField(_("n° d'article"))
    nat_pce = models.CharField(_("nature de pièce"), max_length=2, default="01")
    num_dette = models.CharField(_("n° de dette"), max_length=15)
    per = models.CharField(_("période"), max_length=1)
    cle1 = models.CharField(_("clé 1"), max_length=1)
    cle2 = models.CharField(_("clé 2"), max_length=1)
    numero_facture = models.CharField(_("facture"), max_length=20)
    obj_pce = models.CharField(_("objet"), max_length=160)
    amount = models.DecimalField(_("montant"), max_digits=14, decimal_places=2)
    debtor_name = models.CharField(_("débiteur"), max_length=80)
    tiers = models.JSONField(_("débiteur (instantané)"), default=dict)
    sepa = models.JSONField(_("prélèvement (instantané)"), null=True, blank=True)
    sepa_rum = models.CharField(_("RUM"), max_length=35, blank=True)
    lines = models.JSONField(_("lignes"), default=list)
    invoices = models.ManyToManyField(Invoice, through="PesArticleInvoice", related_name="pes_articles")
    ack_error = models.TextField(_("anomalie du comptable"), blank=True)

    class Meta:
        verbose_name = _("titre PES")
        verbose_name_plural = _("titres PES")
        ordering = ["role", "id_pce"]
        constraints = [models.UniqueConstraint(fields=["role", "id_pce"], name="unique_pes_article")]


class PesArticleInvoice(models.Model):
    """An invoice (or credit note) is in one titre only — until the accountant rejects its rôle:
    the link then becomes inactive and the invoice goes into the next rôle."""

    article = models.ForeignKey(PesArticle, on_delete=models.CASCADE, related_name="+")
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="pes_links")
    position = models.PositiveSmallIntegerField(default=0)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["article", "position"]
        constraints = [models.UniqueConstraint(fields=["invoice"], condition=models.Q(active=True),
                                               name="pes_invoice_once")]
