"""The billing side of a stay: its package (dated) and its coverage rules."""
from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView

from core.forms import attach_errors
from payers.models import CoverageRule, Payer, PayerGroup, SocialAidDecision
from residents.selectors import stay_get
from structures.views_mixins import SectionMixin

from ..models import Package, Product
from ..services import stays as stay_services


class PackageForm(forms.Form):
    package = forms.ModelChoiceField(label=gettext_lazy("forfait"), queryset=Package.objects.none())
    valid_from = forms.DateField(label=gettext_lazy("à partir du"), widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}))


class CoverageForm(forms.ModelForm):
    class Meta:
        model = CoverageRule
        fields = ["payer", "group", "scope", "products", "mode", "value", "monthly_cap_units", "valid_from",
                  "valid_to", "priority", "invoiced", "decision_reference"]
        widgets = {"valid_from": forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}),
                   "valid_to": forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"})}


class SocialAidForm(forms.ModelForm):
    class Meta:
        model = SocialAidDecision
        fields = ["payer", "group", "decision_reference", "valid_from", "valid_to", "monthly_resources",
                  "housing_allowance", "pocket_money_minimum"]
        widgets = {"valid_from": forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}),
                   "valid_to": forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"})}


class StayBillingView(SectionMixin, TemplateView):
    template_name = "billing/stay_billing.html"

    def get_stay(self):
        return stay_get(self.request.user, section=self.section, pk=self.kwargs["stay_pk"])

    def _forms(self, stay, package_form=None, coverage_form=None):
        organisation = self.section.establishment.organisation
        package_form = package_form or PackageForm(initial={"valid_from": stay.entry_date})
        package_form.fields["package"].queryset = Package.objects.filter(section=self.section)
        coverage_form = coverage_form or CoverageForm(initial={"valid_from": stay.entry_date})
        coverage_form.fields["payer"].queryset = Payer.objects.filter(organisation=organisation)
        coverage_form.fields["group"].queryset = PayerGroup.objects.filter(payer__organisation=organisation)
        coverage_form.fields["products"].queryset = Product.objects.filter(establishment=self.section.establishment)
        return package_form, coverage_form

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        stay = self.get_stay()
        package_form, coverage_form = self._forms(stay, kwargs.get("package_form"), kwargs.get("coverage_form"))
        aid_form = kwargs.get("aid_form") or SocialAidForm(initial={"valid_from": stay.entry_date})
        organisation = self.section.establishment.organisation
        aid_form.fields["payer"].queryset = Payer.objects.filter(organisation=organisation, kind="departement")
        aid_form.fields["group"].queryset = PayerGroup.objects.filter(payer__organisation=organisation)
        ctx.update(aid_form=aid_form, decisions=stay.social_aid_decisions.select_related("payer", "group"))
        ctx.update(stay=stay, assignments=stay.package_assignments.select_related("package"),
                   rules=stay.coverage_rules.select_related("payer", "group").prefetch_related("products"),
                   package_form=package_form, coverage_form=coverage_form)
        return ctx

    def post(self, request, *args, **kwargs):
        stay = self.get_stay()
        action = request.POST.get("action")
        if action == "package":
            form, _unused = self._forms(stay, package_form=PackageForm(request.POST))
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
            _unused, form = self._forms(stay, coverage_form=CoverageForm(request.POST))
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
            form = SocialAidForm(request.POST)
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
