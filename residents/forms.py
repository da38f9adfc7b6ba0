"""Forms of the resident file. They clean fields only; the services own the rules.

A form here never saves: the view hands ``form.instance`` (or ``cleaned_data``) to a service of
``residents.services`` and attaches the service's ``ValidationError`` to the fields it names with
``core.forms.attach_errors`` — so the messages are the services' French ones, shown as « Libellé : message ».
"""
from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.forms.models import construct_instance
from django.utils.translation import gettext_lazy as _

from structures.access import Role, sections_for
from structures.models import Section

from . import selectors
from .models import Absence, GirAssessment, Relative, Resident, Stay


class DateInput(forms.DateInput):
    """The browser's date picker (value in ISO format; typed JJ/MM/AAAA is accepted too)."""

    input_type = "date"

    def __init__(self, attrs=None):
        super().__init__(attrs=attrs, format="%Y-%m-%d")


class ServiceModelForm(forms.ModelForm):
    """A ModelForm that checks each field with the model's validators (NIR key, date not in the
    future, e-mail…) but leaves rules between fields and objects (check constraints, overlaps, one
    invoice recipient) to the service, which words them in French and names the field.

    Django's own ``_post_clean`` would also run the model's check constraints and answer
    « La contrainte … n'est pas respectée » before the service is even called.
    """

    def _post_clean(self):
        try:
            self.instance = construct_instance(self, self.instance, self._meta.fields, self._meta.exclude)
        except ValidationError as exc:
            self.add_error(None, exc)
            return
        exclude = {f.name for f in self.instance._meta.fields if f.name not in self.fields or f.name in self.errors}
        try:
            self.instance.clean_fields(exclude=exclude)
        except ValidationError as exc:
            self.add_error(None, exc)

    def save(self, commit=True):  # pragma: no cover - guard
        raise NotImplementedError("Enregistrez par le service de residents.services, pas par le formulaire.")


IDENTITY_FIELDS = ["civility", "last_name", "birth_name", "first_name", "birth_date", "birth_place", "nir",
                   "address", "postal_code", "city", "phone", "email", "external_ref"]


class ResidentForm(ServiceModelForm):
    """État civil (and payment mode when creating)."""

    class Meta:
        model = Resident
        fields = [*IDENTITY_FIELDS, "payment_mode", "domicile_secours"]
        widgets = {"birth_date": DateInput()}


class ResidentEditForm(ServiceModelForm):
    class Meta:
        model = Resident
        fields = IDENTITY_FIELDS
        widgets = {"birth_date": DateInput()}


class BillingForm(ServiceModelForm):
    class Meta:
        model = Resident
        fields = ["payment_mode", "domicile_secours"]


GIR_CHOICES = [(i, f"GIR {i}") for i in range(1, 7)]


class FirstStayForm(forms.Form):
    """The first stay, in the current section, of a resident being created."""

    entry_date = forms.DateField(label=_("date d'entrée"), widget=DateInput())
    room = forms.CharField(label=_("chambre"), max_length=20, required=False)
    gir = forms.TypedChoiceField(label=_("GIR"), choices=[("", "—"), *GIR_CHOICES], coerce=int,
                                 empty_value=None, required=False,
                                 help_text=_("Évaluation à la date d'entrée, facultative."))


class RelativeForm(ServiceModelForm):
    class Meta:
        model = Relative
        fields = ["civility", "last_name", "first_name", "relationship", "address", "postal_code", "city",
                  "phone", "email", "receives_invoices", "is_guardian", "is_payer"]


class NewRelativeForm(ServiceModelForm):
    """The optional relative of the creation form: left empty, it is ignored."""

    class Meta:
        model = Relative
        fields = ["last_name", "first_name", "relationship", "email", "phone", "receives_invoices",
                  "is_guardian", "is_payer"]

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("empty_permitted", True)
        kwargs.setdefault("use_required_attribute", False)
        super().__init__(*args, **kwargs)

    @property
    def is_filled(self) -> bool:
        return self.is_bound and self.has_changed()


WEEKDAYS = [("0", _("lundi")), ("1", _("mardi")), ("2", _("mercredi")), ("3", _("jeudi")), ("4", _("vendredi")),
            ("5", _("samedi")), ("6", _("dimanche"))]


class StayForm(ServiceModelForm):
    attendance = forms.MultipleChoiceField(
        label=_("jours de présence (accueil de jour)"), choices=WEEKDAYS, required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Accueil de jour : seuls ces jours (s'ils sont ouverts au calendrier) sont facturés. "
                    "Aucun coché : tous les jours ouverts."))

    class Meta:
        model = Stay
        fields = ["entry_date", "room", "end_date", "end_reason", "room_emptied_on"]
        widgets = {"entry_date": DateInput(), "end_date": DateInput(), "room_emptied_on": DateInput()}
        help_texts = {"end_date": _("Dernier jour facturé dans la section ; laissez vide si le séjour continue.")}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance and self.instance.attendance_weekdays:
            self.initial["attendance"] = [x for x in self.instance.attendance_weekdays.split(",") if x]

    def _post_clean(self):
        super()._post_clean()
        self.instance.attendance_weekdays = ",".join(sorted(self.cleaned_data.get("attendance") or []))


class TransferForm(forms.Form):
    target_section = forms.ModelChoiceField(label=_("section d'arrivée"), queryset=Section.objects.none())
    transfer_date = forms.DateField(label=_("date du transfert"), widget=DateInput(),
                                    help_text=_("Premier jour dans la nouvelle section."))
    room = forms.CharField(label=_("chambre"), max_length=20, required=False)

    def __init__(self, *args, user, section: Section, **kwargs):
        super().__init__(*args, **kwargs)
        # Only sections of the same association where the user may bill (clerk or manager).
        self.fields["target_section"].queryset = (
            sections_for(user, Role.CLERK)
            .filter(establishment__organisation_id=section.establishment.organisation_id, is_active=True)
            .exclude(pk=section.pk).order_by("alias")
        )
        self.fields["target_section"].label_from_instance = lambda s: f"{s.alias} — {s.establishment.name}, {s.name}"


class GirForm(ServiceModelForm):
    class Meta:
        model = GirAssessment
        fields = ["gir", "valid_from"]
        widgets = {"valid_from": DateInput()}


class AbsenceForm(ServiceModelForm):
    class Meta:
        model = Absence
        fields = ["stay", "reason", "first_day", "last_day", "comment"]
        widgets = {"first_day": DateInput(), "last_day": DateInput()}
        help_texts = {"last_day": _("Le jour du retour est un jour de présence.")}

    def __init__(self, *args, user, section: Section, resident: Resident, **kwargs):
        super().__init__(*args, **kwargs)
        stays = selectors.resident_stays(user, resident=resident).filter(section=section)
        self.fields["stay"].queryset = stays
        self.fields["stay"].label_from_instance = lambda s: "{alias} — {start} → {end}".format(
            alias=s.section.alias, start=s.entry_date.strftime("%d/%m/%Y"),
            end=s.end_date.strftime("%d/%m/%Y") if s.end_date else "…")
        self.fields["reason"].queryset = selectors.absence_reasons_for(section=section)
        if not self.instance.pk and not self.is_bound:
            self.initial.setdefault("stay", next(iter(stays), None))
