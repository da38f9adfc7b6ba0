"""The billing side of a stay: its package (dated) and its coverage rules."""
from datetime import date

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView

from core.forms import attach_errors
from payers.models import CoverageRule, Payer, PayerGroup, SocialAidDecision
from residents.selectors import stay_get
from structures.views_mixins import SectionMixin

from ..models import Package, Product
from ..services import stays as stay_services
from ..services.aid_plans import stay_simulate


class SectionScopedForm:
    """Mixin: a form whose choices are scoped to the section (and its association) in ``__init__``: a posted
    id outside the scoped queryset is refused by the field itself (« Sélectionnez un choix valide »)."""

    def __init__(self, *args, section, **kwargs):
        super().__init__(*args, **kwargs)
        self.scope(section=section, organisation=section.establishment.organisation)

    def scope(self, *, section, organisation):  # pragma: no cover - overridden
        raise NotImplementedError


class PackageForm(SectionScopedForm, forms.Form):
    package = forms.ModelChoiceField(label=gettext_lazy("forfait"), queryset=Package.objects.none())
    valid_from = forms.DateField(label=gettext_lazy("à partir du"), widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}))

    def scope(self, *, section, organisation):
        self.fields["package"].queryset = Package.objects.filter(section=section)


class CoverageForm(SectionScopedForm, forms.ModelForm):
    class Meta:
        model = CoverageRule
        fields = ["payer", "group", "scope", "products", "mode", "value", "monthly_cap_units", "valid_from",
                  "valid_to", "priority", "invoiced", "decision_reference"]
        widgets = {"valid_from": forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}),
                   "valid_to": forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"})}

    def scope(self, *, section, organisation):
        self.fields["payer"].queryset = Payer.objects.filter(organisation=organisation)
        self.fields["group"].queryset = PayerGroup.objects.filter(payer__organisation=organisation)
        self.fields["products"].queryset = Product.objects.filter(establishment=section.establishment)


class SocialAidForm(SectionScopedForm, forms.ModelForm):
    class Meta:
        model = SocialAidDecision
        fields = ["payer", "group", "decision_reference", "valid_from", "valid_to", "monthly_resources",
                  "housing_allowance", "pocket_money_minimum"]
        widgets = {"valid_from": forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}),
                   "valid_to": forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"})}

    def scope(self, *, section, organisation):
        self.fields["payer"].queryset = Payer.objects.filter(organisation=organisation, kind="departement")
        self.fields["group"].queryset = PayerGroup.objects.filter(payer__organisation=organisation)


class StayBillingView(SectionMixin, TemplateView):
    template_name = "billing/stay_billing.html"

    def get_stay(self):
        return stay_get(self.request.user, section=self.section, pk=self.kwargs["stay_pk"])

    def _forms(self, stay, package_form=None, coverage_form=None):
        initial = {"valid_from": stay.entry_date}
        package_form = package_form or PackageForm(initial=initial, section=self.section)
        coverage_form = coverage_form or CoverageForm(initial=initial, section=self.section)
        return package_form, coverage_form

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        stay = self.get_stay()
        package_form, coverage_form = self._forms(stay, kwargs.get("package_form"), kwargs.get("coverage_form"))
        aid_form = kwargs.get("aid_form") or SocialAidForm(initial={"valid_from": stay.entry_date},
                                                           section=self.section)
        ctx.update(aid_form=aid_form, decisions=stay.social_aid_decisions.select_related("payer", "group"))
        ctx.update(aid_plans=stay.aid_plans.select_related("payer", "group", "product").order_by("product__code",
                                                                                                 "-valid_from"))
        ctx.update(self._simulation(stay))
        ctx.update(stay=stay, assignments=stay.package_assignments.select_related("package"),
                   rules=stay.coverage_rules.select_related("payer", "group").prefetch_related("products"),
                   package_form=package_form, coverage_form=coverage_form)
        return ctx

    def _simulation(self, stay) -> dict:
        """« Simulation » of a month (``?simulation=YYYY-MM``): the engine in memory, nothing written."""
        value = self.request.GET.get("simulation", "")
        today = timezone.localdate()
        result = {"simulation_month": value or f"{today:%Y-%m}"}
        if not value:
            return result
        try:
            year, month = (int(part) for part in value.split("-"))
            date(year, month, 1)
        except ValueError:
            result["simulation_error"] = _("Mois invalide : « %(value)s » (attendu : AAAA-MM).") % {"value": value}
            return result
        try:
            result["simulation"] = stay_simulate(stay=stay, year=year, month=month)
        except ValidationError as exc:
            result["simulation_error"] = " ".join(exc.messages)
        return result

    def post(self, request, *args, **kwargs):
        stay = self.get_stay()
        action = request.POST.get("action")
        if action == "package":
            form = PackageForm(request.POST, section=self.section)
            if form.is_valid():
                try:
                    stay_services.stay_package_set(stay=stay, **form.cleaned_data)
                except ValidationError as exc:
                    attach_errors(exc, form)
                else:
                    messages.success(request, _("Forfait enregistré."))
                    return redirect(request.path)
            return self.render_to_response(self.get_context_data(package_form=form))
        if action == "coverage":
            form = CoverageForm(request.POST, section=self.section)
            if form.is_valid():
                rule = form.save(commit=False)
                rule.stay = stay
                try:
                    stay_services.coverage_rule_add(rule=rule, products=form.cleaned_data.get("products"))
                except ValidationError as exc:
                    attach_errors(exc, form)
                else:
                    messages.success(request, _("Prise en charge enregistrée."))
                    return redirect(request.path)
            return self.render_to_response(self.get_context_data(coverage_form=form))
        if action == "social-aid":
            form = SocialAidForm(request.POST, section=self.section)
            if form.is_valid():
                decision = form.save(commit=False)
                decision.stay = stay
                try:
                    stay_services.social_aid_decision_add(decision=decision)
                except ValidationError as exc:
                    attach_errors(exc, form)
                else:
                    messages.success(request, _("Décision d'aide sociale enregistrée."))
                    return redirect(request.path)
            return self.render_to_response(self.get_context_data(aid_form=form))
        if action == "delete-rule":
            stay.coverage_rules.filter(pk=request.POST.get("rule")).delete()
            messages.success(request, _("Prise en charge supprimée."))
        return redirect(request.path)


urlpatterns = [
    path("sejours/<int:stay_pk>/", StayBillingView.as_view(), name="stay-billing"),
]
