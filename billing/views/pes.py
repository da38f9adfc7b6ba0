"""*Rôles PES (Hélios)* of a public establishment: PES settings (managers edit), « Simuler » and
« Générer le flux » for a period (both jobs run by the workers, followed on the period's page), the
stored rôles and their files, the accountant's acknowledgement (PES_ACQUIT) upload. Readers see,
simulate and download; generating and importing are for managers.
Another establishment's period or rôle: 404; an establishment that is not public: 404."""
from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import TemplateView

from core.models import Job
from structures.access import Role
from structures.views_mixins import SectionMixin

from ..models import BillingPeriod, PesRole, PesSettings
from ..models.pes import DEFAULT_PRODUCT_CODES, DEFAULT_TIERS_CODES
from ..services import pes as services
from ..services import pes_jobs

XML = "application/xml; charset=iso-8859-1"


class PesSettingsForm(forms.ModelForm):
    class Meta:
        model = PesSettings
        exclude = ["establishment"]
        widgets = {"product_codes": forms.Textarea(attrs={"rows": 3}), "tiers_codes": forms.Textarea(attrs={"rows": 3})}

    def clean_product_codes(self):
        codes = self.cleaned_data.get("product_codes") or {}
        if not isinstance(codes, dict):
            raise ValidationError(_("Attendu : {\"nature\": \"CODE\"}."))
        for kind, code in codes.items():
            if kind not in DEFAULT_PRODUCT_CODES:
                raise ValidationError(_("Nature de produit inconnue : « %(kind)s » (%(known)s).")
                                      % {"kind": kind, "known": ", ".join(DEFAULT_PRODUCT_CODES)})
            if not (isinstance(code, str) and 0 < len(code) <= 4):
                raise ValidationError(_("Code produit de « %(kind)s » : « %(code)s » doit faire 1 à 4 caractères.")
                                      % {"kind": kind, "code": code})
        return codes

    def clean_tiers_codes(self):
        codes = self.cleaned_data.get("tiers_codes") or {}
        if not isinstance(codes, dict):
            raise ValidationError(_("Attendu : {\"resident\": \"01/01/01\"}."))
        from core.pes import CAT_TIERS, NAT_JUR, TYP_TIERS

        for key, value in codes.items():
            if key not in DEFAULT_TIERS_CODES:
                raise ValidationError(_("Débiteur inconnu : « %(key)s » (%(known)s).")
                                      % {"key": key, "known": ", ".join(DEFAULT_TIERS_CODES)})
            parts = str(value).split("/")
            if len(parts) != 3 or parts[0] not in CAT_TIERS or parts[1] not in NAT_JUR or parts[2] not in TYP_TIERS:
                raise ValidationError(_("Codes de « %(key)s » : « %(value)s » n'est pas CatTiers/NatJur/TypTiers "
                                        "(ex. 01/01/01).") % {"key": key, "value": value})
        return codes


class AcquitForm(forms.Form):
    file = forms.FileField(label=gettext_lazy("Acquittement PES (PES_ACQUIT)"))


class PesMixin(SectionMixin):
    required_role = Role.READER

    def check_public(self):
        if not services.pes_applies(self.section.establishment):
            raise Http404("Le PES ORMC ne concerne que les établissements publics.")

    def pes_period(self, period_pk) -> BillingPeriod:
        self.check_public()
        return get_object_or_404(BillingPeriod, pk=period_pk, section=self.section)

    def pes_role(self, pk) -> PesRole:
        self.check_public()
        return get_object_or_404(PesRole, pk=pk, establishment=self.section.establishment)


class PesView(PesMixin, TemplateView):
    template_name = "billing/pes.html"

    def get_context_data(self, **kwargs):
        self.check_public()
        ctx = super().get_context_data(**kwargs)
        establishment = self.section.establishment
        settings = services.pes_settings_for(establishment)
        ctx.update(establishment=establishment, settings=settings,
                   form=kwargs.get("form") or PesSettingsForm(instance=settings, initial=None if settings else {
                       "product_codes": DEFAULT_PRODUCT_CODES, "tiers_codes": DEFAULT_TIERS_CODES,
                       "id_coll": establishment.siret, "fin_jur": establishment.finess,
                       "libelle_col_bud": establishment.name[:38]}),
                   acquit_form=kwargs.get("acquit_form") or AcquitForm(),
                   roles=PesRole.objects.filter(establishment=establishment).select_related("period", "section")[:36],
                   periods=BillingPeriod.objects.filter(section=self.section).order_by("-start")[:12],
                   xsd_dir=services.xsd_dir())
        return ctx


class PesSettingsSaveView(PesView):
    required_role = Role.MANAGER
    write_view = True

    def post(self, request, *args, **kwargs):
        self.check_public()
        establishment = self.section.establishment
        instance = services.pes_settings_for(establishment) or PesSettings(establishment=establishment)
        form = PesSettingsForm(request.POST, instance=instance)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form))
        form.save()
        messages.success(request, _("Paramètres PES enregistrés."))
        return redirect("billing:pes", alias=self.section.alias)


class PesPeriodView(PesMixin, TemplateView):
    """A period's rôles and its PES jobs: the last « Simuler » (its titres and the checker's verdict
    once it ends) and the last « Générer le flux » (the rôle and its file once it ends). The page
    follows them (htmx progress fragment) and reloads its live part when one ends."""

    template_name = "billing/pes_period.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        period = self.pes_period(kwargs["period_pk"])
        simulation = pes_jobs.period_job(period, services.SIMULATE_JOB_KIND)
        generation = pes_jobs.period_job(period, services.GENERATE_JOB_KIND)
        ctx.update(period=period, simulation=simulation, generation=generation,
                   settings=services.pes_settings_for(self.section.establishment),
                   roles=PesRole.objects.filter(period=period),
                   generated_role=PesRole.objects.filter(
                       pk=(generation.result or {}).get("role_id"), establishment=self.section.establishment).first()
                   if generation and generation.status == Job.Status.SUCCEEDED else None)
        return ctx


class PesJobStartView(PesMixin, View):
    """POST: start the period's job (or show the one already running) and come back to its page."""

    start = None  # the service that starts the job: start(period=…, user=…)

    def post(self, request, alias, period_pk):
        period = self.pes_period(period_pk)
        try:
            self.start(period=period, user=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        return redirect("billing:pes-period", alias=alias, period_pk=period.pk)


class PesSimulateView(PesJobStartView):
    """« Simuler » : readers too (nothing is stored)."""

    start = staticmethod(pes_jobs.role_simulate_start)


class PesGenerateView(PesJobStartView):
    """« Générer le flux » : managers."""

    required_role = Role.MANAGER
    start = staticmethod(pes_jobs.role_generate_start)


class PesRoleView(PesMixin, TemplateView):
    template_name = "billing/pes_role.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        role = self.pes_role(kwargs["pk"])
        ctx.update(role=role, articles=role.articles.all())
        return ctx


class PesRoleFileView(PesMixin, View):
    """The stored file; ``?regenerer=1`` rebuilds it from the snapshots (same bytes, else an error)."""

    def get(self, request, alias, pk):
        role = self.pes_role(pk)
        content = bytes(role.content)
        if request.GET.get("regenerer"):
            rebuilt = services.role_render(role)
            if rebuilt != content:
                messages.error(request, _("Le rôle ne se régénère pas à l'identique."))
                return redirect("billing:pes-role", alias=alias, pk=role.pk)
            content = rebuilt
        response = HttpResponse(content, content_type=XML)
        response["Content-Disposition"] = f'attachment; filename="{role.nom_fic}"'
        return response


class PesAcquitView(PesView):
    required_role = Role.MANAGER

    def post(self, request, *args, **kwargs):
        self.check_public()
        form = AcquitForm(request.POST, request.FILES)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(acquit_form=form))
        try:
            results = services.acquit_import(content=form.cleaned_data["file"].read(),
                                             establishments=[self.section.establishment_id])
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            for result in results:
                if result.accepted:
                    messages.success(request, _("Rôle n° %(num)s accepté par le comptable.") % {
                        "num": result.role.id_bord})
                else:
                    messages.warning(request, _("Rôle n° %(num)s rejeté : %(reason)s") % {
                        "num": result.role.id_bord, "reason": result.reason})
        return redirect("billing:pes", alias=self.section.alias)


urlpatterns = [
    path("comptabilite/pes/", PesView.as_view(), name="pes"),
    path("comptabilite/pes/parametres/", PesSettingsSaveView.as_view(), name="pes-settings"),
    path("comptabilite/pes/acquittement/", PesAcquitView.as_view(), name="pes-acquit"),
    path("comptabilite/pes/periode/<int:period_pk>/", PesPeriodView.as_view(), name="pes-period"),
    path("comptabilite/pes/periode/<int:period_pk>/simuler/", PesSimulateView.as_view(), name="pes-simulate"),
    path("comptabilite/pes/periode/<int:period_pk>/generer/", PesGenerateView.as_view(), name="pes-generate"),
    path("comptabilite/pes/roles/<int:pk>/", PesRoleView.as_view(), name="pes-role"),
    path("comptabilite/pes/roles/<int:pk>/fichier.xml", PesRoleFileView.as_view(), name="pes-role-file"),
]
