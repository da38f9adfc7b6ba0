"""Association → establishments → billing sections, and who may work in which section."""
from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from stdnum.fr import siret as stdnum_siret

from . import crypto


def validate_siret(value):
    from django.core.exceptions import ValidationError

    if value and not stdnum_siret.is_valid(value):
        raise ValidationError(_("SIRET invalide : « %(value)s » (14 chiffres, clé de Luhn)."), params={"value": value})


def validate_finess(value):
    from django.core.exceptions import ValidationError

    if value and not (len(value) == 9 and value[:2].isalnum() and value[2:].isdigit()):
        raise ValidationError(_("FINESS invalide : « %(value)s » (9 caractères)."), params={"value": value})


class AddressMixin(models.Model):
    address = models.CharField(_("adresse"), max_length=200, blank=True)
    postal_code = models.CharField(_("code postal"), max_length=10, blank=True)
    city = models.CharField(_("ville"), max_length=100, blank=True)

    class Meta:
        abstract = True

    @property
    def address_lines(self) -> list[str]:
        return [line for line in (self.address, f"{self.postal_code} {self.city}".strip()) if line]


class Organisation(AddressMixin):
    """The association or group (gestionnaire) running establishments."""

    class SmtpSecurity(models.TextChoices):
        NONE = "none", _("Aucune")
        STARTTLS = "starttls", _("STARTTLS")
        SSL = "ssl", _("SSL/TLS")

    name = models.CharField(_("nom"), max_length=200)
    siret = models.CharField(_("SIRET"), max_length=14, blank=True, validators=[validate_siret])
    phone = models.CharField(_("téléphone"), max_length=30, blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    # SMTP account used to send invoices of every establishment of the association.
    smtp_host = models.CharField(_("serveur SMTP"), max_length=200, blank=True,
                                 help_text=_("Recommandé : smtp.office365.com, port 587, STARTTLS."))
    smtp_port = models.PositiveIntegerField(_("port SMTP"), default=587)
    smtp_security = models.CharField(_("sécurité"), max_length=10, choices=SmtpSecurity.choices,
                                     default=SmtpSecurity.STARTTLS)
    smtp_username = models.CharField(_("identifiant SMTP"), max_length=200, blank=True)
    smtp_password_encrypted = models.TextField(_("mot de passe SMTP (chiffré)"), blank=True, editable=False)
    # Throttle shared by every worker using this SMTP account.
    mail_delay_seconds = models.DecimalField(_("secondes entre deux messages"), max_digits=5, decimal_places=1, default=2)
    mail_pause_every = models.PositiveIntegerField(_("pause tous les N messages"), default=10)
    mail_pause_seconds = models.DecimalField(_("durée de la pause (s)"), max_digits=5, decimal_places=1, default=10)

    class Meta:
        verbose_name = _("association")
        verbose_name_plural = _("associations")
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def smtp_password(self) -> str:
        return crypto.decrypt(self.smtp_password_encrypted)

    @smtp_password.setter
    def smtp_password(self, value: str) -> None:
        self.smtp_password_encrypted = crypto.encrypt(value)


class Establishment(AddressMixin):
    class LegalStatus(models.TextChoices):
        PUBLIC = "public", _("Public")
        ASSOCIATION = "association", _("Associatif (privé non lucratif)")
        COMMERCIAL = "commercial", _("Commercial")

    organisation = models.ForeignKey(Organisation, verbose_name=_("association"), on_delete=models.PROTECT,
                                     related_name="establishments")
    name = models.CharField(_("nom"), max_length=200)
    code = models.CharField(
        _("code"), max_length=10, unique=True,
        validators=[RegexValidator(r"^[A-Z0-9]{2,10}$", _("2 à 10 lettres majuscules ou chiffres."))],
        help_text=_("Préfixe des numéros de facture, par exemple TIL."),
    )
    finess = models.CharField(_("FINESS"), max_length=9, blank=True, validators=[validate_finess])
    siret = models.CharField(_("SIRET"), max_length=14, blank=True, validators=[validate_siret])
    departement = models.CharField(
        _("département"), max_length=3,
        validators=[RegexValidator(r"^(0[1-9]|[1-8][0-9]|9[0-5]|2A|2B|97[1-6])$", _("Code de département invalide."))],
    )
    legal_status = models.CharField(_("statut juridique"), max_length=12, choices=LegalStatus.choices)
    phone = models.CharField(_("téléphone"), max_length=30, blank=True)
    sender_name = models.CharField(_("nom de l'expéditeur"), max_length=200, blank=True)
    sender_email = models.EmailField(_("adresse de l'expéditeur"), blank=True)
    # Default subject and text of invoice mails (placeholders: see mailing.services.placeholders).
    mail_subject = models.CharField(_("objet des courriels de facture"), max_length=200,
                                    default="Facture {numero} — {periode}")
    mail_body = models.TextField(
        _("texte accompagnant les factures"),
        default="Bonjour,\n\nVeuillez trouver ci-joint la facture de &personne pour la période de &periode "
                "(facture n° {numero}, montant {montant}).\n\nCordialement,\n{etablissement}",
    )
    logo = models.ImageField(_("logo"), upload_to="logos/", blank=True)
    # SEPA creditor identity (used by direct debits).
    creditor_id = models.CharField(_("ICS"), max_length=35, blank=True)
    iban = models.CharField(_("IBAN"), max_length=34, blank=True)
    bic = models.CharField(_("BIC"), max_length=11, blank=True)

    class Meta:
        verbose_name = _("établissement")
        verbose_name_plural = _("établissements")
        ordering = ["organisation__name", "name"]

    def __str__(self):
        return self.name

    @property
    def is_alsace_moselle(self) -> bool:
        return self.departement in {"57", "67", "68"}

    def clean(self):
        from django.core.exceptions import ValidationError
        from stdnum.eu import at_02

        if self.creditor_id and not at_02.is_valid(self.creditor_id):
            raise ValidationError({"creditor_id": _("ICS invalide : « %(v)s ».") % {"v": self.creditor_id}})


class Section(models.Model):
    """A billing section of an establishment, known everywhere by its alias (TIL-HP)."""

    class Kind(models.TextChoices):
        PERMANENT = "permanent", _("Hébergement permanent")
        TEMPORARY = "temporary", _("Hébergement temporaire")
        DAY_CARE = "day_care", _("Accueil de jour")

    class Periodicity(models.TextChoices):
        MONTHLY = "monthly", _("Mensuelle")
        FREE = "free", _("Libre")

    establishment = models.ForeignKey(Establishment, verbose_name=_("établissement"), on_delete=models.PROTECT,
                                      related_name="sections")
    alias = models.CharField(
        _("alias"), max_length=20, unique=True,
        validators=[RegexValidator(r"^[A-Z0-9][A-Z0-9_-]{1,19}$", _("Majuscules, chiffres, - et _ (2 à 20)."))],
    )
    name = models.CharField(_("nom"), max_length=200)
    kind = models.CharField(_("type"), max_length=12, choices=Kind.choices)
    periodicity = models.CharField(_("périodicité de facturation"), max_length=10, choices=Periodicity.choices,
                                   default=Periodicity.MONTHLY)
    payment_due_days = models.PositiveIntegerField(_("délai de paiement (jours)"), default=15)
    social_aid_habilitated = models.BooleanField(
        _("places habilitées à l'aide sociale"), default=False,
        help_text=_("Tarif hébergement fixé par arrêté départemental : pas de rappel rétroactif (R314-35 CASF)."))
    places = models.PositiveIntegerField(
        _("nombre de places"), null=True, blank=True,
        help_text=_("Capacité autorisée ; sert au taux d'occupation du tableau de bord "
                    "(jours facturés ÷ places × jours du mois)."))
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("section de facturation")
        verbose_name_plural = _("sections de facturation")
        ordering = ["establishment__name", "alias"]

    def __str__(self):
        return f"{self.alias} — {self.name}"


class SectionAccess(models.Model):
    """What a user may do in one section. Superusers may do everything everywhere."""

    class Role(models.TextChoices):
        READER = "reader", _("Lecture")
        CLERK = "clerk", _("Facturation")
        MANAGER = "manager", _("Responsable")

    user = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("utilisateur"), on_delete=models.CASCADE,
                             related_name="section_accesses")
    section = models.ForeignKey(Section, verbose_name=_("section"), on_delete=models.CASCADE, related_name="accesses")
    role = models.CharField(_("rôle"), max_length=10, choices=Role.choices, default=Role.READER)

    class Meta:
        verbose_name = _("droit sur une section")
        verbose_name_plural = _("droits sur les sections")
        constraints = [models.UniqueConstraint(fields=["user", "section"], name="unique_access_per_section")]

    def __str__(self):
        return f"{self.user} — {self.section.alias} ({self.get_role_display()})"
