"""Social aid in the browser (billing-rules §8): the quarterly pocket-money settlement of a section
(computed per payer, issued by a job followed in the page) and the *état de reversement* of a
département (PDF / XLSX). Readers see and download; issuing needs a billing clerk or manager (403)."""
from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView

from core.models import Job
from payers import selectors as payer_selectors
from structures.views_mixins import SectionMixin

from ..models import PocketMoneySettlement
from ..services import pocket_money as services
from ..services import reversal as reversal_services


class QuarterForm(forms.Form):
    trimestre = forms.CharField(label=gettext_lazy("Trimestre"), max_length=8,
                                help_text=gettext_lazy("AAAA-T1 … AAAA-T4"))

    def clean_trimestre(self):
        value = self.cleaned_data["trimestre"]
        services.quarter_bounds(value)  # French error on a bad quarter
        return services.quarter_label(value)


class ReversalForm(forms.Form):
    payeur = forms.ModelChoiceField(label=gettext_lazy("Département"), queryset=None)
    du = forms.DateField(label=gettext_lazy("Du"), widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}))
    au = forms.DateField(label=gettext_lazy("Au"), widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}))

    def __init__(self, *args, section, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["payeur"].queryset = payer_selectors.payer_list(section=section)

    def clean(self):
        data = super().clean()
        if data.get("du") and data.get("au") and data["au"] < data["du"]:
            self.add_error("au", _("La date de fin (%(end)s) est avant la date de début (%(start)s).") % {
                "end": data["au"].strftime("%d/%m/%Y"), "start": data["du"].strftime("%d/%m/%Y")})
        return data


class PocketMoneyView(SectionMixin, TemplateView):
    template_name = "billing/pocket_money.html"

    def get(self, request, *args, **kwargs):
        if request.GET.get("reversement") in ("pdf", "xlsx"):
            form = ReversalForm(request.GET, section=self.section)
            if form.is_valid():
                return self.reversal_download(form.cleaned_data, request.GET["reversement"])
            return self.render_to_response(self.get_context_data(reversal_form=form))
        return super().get(request, *args, **kwargs)

    def reversal_download(self, data, kind):
        reversal = reversal_services.reversal_compute(section=self.section, payer=data["payeur"], start=data["du"],
                                                      end=data["au"])
        if kind == "pdf":
            response = HttpResponse(reversal_services.reversal_pdf(reversal), content_type="application/pdf")
        else:
            response = HttpResponse(reversal_services.reversal_xlsx(reversal), content_type=(
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))
        response["Content-Disposition"] = (f'attachment; filename="{reversal_services.reversal_filename(reversal, kind)}"')
        response["Cache-Control"] = "private, no-store"
        return response

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        default = services.previous_quarter(timezone.localdate())
        form = kwargs.get("form") or QuarterForm(self.request.GET if "trimestre" in self.request.GET else None,
                                                 initial={"trimestre": default})
        quarter = form.cleaned_data["trimestre"] if form.is_bound and form.is_valid() else (
            None if form.is_bound else default)
        rows, settlements, job = [], {}, None
        if quarter:
            rows = services.quarter_pocket_money(section=self.section, quarter=quarter)
            settlements = {s.decision_id: s for s in PocketMoneySettlement.objects.filter(
                section=self.section, quarter=quarter).select_related("payer_invoice").prefetch_related("credit_notes")}
            for row in rows:
                row.settlement = settlements.get(row.decision.pk)
            job = (Job.objects.filter(section=self.section, kind=services.JOB_KIND, params__quarter=quarter)
                   .order_by("-created_at").first())
        payers = []
        for row in rows:
            if not payers or payers[-1]["code"] != row.payer_code:
                payers.append({"code": row.payer_code, "name": row.payer_name, "rows": []})
            payers[-1]["rows"].append(row)
        start, end = services.quarter_bounds(quarter or default)
        ctx.update(form=form, quarter=quarter, payers=payers, job=job,
                   to_issue=sum(1 for r in rows if r.settlement is None),
                   reversal_form=kwargs.get("reversal_form") or ReversalForm(
                       section=self.section, initial={"du": start, "au": end,
                                                      "payeur": self.request.GET.get("payeur")}))
        return ctx

    def post(self, request, *args, **kwargs):
        form = QuarterForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form))
        quarter = form.cleaned_data["trimestre"]
        _start, end = services.quarter_bounds(quarter)
        if end >= timezone.localdate():
            messages.error(request, _("Le trimestre %(quarter)s n'est pas terminé : sa régularisation se fait "
                                      "après le %(end)s.") % {"quarter": quarter, "end": end.strftime("%d/%m/%Y")})
        else:
            services.pocket_money_job_start(section=self.section, quarter=quarter, user=request.user)
            messages.info(request, _("Régularisation de l'argent de poche %(quarter)s lancée.") % {"quarter": quarter})
        return redirect(f"{request.path}?trimestre={quarter}")


urlpatterns = [
    path("argent-de-poche/", PocketMoneyView.as_view(), name="pocket-money"),
]
