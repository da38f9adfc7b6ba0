from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.generic import UpdateView

from . import access
from .selectors import smtp_blocked_notices
from .forms import EstablishmentForm, OrganisationForm, SectionForm
from .views_mixins import SectionMixin


@login_required
def home(request):
    """The association → establishment → section tree of the sections the user may open."""
    sections = list(access.sections_for(request.user))
    if len(sections) == 1:
        return redirect("residents:list", alias=sections[0].alias)
    tree = {}
    for section in sections:
        establishment = section.establishment
        tree.setdefault(establishment.organisation, {}).setdefault(establishment, []).append(section)
    return render(request, "structures/home.html",
                  {"tree": tree, "smtp_blocked": smtp_blocked_notices(request.user, sections)})


@login_required
def section_home(request, alias):
    section = access.section_for_user_or_404(request.user, alias)
    return redirect("residents:list", alias=section.alias)


class _ManagerUpdateView(SectionMixin, UpdateView):
    required_role = access.Role.MANAGER
    write_view = True
    template_name = "structures/settings_form.html"
    title = ""

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["title"] = self.title
        return ctx

    def form_valid(self, form):
        response = super().form_valid(form)
        messages.success(self.request, _("Paramètres enregistrés."))
        return response

    def get_success_url(self):
        return self.request.path


class SectionSettingsView(_ManagerUpdateView):
    form_class = SectionForm
    title = _("Paramètres de la section")

    def get_object(self, queryset=None):
        return self.section


class EstablishmentSettingsView(_ManagerUpdateView):
    form_class = EstablishmentForm
    title = _("Paramètres de l'établissement")

    def get_object(self, queryset=None):
        return self.section.establishment


class OrganisationSettingsView(_ManagerUpdateView):
    """The association and its SMTP account: its administrators only (a section manager gets 403)."""

    required_role = access.Role.READER
    organisation_admin_required = True
    form_class = OrganisationForm
    title = _("Paramètres de l'association (serveur d'envoi)")

    def get_object(self, queryset=None):
        return self.section.establishment.organisation
