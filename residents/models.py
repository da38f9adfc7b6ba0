"""Residents, their relatives and guardians, stays in sections, GIR history and absences."""
from __future__ import annotations

from datetime import date

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core.text import text_key
from structures.models import DEPARTEMENT_VALIDATOR, AddressMixin, Establishment, Organisation, Section

from .validators import validate_nir, validate_not_future


class Civility(models.TextChoices):
    MR = "M", _("M.")
    MRS = "MME", _("Mme")


class PaymentMode(models.TextChoices):
    CHEQUE = "cheque", _("Chèque")
    TRANSFER = "transfer", _("Virement")
    DIRECT_DEBIT = "direct_debit", _("Prélèvement")
    CASH = "cash", _("Espèces")


class NameKeysQuerySet(models.QuerySet):
    """``bulk_create`` fills the name keys too (imports create residents and relatives in bulk)."""

    def bulk_create(self, objs, *args, **kwargs):
        objs = list(objs)
        for obj in objs:
            obj.fill_name_keys()
        return super().bulk_create(objs, *args, **kwargs)


class NameKeysMixin(models.Model):
    """``sort_key`` (French alphabetical order) and ``search_key`` (search ignoring accents and case),
    both maintained on save from the names (``core.text.text_key``)."""

    sort_key = models.CharField(_("clé de tri"), max_length=250, blank=True, editable=False, db_index=True)
    search_key = models.CharField(_("clé de recherche"), max_length=400, blank=True, editable=False)

    class Meta:
        abstract = True

    def name_key_parts(self) -> tuple[list, list]:  # pragma: no cover - each model says which names
        raise NotImplementedError

    def fill_name_keys(self) -> None:
        sort_parts, search_parts = self.name_key_parts()
        self.sort_key = text_key(*sort_parts)[:250]
        self.search_key = text_key(*search_parts)[:400]

    def save(self, *args, **kwargs):
        self.fill_name_keys()
        update_fields = kwargs.get("update_fields")
        if update_fields is not None:
            kwargs["update_fields"] = {*update_fields, "sort_key", "search_key"}
        super().save(*args, **kwargs)


class ResidentQuerySet(NameKeysQuerySet):
    def in_sections(self, sections) -> "ResidentQuerySet":
        """Residents with at least one stay (current or past) in one of ``sections``."""
        return self.filter(stays__section__in=sections).distinct()

    def present_in(self, sections, on: date) -> "ResidentQuerySet":
        return self.filter(
            Q(stays__end_date__isnull=True) | Q(stays__end_date__gte=on),
            stays__section__in=sections, stays__entry_date__lte=on,
        ).distinct()


class Resident(NameKeysMixin, AddressMixin):
    organisation = models.ForeignKey(Organisation, verbose_name=_("association"), on_delete=models.PROTECT,
                                     related_name="residents")
    civility = models.CharField(_("civilité"), max_length=3, choices=Civility.choices, blank=True)
    last_name = models.CharField(_("nom"), max_length=100)
    birth_name = models.CharField(_("nom de naissance"), max_length=100, blank=True)
    first_name = models.CharField(_("prénom"), max_length=100)
    birth_date = models.DateField(_("date de naissance"), validators=[validate_not_future])
    birth_place = models.CharField(_("lieu de naissance"), max_length=100, blank=True)
    nir = models.CharField(_("NIR (n° de sécurité sociale)"), max_length=21, blank=True, validators=[validate_nir])
    phone = models.CharField(_("téléphone"), max_length=30, blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    external_ref = models.CharField(_("référence externe"), max_length=60, blank=True,
                                    help_text=_("Identifiant dans un autre logiciel (soins, planning)."))
    payment_mode = models.CharField(_("mode de règlement"), max_length=14, choices=PaymentMode.choices,
                                    default=PaymentMode.CHEQUE)
    domicile_secours = models.CharField(
        _("domicile de secours"), max_length=3, blank=True, validators=[DEPARTEMENT_VALIDATOR],
        help_text=_("Département qui verse l'APA et l'aide sociale (69, 2A, 974…). Vide : celui de "
                    "l'établissement."))
    created_at = models.DateTimeField(_("créé le"), auto_now_add=True)
    updated_at = models.DateTimeField(_("modifié le"), auto_now=True)

    objects = ResidentQuerySet.as_manager()

    class Meta:
        verbose_name = _("résident")
        verbose_name_plural = _("résidents")
        ordering = ["sort_key", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["organisation", "external_ref"], condition=~Q(external_ref=""),
                name="unique_external_ref_per_organisation",
            )
        ]
        indexes = [models.Index(fields=["last_name", "first_name"])]

    def __str__(self):
        return self.full_name

    def name_key_parts(self):
        return ([self.last_name, self.first_name],
                [self.last_name, self.first_name, self.birth_name, self.external_ref])

    @property
    def full_name(self) -> str:
        return f"{self.last_name.upper()} {self.first_name}".strip()

    def age_on(self, day: date) -> int:
        years = day.year - self.birth_date.year
        if (day.month, day.day) < (self.birth_date.month, self.birth_date.day):
            years -= 1
        return years

    def gir_on(self, day: date) -> int | None:
        assessment = self.gir_assessments.filter(valid_from__lte=day).order_by("-valid_from").first()
        return assessment.gir if assessment else None


class ResidentNote(models.Model):
    """A dated internal note on a resident (a thread, newest first). Replaces the former single
    free-text ``Resident.notes``, whose text became each resident's first note."""

    resident = models.ForeignKey(Resident, verbose_name=_("résident"), on_delete=models.CASCADE,
                                 related_name="notes")
    text = models.TextField(_("note"))
    author = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("auteur"), null=True, blank=True,
                               on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(_("date"), auto_now_add=True)

    class Meta:
        verbose_name = _("note sur un résident")
        verbose_name_plural = _("notes sur les résidents")
        ordering = ["resident", "-created_at", "-pk"]

    def __str__(self):
        return f"{self.resident} {self.created_at:%d/%m/%Y}"


class Relative(NameKeysMixin, AddressMixin):
    resident = models.ForeignKey(Resident, verbose_name=_("résident"), on_delete=models.CASCADE,
                                 related_name="relatives")
    civility = models.CharField(_("civilité"), max_length=3, choices=Civility.choices, blank=True)
    last_name = models.CharField(_("nom"), max_length=100)
    first_name = models.CharField(_("prénom"), max_length=100, blank=True)
    relationship = models.CharField(_("lien"), max_length=60, blank=True, help_text=_("Fille, fils, conjoint, neveu…"))
    phone = models.CharField(_("téléphone"), max_length=30, blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    receives_invoices = models.BooleanField(_("destinataire des factures"), default=False)
    is_guardian = models.BooleanField(_("tuteur / représentant légal"), default=False)
    is_payer = models.BooleanField(_("payeur"), default=False, help_text=_("Règle la part du résident."))

    objects = NameKeysQuerySet.as_manager()

    class Meta:
        verbose_name = _("proche")
        verbose_name_plural = _("proches")
        ordering = ["sort_key", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["resident"], condition=Q(receives_invoices=True),
                                    name="one_invoice_recipient_per_resident"),
            models.UniqueConstraint(fields=["resident"], condition=Q(is_payer=True),
                                    name="one_paying_relative_per_resident"),
        ]

    def __str__(self):
        return f"{self.last_name.upper()} {self.first_name}".strip()

    def name_key_parts(self):
        return [self.last_name, self.first_name], [self.last_name, self.first_name, self.email]


class Stay(models.Model):
    """A resident's stay in one billing section, from entry to end (both days billed)."""

    class EndReason(models.TextChoices):
        DEPARTURE = "departure", _("Départ")
        TRANSFER = "transfer", _("Transfert")
        DEATH = "death", _("Décès")

    resident = models.ForeignKey(Resident, verbose_name=_("résident"), on_delete=models.PROTECT, related_name="stays")
    section = models.ForeignKey(Section, verbose_name=_("section"), on_delete=models.PROTECT, related_name="stays")
    entry_date = models.DateField(_("date d'entrée"))
    end_date = models.DateField(_("date de fin"), null=True, blank=True)
    end_reason = models.CharField(_("motif de fin"), max_length=10, choices=EndReason.choices, blank=True)
    room = models.CharField(_("chambre"), max_length=20, blank=True)
    room_emptied_on = models.DateField(_("chambre libérée le"), null=True, blank=True,
                                       help_text=_("Après un décès : date à laquelle les effets ont été retirés."))
    attendance_weekdays = models.CharField(
        _("jours de présence (accueil de jour)"), max_length=20, blank=True,
        help_text=_("Jours de la semaine où la personne vient (0 = lundi … 6 = dimanche, séparés par des virgules). "
                    "Vide : tous les jours ouverts du calendrier."))
    transferred_from = models.OneToOneField("self", verbose_name=_("transféré depuis"), null=True, blank=True,
                                            on_delete=models.SET_NULL, related_name="transferred_to")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("séjour")
        verbose_name_plural = _("séjours")
        ordering = ["-entry_date", "pk"]
        constraints = [
            models.CheckConstraint(condition=Q(end_date__isnull=True) | Q(end_date__gte=models.F("entry_date")),
                                   name="stay_end_after_entry"),
            models.CheckConstraint(condition=Q(end_date__isnull=True) | ~Q(end_reason=""),
                                   name="stay_end_has_reason"),
        ]
        indexes = [models.Index(fields=["section", "entry_date", "end_date"])]

    def __str__(self):
        end = self.end_date.strftime("%d/%m/%Y") if self.end_date else "…"
        return f"{self.resident} — {self.section.alias} du {self.entry_date:%d/%m/%Y} au {end}"

    @property
    def attendance_weekday_set(self) -> frozenset[int] | None:
        """Weekdays of attendance (day care), or None when every open calendar day counts."""
        days = {int(x) for x in self.attendance_weekdays.split(",") if x.strip().isdigit() and int(x) < 7}
        return frozenset(days) if days else None

    @property
    def attendance_label(self) -> str:
        names = ["lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim."]
        days = self.attendance_weekday_set
        return ", ".join(names[d] for d in sorted(days)) if days else ""

    def is_open_on(self, day: date) -> bool:
        return self.entry_date <= day and (self.end_date is None or day <= self.end_date)

    @property
    def is_current(self) -> bool:
        from django.utils import timezone

        return self.is_open_on(timezone.localdate())


class GirAssessment(models.Model):
    """Dependency level (GIR 1–6) from a date; the history is kept."""

    resident = models.ForeignKey(Resident, verbose_name=_("résident"), on_delete=models.CASCADE,
                                 related_name="gir_assessments")
    gir = models.PositiveSmallIntegerField(_("GIR"), choices=[(i, f"GIR {i}") for i in range(1, 7)])
    valid_from = models.DateField(_("à partir du"))

    class Meta:
        verbose_name = _("évaluation GIR")
        verbose_name_plural = _("évaluations GIR")
        ordering = ["-valid_from"]
        constraints = [models.UniqueConstraint(fields=["resident", "valid_from"], name="one_gir_per_day")]

    def __str__(self):
        return f"GIR {self.gir} à partir du {self.valid_from:%d/%m/%Y}"


class AbsenceReason(models.Model):
    """Establishment-defined reason (one-character code) with the billing rule it triggers."""

    class Rule(models.TextChoices):
        HOSPITAL = "HOSPITAL", _("Hospitalisation")
        HOSPITAL_PSY = "HOSPITAL_PSY", _("Hospitalisation psychiatrique")
        CONVENIENCE = "CONVENIENCE", _("Convenance personnelle")
        NONE = "NONE", _("Sans effet sur la facturation")

    establishment = models.ForeignKey(Establishment, verbose_name=_("établissement"), on_delete=models.CASCADE,
                                      related_name="absence_reasons")
    code = models.CharField(_("code"), max_length=1)
    label = models.CharField(_("libellé"), max_length=100)
    rule = models.CharField(_("règle de facturation"), max_length=14, choices=Rule.choices)

    class Meta:
        verbose_name = _("motif d'absence")
        verbose_name_plural = _("motifs d'absence")
        ordering = ["establishment", "code"]
        constraints = [models.UniqueConstraint(fields=["establishment", "code"], name="unique_reason_code")]

    def __str__(self):
        return f"{self.code} — {self.label}"


class Absence(models.Model):
    """Days a resident slept outside: first to last absent day, inclusive (return day is present)."""

    class Source(models.TextChoices):
        MANUAL = "manual", _("Saisie")
        IMPORT = "import", _("Import")

    stay = models.ForeignKey(Stay, verbose_name=_("séjour"), on_delete=models.CASCADE, related_name="absences")
    reason = models.ForeignKey(AbsenceReason, verbose_name=_("motif"), on_delete=models.PROTECT,
                               related_name="absences")
    first_day = models.DateField(_("premier jour d'absence"))
    last_day = models.DateField(_("dernier jour d'absence"))
    source = models.CharField(_("origine"), max_length=10, choices=Source.choices, default=Source.MANUAL)
    import_month = models.DateField(_("mois importé"), null=True, blank=True)
    comment = models.CharField(_("commentaire"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("absence")
        verbose_name_plural = _("absences")
        ordering = ["-first_day"]
        constraints = [
            models.CheckConstraint(condition=Q(last_day__gte=models.F("first_day")), name="absence_last_after_first"),
        ]

    def __str__(self):
        return f"{self.reason.label} du {self.first_day:%d/%m/%Y} au {self.last_day:%d/%m/%Y}"

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1
