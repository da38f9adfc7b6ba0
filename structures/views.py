import re
from datetime import date

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.generic import UpdateView

from . import access, dashboard
from .selectors import smtp_blocked_notices
from .forms import EstablishmentForm, OrganisationForm, SectionForm
from .views_mixins import SectionMixin


MONTH_RE = re.compile(r"^(\d{4})-(\d{1,2})$")


def _month_of(value: str | None) -> tuple[int, int]:
    """``?mois=2026-11``; the current month when absent or invalid."""
    match = MONTH_RE.match((value or "").strip())
    if match and 1 <= int(match.group(2)) <= 12 and 2000 <= int(match.group(1)) <= 2100:
        return int(match.group(1)), int(match.group(2))
    today = timezone.localdate()
    return today.year, today.month


def _shift(year: int, month: int, delta: int) -> str:
    index = year * 12 + month - 1 + delta
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


@login_required
def home(request):
    """The tableau de bord of the month for the sections the user may open (see structures/dashboard.py)."""
    year, month = _month_of(request.GET.get("mois"))
    sections = access.sections_for(request.user).order_by("establishment__name", "alias")
    board = dashboard.dashboard_build(user=request.user, sections=sections, year=year, month=month)
    return render(request, "structures/home.html", {
        "board": board, "tree": board.tree, "month_value": f"{year:04d}-{month:02d}",
        "month_label": date(year, month, 1), "previous_month": _shift(year, month, -1),
        "next_month": _shift(year, month, 1),
        "smtp_blocked": smtp_blocked_notices(request.user, list(sections))})


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
