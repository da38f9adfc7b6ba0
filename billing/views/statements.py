"""Payer statements (*bordereaux*) in the browser: per period (simulate, create, validate, PDF, XLSX
export, e-mail, batch print) and the *Bordereaux* tab of a payer file. Billing clerks and managers
write; readers see, export and print (403 on any change); another section's period or statement,
another association's payer: 404; another section's statement slipped into a selection: refused."""
from __future__ import annotations

from datetime import date
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import TemplateView

from core.models import Job
from payers import selectors as payer_selectors
from payers.views import TABS as PAYER_TABS
from structures.access import Role
from structures.views_mixins import SectionMixin

from .. import selectors
from ..models import BillingPeriod, Invoice, Statement
from ..services import statement_documents as documents
from ..services import statements as services


class StatementDateForm(forms.Form):
    statement_date = forms.DateField(label=gettext_lazy("Date des bordereaux"),
                                     widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}))


def _statement_get(section, pk) -> Statement:
    try:
        return Statement.objects.select_related("payer", "payer_group", "period", "establishment", "section").get(
            pk=pk, section=section)
    except Statement.DoesNotExist as exc:
        raise Http404("Bordereau inconnu dans cette section.") from exc


def _with_settlement(statements):
    statements = list(statements)
    settled = services.statement_settlement(statements)
    for s in statements:
        s.paid, s.left = settled[s.pk]
        s.partial = s.paid and s.left
    return statements


class PeriodStatementsView(SectionMixin, TemplateView):
    template_name = "billing/period_statements.html"

    def get_period(self):
        return selectors.period_get(section=self.section, pk=self.kwargs["period_pk"])

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        period = self.get_period()
        form = kwargs.get("form") or StatementDateForm(self.request.GET or None,
                                                       initial={"statement_date": timezone.localdate()})
        statements = _with_settlement(Statement.objects.filter(period=period).select_related("payer", "payer_group",
                                                                                             "resident")
                                      .order_by("payer__code", "number", "pk"))
        ctx.update(period=period, form=form, statements=statements, today=timezone.localdate(),
                   plans=services.statements_plan(period=period) if "simuler" in self.request.GET else None,
                   no_email=[s for s in statements if not s.payer.email],
                   print_job=_print_job(self.section, self.request.user, period=period))
        return ctx

    def post(self, request, *args, **kwargs):
        period = self.get_period()
        if request.POST.get("action") == "create":
            form = StatementDateForm(request.POST)
            if not form.is_valid():
                return self.render_to_response(self.get_context_data(form=form))
            created = services.statements_create(period=period, statement_date=form.cleaned_data["statement_date"],
                                                 user=request.user)
            messages.success(request, _("%(n)s bordereau(x) créé(s).") % {"n": len(created)})
        else:
            _statement_actions(request, Statement.objects.filter(period=period))
        return redirect("billing:period-statements", alias=self.section.alias, period_pk=period.pk)


def _statement_actions(request, scope) -> None:
    """« Valider » and « Envoyer par e-mail » on the ticked statements of ``scope`` (a period's, a range's)."""
    ids = [int(pk) for pk in request.POST.getlist("statement") if pk.isdigit()]
    chosen = list(scope.filter(pk__in=ids).select_related("payer", "establishment", "section", "period"))
    action = request.POST.get("action")
    try:
        if action not in ("validate", "send"):
            raise ValidationError(_("Action inconnue."))
        if not chosen:
            raise ValidationError(_("Cochez au moins un bordereau."))
        if action == "validate":
            done = services.statements_validate(statements=chosen, user=request.user)
            messages.success(request, _("%(n)s bordereau(x) validé(s).") % {"n": len(done)})
        else:
            campaign, without = documents.statements_send(statements=chosen, user=request.user)
            if campaign:
                messages.success(request, _("Envoi de %(n)s bordereau(x) lancé.") % {
                    "n": len(chosen) - len(without)})
            if without:
                messages.warning(request, _("Sans adresse e-mail, non envoyé(s) : %(payers)s — à imprimer.") % {
                    "payers": ", ".join(sorted({s.payer.code for s in without}))})
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))


class RangeForm(forms.Form):
    payeur = forms.ModelChoiceField(label=gettext_lazy("Payeur"), queryset=None, required=False,
                                    empty_label=gettext_lazy("Tous les payeurs"))
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


class RangeStatementsView(SectionMixin, TemplateView):
    """Statements over a date range instead of a period (payers billed quarterly): a payer or all, the
    invoices whose dates lie inside the range; same simulate → create → validate → PDF → send flow."""

    template_name = "billing/range_statements.html"

    def range_form(self, data=None):
        data = data if data is not None else (self.request.GET if "du" in self.request.GET else None)
        return RangeForm(data, section=self.section, initial={"payeur": self.request.GET.get("payeur")})

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        range_form = kwargs.get("range_form") or self.range_form()
        date_form = kwargs.get("form") or StatementDateForm(
            {"statement_date": self.request.GET["statement_date"]} if self.request.GET.get("statement_date") else None,
            initial={"statement_date": timezone.localdate()})
        statements = Statement.objects.filter(section=self.section, period__isnull=True)
        plans = None
        if range_form.is_bound and range_form.is_valid():
            data = range_form.cleaned_data
            statements = statements.filter(date_from__gte=data["du"], date_to__lte=data["au"])
            if data["payeur"]:
                statements = statements.filter(payer=data["payeur"])
            if "simuler" in self.request.GET:
                plans = services.statements_plan(section=self.section, date_from=data["du"], date_to=data["au"],
                                                 payer=data["payeur"])
        statements = _with_settlement(statements.select_related("payer", "payer_group", "resident")
                                      .order_by("-date_from", "payer__code", "number", "pk")[:200])
        ctx.update(range_form=range_form, form=date_form, statements=statements, plans=plans,
                   no_email=[s for s in statements if not s.payer.email], query=self.request.GET.urlencode(),
                   print_job=_print_job(self.section, self.request.user, period=None))
        return ctx

    def post(self, request, *args, **kwargs):
        back = request.path + ("?" + request.POST["query"] if request.POST.get("query") else "")
        if request.POST.get("action") == "create":
            range_form = self.range_form(request.POST)
            date_form = StatementDateForm(request.POST)
            if not (range_form.is_valid() & date_form.is_valid()):
                return self.render_to_response(self.get_context_data(range_form=range_form, form=date_form))
            data = range_form.cleaned_data
            try:
                created = services.statements_create(
                    section=self.section, date_from=data["du"], date_to=data["au"], payer=data["payeur"],
                    statement_date=date_form.cleaned_data["statement_date"], user=request.user)
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
            else:
                messages.success(request, _("%(n)s bordereau(x) créé(s).") % {"n": len(created)})
            query = {"du": data["du"].isoformat(), "au": data["au"].isoformat(),
                     "payeur": data["payeur"].pk if data["payeur"] else ""}
            return redirect(request.path + "?" + urlencode(query))
        _statement_actions(request, Statement.objects.filter(section=self.section, period__isnull=True))
        return redirect(back)


def _print_job(section, user, *, period):
    """The user's last batch print of this page (a period's statements, or the date-range ones)."""
    return (Job.objects.filter(section=section, kind=documents.PRINT_JOB_KIND, created_by=user,
                               params__period_id=period.pk if period is not None else None)
            .order_by("-created_at", "-pk").first())


class StatementsPrintView(SectionMixin, View):
    """« Imprimer la sélection » (readers too, like the one-by-one PDF): the ticked statements, checked
    against the section of the URL, go to a print job. From htmx the answer is the job's progress block
    (it polls itself and ends with the download link); without JavaScript, back to the page, which shows
    the same block."""

    required_role = Role.READER

    def post(self, request, alias):
        period = (selectors.period_get(section=self.section, pk=request.POST["period"])
                  if request.POST.get("period", "").isdigit() else None)
        if period is not None:
            back = reverse("billing:period-statements", kwargs={"alias": self.section.alias, "period_pk": period.pk})
        else:
            back = reverse("billing:range-statements", kwargs={"alias": self.section.alias})
            back += "?" + request.POST["query"] if request.POST.get("query") else ""
        job, error = None, ""
        try:
            job = documents.statements_print_start(section=self.section, statement_ids=request.POST.getlist("statement"),
                                                   period=period, user=request.user)
        except ValidationError as exc:
            error = " ".join(exc.messages)
        if request.htmx:  # htmx 2 swaps only 2xx answers: a refusal is a 200 carrying the message
            return render(request, "billing/_statements_print.html", {"print_job": job, "print_error": error})
        if error:
            messages.error(request, error)
        return redirect(back)


class StatementPdfView(SectionMixin, View):
    required_role = Role.READER

    def get(self, request, alias, pk):
        statement = _statement_get(self.section, pk)
        response = HttpResponse(documents.statement_pdf(statement), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="{documents.statement_filename(statement)}"'
        response["Cache-Control"] = "private, no-store"
        return response


class StatementsExportView(SectionMixin, View):
    required_role = Role.READER

    def get(self, request, alias, period_pk):
        period = selectors.period_get(section=self.section, pk=period_pk)
        statements = (Statement.objects.filter(period=period).select_related("payer", "payer_group")
                      .order_by("payer__code", "number", "pk"))
        response = HttpResponse(documents.statements_xlsx(statements),
                                content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        response["Content-Disposition"] = f'attachment; filename="bordereaux-{self.section.alias}-{period.start:%Y-%m}.xlsx"'
        return response


class RangeStatementsExportView(SectionMixin, View):
    """XLSX of the date-range statements (``?du=…&au=…[&payeur=…]``), like a period's export."""

    required_role = Role.READER

    def get(self, request, alias):
        form = RangeForm(request.GET, section=self.section)
        if not form.is_valid():
            messages.error(request, " ".join(f"{form.fields[name].label} : {' '.join(errors)}" if name in form.fields
                                             else " ".join(errors) for name, errors in form.errors.items()))
            return redirect("billing:range-statements", alias=self.section.alias)
        data = form.cleaned_data
        statements = Statement.objects.filter(section=self.section, period__isnull=True, date_from__gte=data["du"],
                                              date_to__lte=data["au"])
        if data["payeur"]:
            statements = statements.filter(payer=data["payeur"])
        statements = statements.select_related("payer", "payer_group").order_by("date_from", "payer__code", "number",
                                                                                "pk")
        response = HttpResponse(documents.statements_xlsx(statements),
                                content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        response["Content-Disposition"] = (f'attachment; filename="bordereaux-{self.section.alias}-'
                                           f'{data["du"]:%Y%m%d}-{data["au"]:%Y%m%d}.xlsx"')
        return response


class PayerStatementsView(SectionMixin, TemplateView):
    """The *Bordereaux* tab of the payer file: its statements in this section with « montant réglé »
    and « reste à régler », and its invoices not yet on a statement."""

    template_name = "billing/payer_statements.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        payer = payer_selectors.payer_get(section=self.section, pk=self.kwargs["pk"])
        statements = _with_settlement(Statement.objects.filter(section=self.section, payer=payer)
                                      .select_related("period", "payer_group", "resident")
                                      .order_by("-statement_date", "-number", "-pk"))
        invoices = list(Invoice.objects.filter(section=self.section, payer=payer, statement_lines__isnull=True)
                        .exclude(status=Invoice.Status.DRAFT).order_by("-issue_date", "-number"))
        periods = BillingPeriod.objects.filter(section=self.section).order_by("-start")[:6]
        ctx.update(payer=payer, tabs=PAYER_TABS, tab="statements", statements=statements, invoices=invoices,
                   periods=periods)
        return ctx


urlpatterns = [
    path("periodes/<int:period_pk>/bordereaux/", PeriodStatementsView.as_view(), name="period-statements"),
    path("periodes/<int:period_pk>/bordereaux/export.xlsx", StatementsExportView.as_view(), name="statements-export"),
    path("bordereaux/", RangeStatementsView.as_view(), name="range-statements"),
    path("bordereaux/export.xlsx", RangeStatementsExportView.as_view(), name="range-statements-export"),
    path("bordereaux/<int:pk>/pdf/", StatementPdfView.as_view(), name="statement-pdf"),
    path("bordereaux/imprimer/", StatementsPrintView.as_view(), name="statements-print"),
    path("payeurs/<int:pk>/bordereaux/", PayerStatementsView.as_view(), name="payer-statements"),
]
