"""Mensualisation screens: the section's plan settings, a resident's plan (next to the mandates:
create with an estimate from the tariffs, postpone, re-present a returned installment, recompute,
change the amount, stop), the schedule
PDF and the yearly « Régularisation de l'échéancier ». Thin: the rules are in
``sepa.services.installments``."""
from __future__ import annotations

from datetime import date

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import TemplateView

from billing.services.pdf import html_to_pdf
from core.forms import attach_errors
from core.money import ZERO, round_money
from residents import selectors as resident_selectors
from residents.views import TABS
from structures.access import Role
from structures.views_mixins import SectionMixin

from .models import Installment, InstallmentPlan, Mandate
from .services import installments as svc
from .services.mandates import add_months


class InstallmentSettingsForm(forms.Form):
    installment_count = forms.IntegerField(label=gettext_lazy("Nombre d'échéances"), min_value=1, max_value=12)
    debit_day = forms.IntegerField(label=gettext_lazy("Jour de prélèvement (1 à 28)"), min_value=1, max_value=28)
    title = forms.CharField(label=gettext_lazy("Titre de l'échéancier"), max_length=120)
    header_text = forms.CharField(label=gettext_lazy("Texte en tête de l'échéancier"),
                                  widget=forms.Textarea(attrs={"rows": 5}))
    footer_text = forms.CharField(label=gettext_lazy("Texte en pied de l'échéancier"),
                                  widget=forms.Textarea(attrs={"rows": 5}))


class InstallmentSettingsView(SectionMixin, TemplateView):
    template_name = "sepa/installment_settings.html"
    required_role = Role.MANAGER
    write_view = True

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        current = svc.installment_settings(self.section)
        ctx["form"] = kwargs.get("form") or InstallmentSettingsForm(initial={
            name: getattr(current, name) for name in InstallmentSettingsForm.base_fields})
        return ctx

    def post(self, request, alias):
        form = InstallmentSettingsForm(request.POST)
        if form.is_valid():
            try:
                svc.installment_settings_save(section=self.section, **form.cleaned_data)
            except ValidationError as exc:
                attach_errors(exc, form)
            else:
                messages.success(request, _("Paramètres de la mensualisation enregistrés."))
                return redirect("sepa:installment-settings", alias=alias)
        return self.render_to_response(self.get_context_data(form=form), status=400)


def _first_month(value: str) -> date:
    try:
        return date.fromisoformat(f"{value}-01")
    except ValueError:
        raise ValidationError({"first_month": _("Mois de la première échéance invalide : « %(value)s » (attendu "
                                                "AAAA-MM).") % {"value": value}}) from None


class ResidentPlanView(SectionMixin, TemplateView):
    """« Utiliser la mensualisation » in the resident file (reached from the *Mandats SEPA* tab)."""

    template_name = "sepa/resident_plan.html"

    def _resident(self):
        return resident_selectors.resident_get(self.request.user, section=self.section, pk=self.kwargs["pk"])

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        resident = self._resident()
        today = timezone.localdate()
        plans = list(InstallmentPlan.objects.filter(section=self.section, resident=resident)
                     .select_related("relative").order_by("-year_start", "-pk"))
        plan = next((p for p in plans if p.status == InstallmentPlan.Status.ACTIVE), None)
        settings = svc.installment_settings(self.section)
        form = kwargs.get("form") or {
            "first_month": f"{add_months(today.replace(day=1), 1):%Y-%m}",
            "installment_count": settings.installment_count, "debit_day": settings.debit_day,
            "relative": next((str(r.pk) for r in resident.relatives.all() if r.is_payer), ""),
            "yearly_amount": "", "estimate_note": ""}
        ctx.update(resident=resident, tabs=TABS, tab="mandates", age=resident.age_on(today), today=today,
                   plan=plan, other_plans=[p for p in plans if p is not plan], form=form,
                   relatives=resident.relatives.all(), settings=settings)
        if plan is not None:
            installments = svc.plan_installments(plan)
            ctx.update(installments=installments, regularisation=svc.plan_regularisation(plan, until=today),
                       scheduled=sum((i.amount for i in installments if i.state in (
                           Installment.State.DUE, Installment.State.COLLECTED)), ZERO),
                       has_mandate=Mandate.objects.filter(establishment=self.section.establishment, resident=resident,
                                                          relative=plan.relative, status=Mandate.Status.ACTIVE).exists())
        return ctx

    def post(self, request, alias, pk):
        resident = self._resident()
        data = request.POST
        action = data.get("action")
        try:
            if action in ("create", "estimate"):
                return self._create(request, resident, data, estimate=action == "estimate")
            plan = get_object_or_404(InstallmentPlan, pk=data.get("plan") or 0, section=self.section,
                                     resident=resident)
            if action == "postpone":
                installment = get_object_or_404(Installment, pk=data.get("installment") or 0, plan=plan)
                svc.installment_postpone(installment=installment)
                messages.success(request, _("Échéance n° %(n)s reportée : les échéances à venir sont recalculées.")
                                 % {"n": installment.number})
            elif action == "represent":
                installment = get_object_or_404(Installment, pk=data.get("installment") or 0, plan=plan)
                svc.installment_represent(installment=installment, user=request.user)
                messages.success(request, _("Échéance n° %(n)s représentée : le prochain lot de prélèvements la "
                                            "prélève.") % {"n": installment.number})
            elif action == "recompute":
                svc.plan_recompute(plan=plan)
                messages.success(request, _("Échéances à venir recalculées."))
            elif action == "amount":
                svc.plan_amount_change(plan=plan, yearly_amount=data.get("yearly_amount", ""))
                messages.success(request, _("Montant annuel modifié : les échéances à venir sont recalculées."))
            elif action == "stop":
                svc.plan_stop(plan=plan)
                messages.success(request, _("Mensualisation arrêtée : les prochaines factures seront prélevées "
                                            "directement."))
            else:
                raise Http404
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        return redirect("sepa:resident-plan", alias=alias, pk=pk)

    def _create(self, request, resident, data, *, estimate: bool):
        form = {name: (data.get(name) or "").strip() for name in (
            "first_month", "installment_count", "debit_day", "relative", "yearly_amount", "estimate_note")}
        relative = resident.relatives.filter(pk=form["relative"]).first() if form["relative"].isdigit() else None
        try:
            first_month = _first_month(form["first_month"])
            if estimate:
                amount, note = svc.yearly_amount_estimate(section=self.section, resident=resident, on=first_month)
                form.update(yearly_amount=f"{amount:.2f}".replace(".", ","), estimate_note=note)
                return self.render_to_response(self.get_context_data(form=form))
            counts = {}
            for name in ("installment_count", "debit_day"):
                if form[name] and not form[name].isdigit():
                    raise ValidationError({name: _("Nombre entier attendu : « %(value)s ».") % {"value": form[name]}})
                counts[name] = int(form[name]) if form[name] else None
            svc.plan_create(section=self.section, resident=resident, relative=relative, first_month=first_month,
                            yearly_amount=form["yearly_amount"], estimate_note=form["estimate_note"],
                            user=request.user, **counts)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return self.render_to_response(self.get_context_data(form=form), status=400)
        messages.success(request, _("Mensualisation enregistrée : échéancier créé."))
        return redirect("sepa:resident-plan", alias=self.section.alias, pk=resident.pk)


def schedule_context(plan: InstallmentPlan) -> dict:
    installments = list(plan.installments.order_by("number"))
    mandate = (Mandate.objects.filter(establishment=plan.section.establishment, resident=plan.resident,
                                      relative=plan.relative).exclude(status=Mandate.Status.REVOKED)
               .order_by("-pk").first())
    kept = [i for i in installments if i.state in (Installment.State.DUE, Installment.State.COLLECTED)]
    return {"plan": plan, "installments": installments, "settings": svc.installment_settings(plan.section),
            "est": plan.section.establishment, "resident": plan.resident, "debtor": plan.relative or plan.resident,
            "mandate": mandate, "total": round_money(sum((i.amount for i in kept), ZERO)),
            "year_end": svc.plan_year_end(plan)}


class PlanSchedulePdfView(SectionMixin, View):
    """The schedule (échéancier) given to the debtor: dates, amounts, states, texts of the section."""

    required_role = Role.READER

    def get(self, request, alias, pk):
        plan = get_object_or_404(InstallmentPlan.objects.select_related("resident", "relative", "section__establishment"),
                                 pk=pk, section=self.section)
        resident_selectors.resident_get(request.user, section=self.section, pk=plan.resident_id)
        html = render_to_string("sepa/pdf/schedule.html", schedule_context(plan))
        response = HttpResponse(html_to_pdf(html), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="echeancier-{plan.pk}.pdf"'
        response["Cache-Control"] = "private, no-store"
        return response


class RegularisationView(SectionMixin, TemplateView):
    """« Régularisation de l'échéancier »: per plan of the year, installments received against what
    was invoiced over the plan year, and the difference (shown; no money is moved)."""

    template_name = "sepa/regularisation.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        today = timezone.localdate()
        value = self.request.GET.get("annee", "")
        year = int(value) if value.isdigit() and 2000 <= int(value) <= 2100 else today.year
        rows = svc.regularisations(section=self.section, year=year)
        ctx.update(year=year, rows=rows, years=[today.year + 1 - n for n in range(6)],
                   received=sum((r.received for r in rows), ZERO), invoiced=sum((r.invoiced for r in rows), ZERO),
                   difference=sum((r.difference for r in rows), ZERO))
        return ctx


urlpatterns = [
    path("mensualisation/parametres/", InstallmentSettingsView.as_view(), name="installment-settings"),
    path("mensualisation/regularisation/", RegularisationView.as_view(), name="installment-regularisation"),
    path("mensualisation/<int:pk>/echeancier.pdf", PlanSchedulePdfView.as_view(), name="plan-pdf"),
    path("residents/<int:pk>/mensualisation/", ResidentPlanView.as_view(), name="resident-plan"),
]
