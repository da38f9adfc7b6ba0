"""Absences import in the period screen (seed: saisie des factures → saisie des absences).

Upload (files kept under MEDIA_ROOT/imports/absences/<run id>/, read and checked by the
"imports.absences" job; the page shows its progress, then the lines with their errors — bounded for
big files, the full report being the job's XLSX file),
then **Valider** (disabled while any error remains; the server validates the stored file again and
refuses too), which starts the same job with ``action`` "import": it writes the absences in one
transaction and starts the billing generation job for the period's drafts. The correspondence table
can be viewed and replaced on its own page.
"""
from __future__ import annotations

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views.generic import TemplateView

from billing import selectors as billing_selectors
from billing.models import BillingPeriod
from structures.views_mixins import SectionMixin

from ..models import AbsenceCodeMapping, ImportRun
from ..services import absences_import as service
from ..services.csvfiles import MAX_BYTES

def _uploaded(request, field: str) -> tuple[bytes, str] | None:
    upload = request.FILES.get(field)
    if not upload:
        return None
    if upload.size > MAX_BYTES:
        raise ValueError(_("Le fichier « %(name)s » dépasse %(max)s Mo.") % {"name": upload.name,
                                                                          "max": MAX_BYTES // (1024 * 1024)})
    return upload.read(), upload.name


class AbsencesImportView(SectionMixin, TemplateView):
    """``imports:absences`` (upload) and ``imports:absences-run`` (report, Valider)."""

    template_name = "imports/absences_import.html"

    def get_period(self) -> BillingPeriod:
        return billing_selectors.period_get(section=self.section, pk=self.kwargs["period_pk"])

    def get_run(self, period: BillingPeriod) -> ImportRun | None:
        if "run_pk" not in self.kwargs:
            return None
        run = ImportRun.objects.filter(pk=self.kwargs["run_pk"], kind=ImportRun.Kind.ABSENCES, section=self.section,
                                       month=period.start.replace(day=1)).select_related("created_by", "job").first()
        if run is None:
            raise Http404(_("Import introuvable pour cette période."))
        return run

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        period = kwargs.get("period") or self.get_period()
        run = kwargs["run"] if "run" in kwargs else self.get_run(period)
        establishment = self.section.establishment
        mapping = list(AbsenceCodeMapping.objects.filter(establishment=establishment).select_related("reason"))
        month = period.start.replace(day=1)
        report = list(run.report) if run else []
        only_errors = self.request.GET.get("erreurs") == "1"
        ctx.update(
            period=period, month=month, month_label=service.month_label(month), run=run, mapping=mapping,
            use_saved_default=bool(mapping) and kwargs.get("use_saved", True),
            job=run.job if run else None, summary=(run.summary or {}) if run else {},
            report_truncated=bool(run) and (run.summary or {}).get("report_total", 0) > len(report),
            runs=ImportRun.objects.filter(kind=ImportRun.Kind.ABSENCES, section=self.section, month=month)
            .select_related("created_by").order_by("-created_at")[:10],
            report=[r for r in report if r.get("errors")] if only_errors else report,
            only_errors=only_errors, report_size=len(report),
            absences_name=next((f["name"] for f in (run.files if run else []) if f.get("role") == "absences"), ""),
            error_count=(run.summary or {}).get("errors", 0) if run and "report_total" in (run.summary or {})
            else sum(len(r.get("errors", [])) for r in report),
            can_confirm=bool(run and run.status == ImportRun.Status.VALIDATED and self.can_write
                             and not (run.job and run.job.params.get("action") == "import")),
            upload_errors=kwargs.get("upload_errors", []),
        )
        return ctx

    def post(self, request, *args, **kwargs):
        period = self.get_period()
        if "run_pk" in self.kwargs:
            return self.confirm(request, period, self.get_run(period))
        return self.upload(request, period)

    def upload(self, request, period):
        use_saved = request.POST.get("use_saved_mapping") == "on"
        errors = []
        try:
            absences = _uploaded(request, "absences")
            mapping = None if use_saved else _uploaded(request, "mapping")
        except ValueError as exc:
            absences, mapping = None, None
            errors.append(str(exc))
        else:
            if absences is None:
                errors.append(_("Choisissez le fichier des absences du mois (CSV ou TXT)."))
            if not use_saved and mapping is None:
                errors.append(_("Joignez le tableau de correspondance (CODEMR;CODEEXT), ou cochez « utiliser le "
                                "tableau de correspondance déjà enregistré »."))
        if errors:
            return self.render_to_response(self.get_context_data(period=period, run=None, upload_errors=errors,
                                                                 use_saved=use_saved), status=400)
        month = period.start
        # The file is read and checked by a worker (a big file would hold the request for long).
        run = service.absences_run_start(
            section=self.section, year=month.year, month=month.month, data=absences[0], name=absences[1],
            mapping_data=mapping[0] if mapping else None, mapping_name=mapping[1] if mapping else "correspondance.csv",
            user=request.user)
        messages.info(request, _("Fichier reçu : contrôle en cours."))
        return redirect("imports:absences-run", alias=self.section.alias, period_pk=period.pk, run_pk=run.pk)

    def confirm(self, request, period, run):
        """Valider: a worker validates the stored files again and applies them (job), then regenerates."""
        try:
            service.absences_confirm_start(run=run, user=request.user)
        except service.AbsencesImportError as exc:
            messages.error(request, str(exc))
        else:
            messages.info(request, _("Import lancé : les absences sont contrôlées à nouveau puis enregistrées."))
        return redirect("imports:absences-run", alias=self.section.alias, period_pk=period.pk, run_pk=run.pk)


class AbsenceMappingView(SectionMixin, TemplateView):
    """``imports:absence-mapping``: the establishment's correspondence table; a clerk may replace it."""

    template_name = "imports/absences_mapping.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        establishment = self.section.establishment
        mapping = list(AbsenceCodeMapping.objects.filter(establishment=establishment).select_related("reason"))
        mapped = {m.reason_id for m in mapping}
        period = None
        if self.request.GET.get("periode", "").isdigit():
            period = BillingPeriod.objects.filter(section=self.section, pk=int(self.request.GET["periode"])).first()
        ctx.update(establishment=establishment, mapping=mapping, period=period,
                   unmapped=establishment.absence_reasons.exclude(pk__in=mapped),
                   updated_at=max((m.updated_at for m in mapping), default=None),
                   result=kwargs.get("result"), upload_errors=kwargs.get("upload_errors", []))
        return ctx

    def post(self, request, *args, **kwargs):
        try:
            upload = _uploaded(request, "mapping")
        except ValueError as exc:
            return self.render_to_response(self.get_context_data(upload_errors=[str(exc)]), status=400)
        if upload is None:
            return self.render_to_response(self.get_context_data(
                upload_errors=[_("Choisissez le fichier du tableau de correspondance (CODEMR;CODEEXT).")]), status=400)
        result = service.absence_mapping_upload(establishment=self.section.establishment, data=upload[0],
                                                name=upload[1])
        if not result.ok:
            return self.render_to_response(self.get_context_data(result=result), status=400)
        messages.success(request, _("Tableau de correspondance enregistré (%(n)s code(s)).") % {"n": len(result.codes)})
        return redirect(request.get_full_path())


urlpatterns = [
    path("absences/correspondance/", AbsenceMappingView.as_view(), name="absence-mapping"),
    path("absences/<int:period_pk>/", AbsencesImportView.as_view(), name="absences"),
    path("absences/<int:period_pk>/import/<int:run_pk>/", AbsencesImportView.as_view(), name="absences-run"),
]
