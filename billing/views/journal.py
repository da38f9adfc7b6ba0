"""Invoice journal of a period: filtered table with totals, CSV / XLSX export. Readers may do both."""
from __future__ import annotations

from django import forms
from django.conf import settings
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect

from core.services.jobs import job_create, job_enqueue
from core.tasks import run_job
from django.urls import path, reverse
from django.utils.functional import cached_property
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import ListView

from residents.models import PaymentMode
from structures.access import Role
from structures.views_mixins import SectionMixin

from .. import selectors
from ..models import Invoice
from ..services import journal as journal_services

EXPORT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
FILTERS = ("status", "debtor_kind", "payment_mode", "unpaid")


def _with_all(choices):
    return [("", gettext_lazy("Tous"))] + list(choices)


class JournalFilterForm(forms.Form):
    status = forms.ChoiceField(label=gettext_lazy("État"), required=False, choices=_with_all(Invoice.Status.choices))
    debtor_kind = forms.ChoiceField(label=gettext_lazy("Débiteur"), required=False,
                                    choices=_with_all(Invoice.DebtorKind.choices))
    payment_mode = forms.ChoiceField(label=gettext_lazy("Mode de règlement"), required=False,
                                     choices=_with_all(PaymentMode.choices))
    unpaid = forms.BooleanField(label=gettext_lazy("Impayées"), required=False)

    def filters(self) -> dict:
        """The valid, non-empty filters (an invalid one is dropped; its error is shown)."""
        self.is_valid()
        return {name: value for name, value in self.cleaned_data.items() if value}


class JournalMixin(SectionMixin):
    required_role = Role.READER

    @cached_property
    def period(self):
        return selectors.period_get(section=self.section, pk=self.kwargs["period_pk"])

    @cached_property
    def filter_form(self) -> JournalFilterForm:
        return JournalFilterForm(data={name: self.request.GET.get(name, "") for name in FILTERS})


class JournalView(JournalMixin, ListView):
    template_name = "billing/journal.html"
    paginate_by = 100

    def get_queryset(self):
        return journal_services.journal_queryset(period=self.period, **self.filter_form.filters())

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        modes = dict(PaymentMode.choices)
        rows = [{"invoice": invoice, "debtor": selectors.debtor_label(invoice),
                 "payment_mode": modes.get(invoice.effective_payment_mode, invoice.effective_payment_mode or ""),
                 "has_pdf": bool(invoice.pdf or not invoice.is_draft)}
                for invoice in ctx["object_list"]]
        filters = self.filter_form.filters()
        query = urlencode(filters)
        export_urls = {}
        for fmt in EXPORT_TYPES:
            url = reverse("billing:journal-export", kwargs={"alias": self.section.alias,
                                                             "period_pk": self.period.pk, "fmt": fmt})
            export_urls[fmt] = f"{url}?{query}" if query else url
        ctx.update(period=self.period, form=self.filter_form, filtered=bool(filters), rows=rows,
                   totals=journal_services.journal_totals(self.object_list), export_urls=export_urls,
                   totals_caption=journal_services.TOTALS_CAPTION)
        return ctx


class JournalExportView(JournalMixin, View):
    def get(self, request, *args, **kwargs):
        fmt = kwargs["fmt"]
        if fmt not in EXPORT_TYPES:
            raise Http404(_("Format d'export inconnu : %(fmt)s") % {"fmt": fmt})
        if not self.filter_form.is_valid():
            return HttpResponseBadRequest(_("Filtre invalide : %(errors)s") % {
                "errors": "; ".join(f"{self.filter_form.fields[name].label} : {' '.join(errs)}"
                                    for name, errs in self.filter_form.errors.items())},
                content_type="text/plain; charset=utf-8")
        if self.period.invoices.count() > settings.JOURNAL_SYNC_EXPORT_LIMIT:
            # Large periods: written by a worker, downloaded from the job page.
            job = job_create(kind="billing.export_journal", user=request.user, section=self.section,
                             label=_("Export %(fmt)s du journal — %(label)s") % {"fmt": fmt.upper(),
                                                                                "label": self.period.label},
                             params={"period_id": self.period.pk, "fmt": fmt,
                                     "filters": self.filter_form.filters()})
            job_enqueue(job=job, task=run_job)
            return redirect("job-detail", pk=job.pk)
        export = journal_services.journal_csv if fmt == "csv" else journal_services.journal_xlsx
        content = export(self.period, **self.filter_form.filters())
        response = HttpResponse(content, content_type=EXPORT_TYPES[fmt])
        response["Content-Disposition"] = (
            f'attachment; filename="{journal_services.journal_filename(self.period, fmt)}"')
        return response


urlpatterns = [
    path("periodes/<int:period_pk>/journal/", JournalView.as_view(), name="journal"),
    path("periodes/<int:period_pk>/journal/export.<str:fmt>", JournalExportView.as_view(), name="journal-export"),
]
