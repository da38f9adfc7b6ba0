"""Periods: open, check, generate (Celery job), review, issue; invoice detail and credit notes."""
from datetime import date

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.generic import TemplateView

from core.forms import attach_errors
from core.models import Job
from core.services import jobs as job_services
from core.tasks import run_job
from structures.views_mixins import SectionMixin

from .. import selectors
from ..forms import CreditNoteForm, IssueForm, PeriodCreateForm
from ..models import Invoice
from ..services import checks as check_services
from ..services import issuing, pdf, periods, regularisation, review
from ..services import journal as journal_services
from ..services.panels import panels
from .payment_forms import invoice_payment_context


class PeriodListView(SectionMixin, TemplateView):
    template_name = "billing/period_list.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx["periods"] = selectors.periods_of(section=self.section)
        today = timezone.localdate()
        ctx.setdefault("form", PeriodCreateForm(initial={"month": f"{today.year}-{today.month:02d}"}))
        return ctx

    def post(self, request, *args, **kwargs):
        form = PeriodCreateForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                if data.get("month"):
                    year, month = periods.parse_month(data["month"])
                    start, end = date(year, month, 1), None
                else:
                    start, end = data["start"], data.get("end") or data["start"]
                period = periods.period_create(section=self.section, start=start, end=end,
                                               accounting_date=data.get("accounting_date"))
            except ValidationError as exc:
                attach_errors(exc, form)
            else:
                messages.success(request, _("Période « %(label)s » ouverte.") % {"label": period.label})
                return redirect("billing:period-detail", alias=self.section.alias, period_pk=period.pk)
        return self.render_to_response(self.get_context_data(form=form))


class PeriodDetailView(SectionMixin, TemplateView):
    template_name = "billing/period_detail.html"

    def get_period(self):
        return selectors.period_get(section=self.section, pk=self.kwargs["period_pk"])

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        period = self.get_period()
        checks = check_services.period_checks(period=period)
        invoices = (selectors.invoices_of(section=self.section).filter(period=period)
                    .order_by("debtor_kind", "payer__code", "resident__sort_key", "pk"))
        ctx.update(
            period=period, checks=checks, blocking=check_services.period_blocking(checks),
            invoices=invoices, summary=review.period_summary(period), movements=review.period_movements(period),
            previous=review.previous_period(period), totals_caption=journal_services.TOTALS_CAPTION,
            job=Job.objects.filter(section=self.section,
                                   kind__in=["billing.generate", "billing.render_pdfs", "billing.regularise"],
                                   params__period_id=period.pk).order_by("-created_at").first(),
            issue_form=kwargs.get("issue_form") or IssueForm(initial={"issue_date": timezone.localdate()}),
            drafts=invoices.filter(status=Invoice.Status.DRAFT).count(),
            # Months in which Factur-X of this period (payers on Chorus Pro) were issued: one zip each.
            facturx_months=sorted({d.strftime("%Y-%m") for d in invoices.exclude(einvoice={}).exclude(
                issue_date=None).values_list("issue_date", flat=True)}),
        )
        for invoice in invoices:
            invoice.debtor_display = selectors.debtor_label(invoice)
        # The review re-runs the rules for the whole section: it is loaded after the page (htmx).
        ctx["has_issued"] = invoices.exclude(status=Invoice.Status.DRAFT).exists()
        return ctx

    def post(self, request, *args, **kwargs):
        period = self.get_period()
        action = request.POST.get("action")
        if action == "generate":
            checks = check_services.period_checks(period=period)
            if check_services.period_blocking(checks):
                messages.error(request, _("Corrigez les anomalies bloquantes avant de générer."))
                return redirect(request.path)
            job = job_services.job_create(kind="billing.generate", user=request.user, section=self.section,
                                          label=_("Génération %(alias)s %(label)s") % {
                                              "alias": self.section.alias, "label": period.label},
                                          params={"period_id": period.pk})
            job_services.job_enqueue(job=job, task=run_job)
            messages.info(request, _("Génération lancée."))
        elif action == "regularise":
            form = IssueForm(request.POST)
            if not form.is_valid():
                return self.render_to_response(self.get_context_data(issue_form=form))
            job = job_services.job_create(kind="billing.regularise", user=request.user, section=self.section,
                                          label=_("Régularisations %(alias)s %(label)s") % {
                                              "alias": self.section.alias, "label": period.label},
                                          params={"period_id": period.pk,
                                                  "issue_date": form.cleaned_data["issue_date"].isoformat()})
            job_services.job_enqueue(job=job, task=run_job)
            messages.info(request, _("Émission des régularisations lancée."))
        elif action == "issue":
            form = IssueForm(request.POST)
            if not form.is_valid():
                return self.render_to_response(self.get_context_data(issue_form=form))
            try:
                issued = issuing.period_issue(period=period, user=request.user,
                                              issue_date=form.cleaned_data["issue_date"])
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
                return redirect(request.path)
            messages.success(request, _("%(n)s facture(s) émise(s).") % {"n": len(issued)})
            if issued:
                pdf.period_render_pdfs_start(period, request.user)
        return redirect(request.path)


class InvoiceDetailView(SectionMixin, TemplateView):
    template_name = "billing/invoice_detail.html"

    def get_invoice(self):
        return selectors.invoice_get(section=self.section, pk=self.kwargs["pk"])

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        invoice = self.get_invoice()
        form = kwargs.get("credit_form") or CreditNoteForm()
        lines = list(invoice.lines.select_related("product", "resident"))
        creditable = invoice.status == Invoice.Status.ISSUED and invoice.kind != Invoice.Kind.CREDIT_NOTE
        if creditable:
            left = issuing.credit_left_by_line(invoice)
            typed = form.typed() if form.is_bound else {}
            for line in lines:
                line.credit_left = abs(left.get(line.pk, line.amount))
                line.credit_typed = typed.get(line.pk, "")
        ctx.update(invoice=invoice, debtor=selectors.debtor_label(invoice), lines=lines, creditable=creditable,
                   credit_form=form, credit_notes=invoice.credit_notes.all())
        ctx.update(invoice_payment_context(invoice, can_write=self.can_write, payment_form=kwargs.get("payment_form")))
        ctx["invoice_panels"] = panels("invoice", invoice=invoice, section=self.section, user=self.request.user)
        return ctx

    def post(self, request, *args, **kwargs):
        invoice = self.get_invoice()
        form = CreditNoteForm(request.POST, lines=invoice.lines.all())
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(credit_form=form))
        full = form.cleaned_data["full"]
        if full and not form.cleaned_data["confirm"]:
            # The full credit is confirmed on its own page, showing what it cancels.
            return TemplateResponse(request, "billing/credit_note_confirm.html", {
                **super().get_context_data(**kwargs), "invoice": invoice, "debtor": selectors.debtor_label(invoice),
                "reason": form.cleaned_data["reason"], "credit_total": -issuing.full_credit_total(invoice)})
        try:
            credit = issuing.credit_note_create(invoice=invoice, user=request.user,
                                                lines=None if full else form.cleaned_data["amounts"],
                                                reason=form.cleaned_data["reason"])
        except ValidationError as exc:
            form.add_error(None, exc.messages)
            return self.render_to_response(self.get_context_data(credit_form=form))
        messages.success(request, _("Avoir %(number)s émis.") % {"number": credit.number})
        pdf.invoices_render_pdfs_start(invoice_ids=[credit.pk], section=self.section, user=request.user)
        return redirect("billing:invoice-detail", alias=self.section.alias, pk=credit.pk)


class PeriodRegularisationsView(SectionMixin, TemplateView):
    """The « Régularisations » panel of a period, loaded by the period page once it is shown: it
    compares the issued invoices with the rules on today's data (the engine over the whole section)."""
    template_name = "billing/_period_regularisations.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        period = selectors.period_get(section=self.section, pk=self.kwargs["period_pk"])
        ctx.update(period=period, regularisations=[])
        if selectors.invoices_of(section=self.section).filter(period=period).exclude(
                status=Invoice.Status.DRAFT).exists():
            try:
                ctx["regularisations"] = regularisation.period_regularisations(period=period)
            except ValidationError as exc:
                ctx["regularisation_error"] = " ".join(exc.messages)
        return ctx


urlpatterns = [
    path("periodes/", PeriodListView.as_view(), name="periods"),
    path("periodes/<int:period_pk>/", PeriodDetailView.as_view(), name="period-detail"),
    path("periodes/<int:period_pk>/regularisations/", PeriodRegularisationsView.as_view(),
         name="period-regularisations"),
    path("factures/<int:pk>/", InvoiceDetailView.as_view(), name="invoice-detail"),
]
