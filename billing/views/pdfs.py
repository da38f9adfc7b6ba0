"""Invoice PDFs in the browser: one invoice (stored file, or rendered on the fly), a period's
print file (merged stored PDFs), and the button that starts the rendering job.

Objects come only from ``billing.selectors`` with the section of the URL: another section's
invoice is a 404, whoever asks."""
from __future__ import annotations

from django.http import FileResponse, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.views import View

from structures.models import SectionAccess
from structures.views_mixins import SectionMixin

from .. import selectors
from ..models import Invoice
from ..services import pdf as pdf_services

# Above this many PDFs still to render, the print file is not built inside the web request.
SYNC_RENDER_LIMIT = 25
# The « PDF en préparation » page asks the browser to try again after this many seconds.
PREPARING_RETRY_SECONDS = 3


def _rendering_job(section, *, period_id=None, invoice_id=None):
    """The PDF job of the section that is rendering this period / invoice right now, if any."""
    from core.models import Job

    active = Job.objects.filter(section=section, kind=pdf_services.JOB_KIND,
                                status__in=[Job.Status.PENDING, Job.Status.RUNNING]).order_by("-created_at")
    for job in active.only("pk", "params", "progress_current", "progress_total", "status", "label", "message"):
        params = job.params or {}
        if period_id is not None and params.get("period_id") == period_id:
            return job
        if invoice_id is not None and invoice_id in [int(pk) for pk in params.get("invoice_ids") or []]:
            return job
    return None


def _preparing(request, section, job, what: str):
    """A French page that retries by itself (Refresh header and meta refresh) while the job works."""
    response = render(request, "billing/pdf/preparing.html",
                      {"section": section, "job": job, "what": what, "retry": PREPARING_RETRY_SECONDS}, status=202)
    response["Refresh"] = str(PREPARING_RETRY_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


def _pdf_response(data: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(data, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


class InvoicePdfView(SectionMixin, View):
    """GET: the stored PDF of an issued invoice (rendered and stored first if missing); a draft
    gets a « BROUILLON » preview that is never stored."""

    required_role = SectionAccess.Role.READER

    def get(self, request, alias, pk):
        invoice = selectors.invoice_get(section=self.section, pk=pk)
        if invoice.status == Invoice.Status.DRAFT:
            invoice = pdf_services.invoices_for_render().get(pk=invoice.pk)
            return _pdf_response(pdf_services.invoice_render_pdf(invoice), f"brouillon-{invoice.pk}.pdf")
        if not (invoice.pdf and invoice.pdf.storage.exists(invoice.pdf.name)):
            job = _rendering_job(self.section, period_id=invoice.period_id, invoice_id=invoice.pk)
            if job is not None:  # the worker is rendering it: do not render it twice, come back
                return _preparing(request, self.section, job, invoice.number)
            invoice = pdf_services.invoices_for_render().get(pk=invoice.pk)
            pdf_services.invoice_store_pdf(invoice)
        response = FileResponse(invoice.pdf.storage.open(invoice.pdf.name, "rb"), content_type="application/pdf",
                                filename=f"{invoice.number}.pdf")
        response["Cache-Control"] = "private, no-store"
        return response


class PeriodPdfView(SectionMixin, View):
    """GET: one PDF with every issued invoice (and credit note) of the period, for printing."""

    required_role = SectionAccess.Role.READER

    def get(self, request, alias, period_pk):
        period = selectors.period_get(section=self.section, pk=period_pk)
        missing = pdf_services.period_missing_pdfs(period)
        job = _rendering_job(self.section, period_id=period.pk) if missing else None
        if job is not None:
            return _preparing(request, self.section, job, period.label)
        if missing > SYNC_RENDER_LIMIT:
            return render(request, "billing/pdf/not_ready.html",
                          {"section": self.section, "period": period, "missing": missing,
                           "can_write": self.can_write}, status=409)
        if not pdf_services.period_invoices(period).exists():
            return render(request, "billing/pdf/not_ready.html",
                          {"section": self.section, "period": period, "missing": 0, "empty": True,
                           "can_write": self.can_write}, status=404)
        data = pdf_services.period_merged_pdf(period)
        return _pdf_response(data, f"factures-{self.section.alias}-{period.start:%Y-%m}.pdf")


class PeriodRenderPdfsView(SectionMixin, View):
    """POST (facturation role): start the PDF job of the period and follow it on the job page."""

    required_role = SectionAccess.Role.CLERK
    http_method_names = ["post"]

    def post(self, request, alias, period_pk):
        period = selectors.period_get(section=self.section, pk=period_pk)
        job = pdf_services.period_render_pdfs_start(period, request.user, force=request.POST.get("force") == "1")
        return redirect("job-detail", pk=job.pk)


urlpatterns = [
    path("factures/<int:pk>/pdf/", InvoicePdfView.as_view(), name="invoice-pdf"),
    path("periodes/<int:period_pk>/factures.pdf", PeriodPdfView.as_view(), name="period-pdf"),
    path("periodes/<int:period_pk>/pdf/generer/", PeriodRenderPdfsView.as_view(), name="period-render-pdfs"),
]
