"""Browser side of the residents import (managers of the section): upload, validation job with
progress, report table, « Confirmer l'import », list of runs, template workbooks."""
from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView, View

from structures.access import Role
from structures.views_mixins import SectionMixin

from ..models import ImportRun
from ..services import residents_import as service
from ..services.residents_templates import TEMPLATES, template_workbook
from ..services.xlsx import MAX_FILE_BYTES


class ResidentsUploadForm(forms.Form):
    residents = forms.FileField(label=gettext_lazy("Fichier des résidents (.xlsx)"))
    relatives = forms.FileField(label=gettext_lazy("Fichier des proches (.xlsx, facultatif)"), required=False)

    def _clean_file(self, name):
        upload = self.cleaned_data.get(name)
        if upload is not None:
            if upload.size == 0:
                raise ValidationError(_("Le fichier est vide."))
            if upload.size > MAX_FILE_BYTES:
                raise ValidationError(_("Le fichier fait %(size)s Mo : 20 Mo au plus sont acceptés.") % {
                    "size": f"{upload.size / 1024 / 1024:.1f}".replace(".", ",")})
        return upload

    def clean_residents(self):
        return self._clean_file("residents")

    def clean_relatives(self):
        return self._clean_file("relatives")


class ManagerMixin(SectionMixin):
    """Imports are for the section's managers (responsables), on GET too."""

    required_role = Role.MANAGER
    write_view = True

    def get_run(self) -> ImportRun:
        return get_object_or_404(ImportRun.objects.select_related("job", "created_by"), pk=self.kwargs["pk"],
                                 section=self.section, kind=ImportRun.Kind.RESIDENTS)


def _run_state(run: ImportRun) -> str:
    """pending (a job is working on it), validated, rejected, imported or failed."""
    if run.job_id and not run.job.is_finished:
        return "pending"
    if run.job_id and run.job.status == "failed" and run.status in (ImportRun.Status.PENDING, ImportRun.Status.VALIDATED):
        return ImportRun.Status.FAILED
    return run.status


class ResidentsImportView(ManagerMixin, TemplateView):
    template_name = "imports/residents_import.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx.setdefault("form", ResidentsUploadForm())
        runs = list(ImportRun.objects.filter(section=self.section, kind=ImportRun.Kind.RESIDENTS)
                    .select_related("created_by", "job")[:30])
        for run in runs:
            run.state = _run_state(run)
        ctx.update(runs=runs, templates=TEMPLATES)
        return ctx

    def post(self, request, *args, **kwargs):
        form = ResidentsUploadForm(request.POST, request.FILES)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form))
        run = service.residents_run_start(section=self.section, user=request.user,
                                          residents_upload=form.cleaned_data["residents"],
                                          relatives_upload=form.cleaned_data.get("relatives"))
        messages.info(request, _("Fichiers reçus : contrôle en cours."))
        return redirect("imports:residents-run", alias=self.section.alias, pk=run.pk)


class ResidentsRunView(ManagerMixin, TemplateView):
    template_name = "imports/residents_run.html"

    def get_template_names(self):
        if self.request.headers.get("HX-Request") or self.kwargs.get("fragment"):
            return ["imports/residents_run_status.html"]
        return [self.template_name]

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        run = self.get_run()
        state = _run_state(run)
        errors = [i for i in run.report if i.get("level") == "error"]
        warnings = [i for i in run.report if i.get("level") != "error"]
        ctx.update(run=run, state=state, job=run.job, errors=errors, warnings=warnings, issues=run.report,
                   can_confirm=state == ImportRun.Status.VALIDATED and not errors,
                   summary=run.summary or {})
        return ctx


class ResidentsConfirmView(ManagerMixin, View):
    def post(self, request, *args, **kwargs):
        run = self.get_run()
        try:
            service.residents_run_confirm(run=run, user=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.info(request, _("Import lancé."))
        return redirect("imports:residents-run", alias=self.section.alias, pk=run.pk)


class ResidentsTemplateView(SectionMixin, View):
    """Template workbooks: anyone who may read the section may download them."""

    def get(self, request, *args, **kwargs):
        which = kwargs["which"]
        if which not in TEMPLATES:
            raise Http404(_("Modèle inconnu."))
        filename = TEMPLATES[which][0]
        response = HttpResponse(template_workbook(which, section=self.section),
                                content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


urlpatterns = [
    path("residents/", ResidentsImportView.as_view(), name="residents"),
    path("residents/<int:pk>/", ResidentsRunView.as_view(), name="residents-run"),
    path("residents/<int:pk>/etat/", ResidentsRunView.as_view(), {"fragment": True}, name="residents-run-status"),
    path("residents/<int:pk>/confirmer/", ResidentsConfirmView.as_view(), name="residents-confirm"),
    path("residents/modele/<str:which>.xlsx", ResidentsTemplateView.as_view(), name="residents-template"),
]
