"""Payer statements (*bordereaux*) in the browser: per period (simulate, create, validate, PDF, XLSX
export, e-mail) and the *Bordereaux* tab of a payer file. Billing clerks and managers write;
readers see and export (403 on any change); another section's period or statement, another
association's payer: 404."""
from __future__ import annotations

from datetime import date

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import TemplateView

from payers import selectors as payer_selectors
from payers.views import TABS as PAYER_TABS
from structures.access import Role
from structures.views_mixins import SectionMixin

from .. import selectors
from ..models import Invoice, Statement
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
                   no_email=[s for s in statements if not s.payer.email])
        return ctx

    def post(self, request, *args, **kwargs):
        period = self.get_period()
        action = request.POST.get("action")
        ids = [int(pk) for pk in request.POST.getlist("statement") if pk.isdigit()]
        chosen = list(Statement.objects.filter(period=period, pk__in=ids).select_related("payer", "establishment",
                                                                                           "section", "period"))
        try:
            if action == "create":
                form = StatementDateForm(request.POST)
                if not form.is_valid():
                    return self.render_to_response(self.get_context_data(form=form))
                created = services.statements_create(period=period, statement_date=form.cleaned_data["statement_date"],
                                                     user=request.user)
                messages.success(request, _("%(n)s bordereau(x) créé(s).") % {"n": len(created)})
            elif action == "validate":
                if not chosen:
                    raise ValidationError(_("Cochez au moins un bordereau."))
                done = services.statements_validate(statements=chosen, user=request.user)
                messages.success(request, _("%(n)s bordereau(x) validé(s).") % {"n": len(done)})
            elif action == "send":
                if not chosen:
                    raise ValidationError(_("Cochez au moins un bordereau."))
                campaign, without = documents.statements_send(statements=chosen, user=request.user)
                if campaign:
                    messages.success(request, _("Envoi de %(n)s bordereau(x) lancé.") % {
                        "n": len(chosen) - len(without)})
                if without:
                    messages.warning(request, _("Sans adresse e-mail, non envoyé(s) : %(payers)s — à imprimer.") % {
                        "payers": ", ".join(sorted({s.payer.code for s in without}))})
            else:
                raise ValidationError(_("Action inconnue."))
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        return redirect("billing:period-statements", alias=self.section.alias, period_pk=period.pk)


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
        ctx.update(payer=payer, tabs=PAYER_TABS, tab="statements", statements=statements, invoices=invoices)
        return ctx


urlpatterns = [
    path("periodes/<int:period_pk>/bordereaux/", PeriodStatementsView.as_view(), name="period-statements"),
    path("periodes/<int:period_pk>/bordereaux/export.xlsx", StatementsExportView.as_view(), name="statements-export"),
    path("bordereaux/<int:pk>/pdf/", StatementPdfView.as_view(), name="statement-pdf"),
    path("payeurs/<int:pk>/bordereaux/", PayerStatementsView.as_view(), name="payer-statements"),
]
