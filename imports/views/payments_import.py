"""Browser side of the payments import (managers of the section): upload a CSV, simulate or import,
French report line by line (row, column, value, message)."""
from django import forms
from django.utils.translation import gettext_lazy
from django.urls import path
from django.views.generic import TemplateView

from structures.access import Role
from structures.views_mixins import SectionMixin

from ..models import ImportRun
from ..services import payments_import as service
from ..services.csvfiles import MAX_BYTES


class PaymentsUploadForm(forms.Form):
    file = forms.FileField(label=gettext_lazy("Fichier des règlements (.csv)"))
    dry_run = forms.BooleanField(label=gettext_lazy("Simulation (ne rien écrire)"), required=False)
    allow_duplicates = forms.BooleanField(label=gettext_lazy("Accepter les doublons"), required=False)

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_BYTES:
            raise forms.ValidationError(gettext_lazy("Le fichier dépasse 20 Mo."))
        return upload


class PaymentsImportView(SectionMixin, TemplateView):
    template_name = "imports/payments_import.html"
    required_role = Role.MANAGER
    write_view = True

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx.setdefault("form", PaymentsUploadForm())
        ctx["runs"] = ImportRun.objects.filter(section=self.section, kind=ImportRun.Kind.PAYMENTS)[:10]
        ctx["columns"] = service.COLUMNS
        return ctx

    def post(self, request, *args, **kwargs):
        form = PaymentsUploadForm(request.POST, request.FILES)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form), status=400)
        upload = form.cleaned_data["file"]
        try:
            run = service.payments_import_apply(section=self.section, data=upload.read(), name=upload.name,
                                                user=request.user, dry_run=form.cleaned_data["dry_run"],
                                                allow_duplicates=form.cleaned_data["allow_duplicates"])
        except service.PaymentsImportError as exc:
            return self.render_to_response(self.get_context_data(form=form, run=exc.run, failed=str(exc)), status=400)
        return self.render_to_response(self.get_context_data(form=PaymentsUploadForm(), run=run))


urlpatterns = [path("reglements/", PaymentsImportView.as_view(), name="payments")]
