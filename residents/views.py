"""Resident file: list, creation, tabs (état civil, proches, séjours, absences, facturation).

Thin views: every object comes from ``residents.selectors`` scoped to the section of the URL
(404 outside it), every write goes through ``residents.services`` (403 for *lecture* users, by
``SectionMixin`` with ``write_view = True``), and service errors are attached to form fields.
"""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import FormView, ListView, TemplateView

from core.forms import attach_errors
from structures.views_mixins import SectionMixin

from . import forms, selectors
from .models import Resident
from .services import residents as services

TABS = [
    ("identity", gettext_lazy("État civil")),
    ("relatives", gettext_lazy("Proches")),
    ("stays", gettext_lazy("Séjours")),
    ("absences", gettext_lazy("Absences")),
    ("billing", gettext_lazy("Facturation")),
    ("notes", gettext_lazy("Notes")),
    ("account", gettext_lazy("Compte")),  # served by billing (billing:resident-account)
    ("mandates", gettext_lazy("Mandats SEPA")),  # served by sepa (sepa:resident-mandates)
    ("social_aid", gettext_lazy("Aide sociale")),  # served by payers (payers:resident-social-aid)
]
TAB_KEYS = {key for key, _label in TABS} - {"account", "mandates", "social_aid"}


def detail_url(section, resident, tab: str = "identity") -> str:
    url = reverse("residents:detail", kwargs={"alias": section.alias, "pk": resident.pk})
    return url if tab == "identity" else f"{url}?tab={tab}"


class ResidentListView(SectionMixin, ListView):
    template_name = "residents/resident_list.html"
    paginate_by = 25
    presence_choices = [("present", gettext_lazy("Présents")), ("left", gettext_lazy("Sortis")),
                        ("all", gettext_lazy("Tous"))]

    @cached_property
    def presence(self) -> str:
        value = self.request.GET.get("presence", "present")
        return value if value in {key for key, _label in self.presence_choices} else "present"

    def get_queryset(self):
        return selectors.resident_list(self.request.user, section=self.section,
                                       query=self.request.GET.get("q", "").strip(), presence=self.presence)

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        today = timezone.localdate()
        rows = []
        for resident in ctx["object_list"]:
            stay = resident.section_stays[0] if resident.section_stays else None
            rows.append({"resident": resident, "age": resident.age_on(today), "stay": stay})
        ctx.update(rows=rows, q=self.request.GET.get("q", "").strip(), presence=self.presence,
                   presence_choices=self.presence_choices)
        return ctx


class ResidentCreateView(SectionMixin, TemplateView):
    """État civil + first stay in this section + optionally one relative, created in one transaction."""

    write_view = True
    template_name = "residents/resident_create.html"

    def get_forms(self, data=None):
        return {
            "form": forms.ResidentForm(data=data),
            "stay_form": forms.FirstStayForm(data=data, prefix="stay"),
            "relative_form": forms.NewRelativeForm(data=data, prefix="relative"),
        }

    def get(self, request, *args, **kwargs):
        return self.render_to_response(self.get_context_data(**self.get_forms()))

    def post(self, request, *args, **kwargs):
        bound = self.get_forms(data=request.POST)
        form, stay_form, relative_form = bound["form"], bound["stay_form"], bound["relative_form"]
        if all([form.is_valid(), stay_form.is_valid(), relative_form.is_valid()]):
            relatives = [relative_form.instance] if relative_form.is_filled else []
            try:
                resident = services.resident_create(
                    resident=form.instance, section=self.section, relatives=relatives,
                    entry_date=stay_form.cleaned_data["entry_date"], room=stay_form.cleaned_data["room"],
                    gir=stay_form.cleaned_data["gir"],
                )
            except ValidationError as exc:
                attach_errors(exc, form, stay_form, relative_form)
            else:
                messages.success(request, _("Résident %(name)s créé.") % {"name": resident})
                return redirect(detail_url(self.section, resident))
        return self.render_to_response(self.get_context_data(**bound))


class _LoadObjects:
    """Placed after ``SectionMixin`` in the MRO: runs once the section is resolved and the role checked."""

    def dispatch(self, request, *args, **kwargs):
        self.resident = selectors.resident_get(request.user, section=self.section, pk=kwargs["pk"])
        self.load_objects()
        return super().dispatch(request, *args, **kwargs)

    def load_objects(self) -> None:
        """Load the other objects of the URL through the selectors, bound to this section and resident."""


class ResidentMixin(SectionMixin, _LoadObjects):
    """The resident of the URL (``<pk>``), loaded after the section and role checks of ``SectionMixin``.

    A resident — or a stay, relative, absence — from another section, even with a guessed id, is a 404.
    """

    tab = "identity"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx.update(resident=self.resident, tabs=TABS, tab=self.tab,
                   age=self.resident.age_on(timezone.localdate()),
                   back_url=detail_url(self.section, self.resident, self.tab))
        return ctx


class ResidentDetailView(ResidentMixin, TemplateView):
    template_name = "residents/resident_detail.html"

    def load_objects(self):
        tab = self.request.GET.get("tab", "identity")
        self.tab = tab if tab in TAB_KEYS else "identity"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        user, resident = self.request.user, self.resident
        if self.tab == "relatives":
            ctx["relatives"] = resident.relatives.all()
        elif self.tab == "stays":
            ctx["stays"] = list(selectors.resident_stays(user, resident=resident))
            ctx["girs"] = selectors.resident_gir_history(resident=resident)
            ctx["current_gir"] = resident.gir_on(timezone.localdate())
            if self.can_write:
                ctx["gir_form"] = forms.GirForm(initial={"valid_from": timezone.localdate()})
        elif self.tab == "absences":
            ctx["absences"] = selectors.resident_absences(user, resident=resident)
        elif self.tab == "notes":
            ctx["notes"] = resident.notes.select_related("author").order_by("-created_at", "-pk")
        return ctx


class NoteAddView(ResidentMixin, View):
    """Adds a dated note to the resident's thread (billing clerks and managers; readers: 403)."""

    write_view = True

    def post(self, request, *args, **kwargs):
        try:
            services.resident_note_add(resident=self.resident, text=request.POST.get("text", ""),
                                       author=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("Note ajoutée."))
        return redirect(detail_url(self.section, self.resident, "notes"))


class ResidentFormView(ResidentMixin, FormView):
    """A form page of the resident file: validates, calls ``perform`` (a service), maps its errors."""

    write_view = True
    template_name = "residents/form_page.html"
    title = ""
    intro = ""
    submit_label = gettext_lazy("Enregistrer")
    success_message = gettext_lazy("Modifications enregistrées.")
    error_rename: dict = {}

    def get_instance(self):
        return None

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        instance = self.get_instance()
        if instance is not None:
            kwargs["instance"] = instance
        return kwargs

    def perform(self, form) -> None:
        raise NotImplementedError

    def form_valid(self, form):
        try:
            self.perform(form)
        except ValidationError as exc:
            attach_errors(exc, form, rename=self.error_rename)
            return self.form_invalid(form)
        messages.success(self.request, self.success_message)
        return redirect(self.get_success_url())

    def get_success_url(self):
        return detail_url(self.section, self.resident, self.tab)

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx.update(title=self.title, intro=self.intro, submit_label=self.submit_label)
        return ctx

    def fresh_resident(self) -> Resident:
        """A second copy for the form, so a rejected edit does not show in the page header."""
        return selectors.resident_get(self.request.user, section=self.section, pk=self.resident.pk)


# --- État civil, facturation -------------------------------------------------------------------

class ResidentUpdateView(ResidentFormView):
    form_class = forms.ResidentEditForm
    title = gettext_lazy("Modifier l'état civil")

    def get_instance(self):
        return self.fresh_resident()

    def perform(self, form):
        services.resident_update(resident=form.instance)


class BillingUpdateView(ResidentFormView):
    form_class = forms.BillingForm
    tab = "billing"
    title = gettext_lazy("Mode de règlement et domicile de secours")
    intro = gettext_lazy("Les coordonnées bancaires (IBAN, BIC, mandat) seront saisies avec le module SEPA. "
                         "Le domicile de secours est le département qui verse l'APA et l'aide sociale.")

    def get_instance(self):
        return self.fresh_resident()

    def perform(self, form):
        services.resident_update(resident=form.instance)


# --- Proches -----------------------------------------------------------------------------------

class RelativeCreateView(ResidentFormView):
    form_class = forms.RelativeForm
    tab = "relatives"
    title = gettext_lazy("Ajouter un proche")
    success_message = gettext_lazy("Proche ajouté.")

    def perform(self, form):
        form.instance.resident = self.resident
        services.relative_save(relative=form.instance)


class RelativeUpdateView(ResidentFormView):
    form_class = forms.RelativeForm
    tab = "relatives"
    title = gettext_lazy("Modifier un proche")

    def load_objects(self):
        self.relative = selectors.relative_get(resident=self.resident, pk=self.kwargs["relative_pk"])

    def get_instance(self):
        return self.relative

    def perform(self, form):
        services.relative_save(relative=form.instance)


class ConfirmDeleteView(ResidentMixin, TemplateView):
    """GET: a confirmation page (403 for readers); POST: the deletion."""

    write_view = True
    template_name = "residents/confirm_delete.html"
    title = ""

    def target(self):
        raise NotImplementedError

    def perform_delete(self) -> None:
        raise NotImplementedError

    def post(self, request, *args, **kwargs):
        try:
            self.perform_delete()
        except ValidationError as exc:
            for message in exc.messages:
                messages.error(request, message)
        else:
            messages.success(request, _("Suppression effectuée."))
        return redirect(detail_url(self.section, self.resident, self.tab))

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx.update(title=self.title, target=self.target())
        return ctx


class RelativeDeleteView(ConfirmDeleteView):
    tab = "relatives"
    title = gettext_lazy("Supprimer un proche")

    def load_objects(self):
        self.relative = selectors.relative_get(resident=self.resident, pk=self.kwargs["relative_pk"])

    def target(self):
        return self.relative

    def perform_delete(self):
        services.relative_delete(relative=self.relative)


# --- Séjours, transfert, GIR -------------------------------------------------------------------

class StayCreateView(ResidentFormView):
    form_class = forms.StayForm
    tab = "stays"
    title = gettext_lazy("Nouveau séjour dans la section")
    success_message = gettext_lazy("Séjour enregistré.")

    def perform(self, form):
        form.instance.resident = self.resident
        form.instance.section = self.section
        services.stay_save(stay=form.instance)


class StayUpdateView(ResidentFormView):
    form_class = forms.StayForm
    tab = "stays"
    title = gettext_lazy("Modifier ou clore le séjour")
    intro = gettext_lazy("Pour clore le séjour, indiquez la date de fin (dernier jour facturé) et son motif.")

    def load_objects(self):
        self.stay = selectors.stay_get(self.request.user, section=self.section, pk=self.kwargs["stay_pk"],
                                       resident=self.resident)

    def get_instance(self):
        return self.stay

    def perform(self, form):
        services.stay_save(stay=form.instance)


class TransferView(ResidentFormView):
    form_class = forms.TransferForm
    tab = "stays"
    title = gettext_lazy("Transférer vers une autre section")
    intro = gettext_lazy(
        "Le séjour actuel est clos la veille du transfert : le dernier jour facturé dans la section "
        "d'origine est le jour précédant la date du transfert, qui est le premier jour facturé dans "
        "la section d'arrivée. L'historique des deux séjours est conservé.")
    submit_label = gettext_lazy("Transférer")
    success_message = gettext_lazy("Transfert enregistré.")
    error_rename = {"entry_date": "transfer_date", "end_date": "transfer_date"}

    def load_objects(self):
        self.stay = selectors.stay_get(self.request.user, section=self.section, pk=self.kwargs["stay_pk"],
                                       resident=self.resident)

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "user": self.request.user, "section": self.section}

    def perform(self, form):
        data = form.cleaned_data
        services.resident_transfer(stay=self.stay, target_section=data["target_section"],
                                   transfer_date=data["transfer_date"], room=data["room"])

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["stay"] = self.stay
        return ctx


class GirCreateView(ResidentFormView):
    form_class = forms.GirForm
    tab = "stays"
    title = gettext_lazy("Nouvelle évaluation GIR")
    success_message = gettext_lazy("Évaluation GIR enregistrée.")

    def perform(self, form):
        services.gir_add(resident=self.resident, gir=form.cleaned_data["gir"],
                         valid_from=form.cleaned_data["valid_from"])


# --- Absences ----------------------------------------------------------------------------------

class AbsenceFormMixin:
    form_class = forms.AbsenceForm
    tab = "absences"

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "user": self.request.user, "section": self.section,
                "resident": self.resident}

    def perform(self, form):
        services.absence_save(absence=form.instance)


class AbsenceCreateView(AbsenceFormMixin, ResidentFormView):
    title = gettext_lazy("Nouvelle absence")
    intro = gettext_lazy("Indiquez le premier et le dernier jour d'absence (nuits passées dehors) ; "
                         "le jour du retour est un jour de présence.")
    success_message = gettext_lazy("Absence enregistrée.")


class AbsenceUpdateView(AbsenceFormMixin, ResidentFormView):
    title = gettext_lazy("Modifier une absence")

    def load_objects(self):
        self.absence = selectors.absence_get(self.request.user, section=self.section, pk=self.kwargs["absence_pk"],
                                             resident=self.resident)

    def get_instance(self):
        return self.absence


class AbsenceDeleteView(ConfirmDeleteView):
    tab = "absences"
    title = gettext_lazy("Supprimer une absence")

    def load_objects(self):
        self.absence = selectors.absence_get(self.request.user, section=self.section, pk=self.kwargs["absence_pk"],
                                             resident=self.resident)

    def target(self):
        return self.absence

    def perform_delete(self):
        services.absence_delete(absence=self.absence)


