"""Association → establishments → billing sections, and who may work in which section."""
import ipaddress

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


def is_local_host(host: str) -> bool:
    """Whether ``host`` names this machine (localhost, 127.0.0.0/8, ::1): the only servers to which
    Séjour sends a login without encryption. The name itself is checked, never its DNS answer."""
    name = (host or "").strip().rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name.strip("[]")).is_loopback
    except ValueError:
        return False


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

    class SmtpAuthMethod(models.TextChoices):
        PASSWORD = "password", _("Identifiant et mot de passe")
        OAUTH2 = "oauth2", _("Office 365 : OAuth2 (application Entra ID)")

    # Changing one of these sends the stored secrets elsewhere or differently: they are erased and
    # must be typed again (a section manager could otherwise read them with a server of his own).
    SMTP_ENDPOINT_FIELDS = ("smtp_host", "smtp_port", "smtp_security", "smtp_auth_method")
    # Changing one of these (or typing a secret) lifts a sending block due to refused credentials.
    SMTP_ACCOUNT_FIELDS = SMTP_ENDPOINT_FIELDS + ("smtp_username", "smtp_oauth_tenant_id", "smtp_oauth_client_id")

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
    smtp_auth_method = models.CharField(_("méthode d'identification"), max_length=10, choices=SmtpAuthMethod.choices,
                                        default=SmtpAuthMethod.PASSWORD)
    smtp_username = models.CharField(_("identifiant SMTP (boîte d'envoi)"), max_length=200, blank=True,
                                     help_text=_("Avec OAuth2 : l'adresse de la boîte aux lettres qui envoie."))
    smtp_password_encrypted = models.TextField(_("mot de passe SMTP (chiffré)"), blank=True, editable=False)
    smtp_oauth_tenant_id = models.CharField(_("ID de l'annuaire (tenant)"), max_length=100, blank=True)
    smtp_oauth_client_id = models.CharField(_("ID de l'application (client)"), max_length=100, blank=True)
    smtp_oauth_client_secret_encrypted = models.TextField(_("secret client OAuth2 (chiffré)"), blank=True,
                                                          editable=False)
    # Set by the outbox when the server refused the credentials: nothing is sent (messages stay
    # queued) until the SMTP settings change or the SMTP test succeeds.
    smtp_blocked_at = models.DateTimeField(_("envoi bloqué depuis"), null=True, blank=True, editable=False)
    smtp_blocked_reason = models.TextField(_("motif du blocage de l'envoi"), blank=True, editable=False)
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

    @classmethod
    def from_db(cls, db, field_names, values):
        instance = super().from_db(db, field_names, values)
        instance._remember_smtp()
        return instance

    def _remember_smtp(self) -> None:
        self._loaded_smtp = {f: getattr(self, f) for f in self.SMTP_ACCOUNT_FIELDS if f in self.__dict__}
        self._secrets_typed = set()

    def smtp_changed_fields(self) -> list[str]:
        loaded = getattr(self, "_loaded_smtp", None)
        if not self.pk or loaded is None:
            return []
        return [f for f, value in loaded.items() if getattr(self, f) != value]

    def save(self, *args, **kwargs):
        changed = self.smtp_changed_fields()
        typed = getattr(self, "_secrets_typed", set())
        if kwargs.get("update_fields") is None:
            if set(changed) & set(self.SMTP_ENDPOINT_FIELDS):
                if "password" not in typed:
                    self.smtp_password_encrypted = ""
                if "client_secret" not in typed:
                    self.smtp_oauth_client_secret_encrypted = ""
            if changed or typed:
                self.smtp_blocked_at, self.smtp_blocked_reason = None, ""
            elif self.pk and not self._state.adding and not kwargs.get("force_insert"):
                # The block is set by the outbox with an UPDATE while this instance may be stale:
                # an unrelated change (the pace, the address) must not lift it.
                kwargs["update_fields"] = [f.name for f in self._meta.concrete_fields if not f.primary_key
                                           and f.name not in ("smtp_blocked_at", "smtp_blocked_reason")]
        super().save(*args, **kwargs)
        self._remember_smtp()

    @property
    def smtp_password(self) -> str:
        return crypto.decrypt(self.smtp_password_encrypted)

    @smtp_password.setter
    def smtp_password(self, value: str) -> None:
        self.smtp_password_encrypted = crypto.encrypt(value)
        self.__dict__.setdefault("_secrets_typed", set()).add("password")

    @property
    def smtp_oauth_client_secret(self) -> str:
        return crypto.decrypt(self.smtp_oauth_client_secret_encrypted)

    @smtp_oauth_client_secret.setter
    def smtp_oauth_client_secret(self, value: str) -> None:
        self.smtp_oauth_client_secret_encrypted = crypto.encrypt(value)
        self.__dict__.setdefault("_secrets_typed", set()).add("client_secret")

    @property
    def smtp_plain_login_refused(self) -> bool:
        """A login (password or token) would travel unencrypted to a server that is not this machine."""
        return (self.smtp_security == self.SmtpSecurity.NONE and bool(self.smtp_username)
                and not is_local_host(self.smtp_host))


# A French département code: 01–95 (Corsica 2A/2B), overseas 971–976.
DEPARTEMENT_VALIDATOR = RegexValidator(r"^(0[1-9]|[1-8][0-9]|9[0-5]|2A|2B|97[1-6])$", _("Code de département invalide."))


class SepaVersion(models.TextChoices):
    V08 = "pain.008.001.08", _("pain.008.001.08 (2019, par défaut)")
    V02 = "pain.008.001.02", _("pain.008.001.02 (repli si la banque l'exige)")


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
        validators=[DEPARTEMENT_VALIDATOR],
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
    # SEPA creditor identity (used by direct debits, billing-rules.md §11).
    creditor_id = models.CharField(_("ICS"), max_length=35, blank=True)
    iban = models.CharField(_("IBAN"), max_length=34, blank=True)
    bic = models.CharField(_("BIC"), max_length=11, blank=True)
    sepa_creditor_name = models.CharField(_("nom du créancier SEPA"), max_length=70, blank=True,
                                          help_text=_("Vide : le nom de l'établissement."))
    sepa_prenotification_days = models.PositiveSmallIntegerField(
        _("délai de pré-notification (jours)"), default=14,
        help_text=_("Au moins 14 jours, sauf délai plus court convenu dans le mandat."))
    sepa_version = models.CharField(_("version des fichiers de prélèvement"), max_length=16,
                                    choices=SepaVersion.choices, default=SepaVersion.V08)
    sepa_frst_after_amendment = models.BooleanField(
        _("FRST après un changement de compte"), default=False,
        help_text=_("Option de certaines banques : le prélèvement qui suit un amendement est présenté en FRST."))

    class Meta:
        verbose_name = _("établissement")
        verbose_name_plural = _("établissements")
        ordering = ["organisation__name", "name"]

    def __str__(self):
        return self.name

    @property
    def is_alsace_moselle(self) -> bool:
        return self.departement in {"57", "67", "68"}

    @property
    def sepa_name(self) -> str:
        return self.sepa_creditor_name or self.name[:70]

    def clean(self):
        from django.core.exceptions import ValidationError

        from core.bank import validate_bic, validate_iban

        errors = {}
        if self.creditor_id:
            from stdnum.eu import at_02

            if not at_02.is_valid(self.creditor_id):
                errors["creditor_id"] = _("ICS invalide : « %(v)s ».") % {"v": self.creditor_id}
            else:
                self.creditor_id = at_02.compact(self.creditor_id)
        for name, check in (("iban", validate_iban), ("bic", validate_bic)):
            if getattr(self, name):
                try:
                    setattr(self, name, check(getattr(self, name)))
                except ValidationError as exc:
                    errors[name] = exc.messages
        if errors:
            raise ValidationError(errors)


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


class OrganisationAdministrator(models.Model):
    """An *administrateur de l'association*: may change the association's settings, its SMTP
    account above all (above the sections: a section *responsable* may not). Superusers are
    administrators of every association."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("utilisateur"), on_delete=models.CASCADE,
                             related_name="organisation_administrations")
    organisation = models.ForeignKey(Organisation, verbose_name=_("association"), on_delete=models.CASCADE,
                                     related_name="administrators")

    class Meta:
        verbose_name = _("administrateur de l'association")
        verbose_name_plural = _("administrateurs des associations")
        constraints = [models.UniqueConstraint(fields=["user", "organisation"], name="unique_admin_per_organisation")]

    def __str__(self):
        return f"{self.user} — {self.organisation}"
