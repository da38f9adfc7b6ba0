"""Payer files (managers, in the app): list, and a file per payer with the tabs Définition,
Paramétrage, Groupes, Envois (``payers.sendings``), Notes; Bordereaux and Règlements are billing's views (layer 3), linked by URL name.

Scoping: the section of the URL (``SectionMixin``, 404 when not granted); a payer belongs to the
association of that section (another association's payer → 404); every write needs the section's
*responsable* role (403 otherwise, readers and billing clerks included).
"""
from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import FormView, TemplateView

from core.forms import attach_errors
from structures import access
from structures.access import Role
from structures.views_mixins import SectionMixin

from . import forms, selectors
from .models import Payer, PayerGroup
from .sendings import payer_sendings
from .services import payers as services

TABS = [
    ("definition", gettext_lazy("Définition")),
    ("settings", gettext_lazy("Paramétrage")),
    ("groups", gettext_lazy("Groupes")),
    ("aid_plans", gettext_lazy("Plans d'aide")),  # payers.views_aid_plans (payers:aid-plans)
    ("statements", gettext_lazy("Bordereaux")),  # served by billing (billing:payer-statements)
    ("payments", gettext_lazy("Règlements")),
    ("mails", gettext_lazy("Envois")),  # filled by the apps that write to payers (payers.sendings)
    ("notes", gettext_lazy("Notes")),
]
TAB_KEYS = {key for key, _label in TABS} - {"statements", "aid_plans"}


def payer_url(section, payer, tab: str = "definition") -> str:
    url = reverse("payers:detail", kwargs={"alias": section.alias, "pk": payer.pk})
    return url if tab == "definition" else f"{url}?tab={tab}"


class ManagerMixin(SectionMixin):
    required_role = Role.MANAGER


class PayerListView(ManagerMixin, TemplateView):
    template_name = "payers/payer_list.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        query = self.request.GET.get("q", "").strip()
        ctx.update(payers=selectors.payer_list(section=self.section, query=query), q=query)
        return ctx


class PayerMixin(ManagerMixin):
    """The payer of the URL, loaded after the section and role checks (404 outside the association)."""

    tab = "definition"

    def setup(self, request, *args, **kwargs):
        super().setup(request, *args, **kwargs)
        self._payer = None

    @property
    def payer(self) -> Payer:
        if self._payer is None:
            self._payer = selectors.payer_get(section=self.section, pk=self.kwargs["pk"])
        return self._payer

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx.update(payer=self.payer, tabs=TABS, tab=self.tab, back_url=payer_url(self.section, self.payer, self.tab))
        return ctx


class _LoadPayer:
    """Placed after ``SectionMixin``: resolves the payer (404) before any form or write runs."""

    def dispatch(self, request, *args, **kwargs):
        self.payer  # noqa: B018 — 404 before anything else
        self.load_objects()
        return super().dispatch(request, *args, **kwargs)

    def load_objects(self) -> None:
        pass


class PayerDetailView(PayerMixin, _LoadPayer, TemplateView):
    template_name = "payers/payer_detail.html"

    def load_objects(self):
        tab = self.request.GET.get("tab", "definition")
        self.tab = tab if tab in TAB_KEYS else "definition"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        if self.tab == "groups":
            ctx["groups"] = self.payer.groups.all()
        elif self.tab == "settings":  # default aid-plan values per product of the section's establishment
            ctx["aid_plan_defaults"] = self.payer.aid_plan_defaults.filter(
                product__establishment=self.section.establishment).select_related("product")
        elif self.tab == "mails":
            ctx["mails"] = selectors.payer_mails(payer=self.payer, section=self.section)[:200]
            ctx["sendings"] = payer_sendings(payer=self.payer, sections=access.sections_for(self.request.user))
        elif self.tab == "notes":
            ctx["notes"] = selectors.payer_notes(payer=self.payer)
            ctx["note_form"] = forms.NoteForm()
        return ctx


class PayerFormView(PayerMixin, _LoadPayer, FormView):
    write_view = True
    template_name = "payers/form_page.html"
    title = ""
    success_message = gettext_lazy("Modifications enregistrées.")

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
            attach_errors(exc, form)
            return self.form_invalid(form)
        messages.success(self.request, self.success_message)
        return redirect(payer_url(self.section, self.payer, self.tab))

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["title"] = self.title
        return ctx

    def fresh_payer(self) -> Payer:
        return selectors.payer_get(section=self.section, pk=self.payer.pk)


class PayerCreateView(ManagerMixin, FormView):
    write_view = True
    template_name = "payers/form_page.html"
    form_class = forms.PayerDefinitionForm

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["instance"] = Payer(organisation=self.section.establishment.organisation)
        return kwargs

    def form_valid(self, form):
        try:
            payer = services.payer_save(payer=form.instance)
        except ValidationError as exc:
            attach_errors(exc, form)
            return self.form_invalid(form)
        messages.success(self.request, _("Payeur %(payer)s créé.") % {"payer": payer})
        return redirect(payer_url(self.section, payer))

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx.update(title=_("Nouveau payeur"), back_url=reverse("payers:list", kwargs={"alias": self.section.alias}))
        return ctx


class PayerDefinitionView(PayerFormView):
    form_class = forms.PayerDefinitionForm
    title = gettext_lazy("Modifier la définition")

    def get_instance(self):
        return self.fresh_payer()

    def perform(self, form):
        services.payer_save(payer=form.instance)


class PayerSettingsView(PayerDefinitionView):
    """Same payer, same save; another form and tab."""
    form_class = forms.PayerSettingsForm
    tab = "settings"
    title = gettext_lazy("Modifier le paramétrage")


class GroupCreateView(PayerFormView):
    form_class = forms.PayerGroupForm
    tab = "groups"
    title = gettext_lazy("Ajouter un groupe")
    success_message = gettext_lazy("Groupe ajouté.")

    def get_instance(self):
        return PayerGroup(payer=self.payer)

    def perform(self, form):
        services.payer_group_save(group=form.instance)


class GroupUpdateView(PayerFormView):
    form_class = forms.PayerGroupForm
    tab = "groups"
    title = gettext_lazy("Modifier un groupe")

    def load_objects(self):
        self.group = selectors.payer_group_get(payer=self.payer, pk=self.kwargs["group_pk"])

    def get_instance(self):
        return self.group

    def perform(self, form):
        services.payer_group_save(group=form.instance)


class GroupDeleteView(PayerMixin, _LoadPayer, View):
    write_view = True

    def post(self, request, *args, **kwargs):
        group = selectors.payer_group_get(payer=self.payer, pk=kwargs["group_pk"])
        try:
            services.payer_group_delete(group=group)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("Groupe %(code)s supprimé.") % {"code": group.code})
        return redirect(payer_url(self.section, self.payer, "groups"))


class NoteAddView(PayerMixin, _LoadPayer, View):
    write_view = True

    def post(self, request, *args, **kwargs):
        form = forms.NoteForm(request.POST)
        try:
            if not form.is_valid():
                raise ValidationError(_("La note est vide."))
            services.payer_note_add(payer=self.payer, text=form.cleaned_data["text"], author=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("Note ajoutée."))
        return redirect(payer_url(self.section, self.payer, "notes"))
