"""*Comptabilité* of a section's establishment: the account map (managers edit it) and the
accounting exports (FEC, CSV, XLSX). Readers see and download; building an export and marking it
« transmis à la comptabilité » are for managers."""
from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.forms import inlineformset_factory
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import TemplateView

from core.fec import FecError
from structures.access import Role
from structures.views_mixins import SectionMixin

from ..models.accounting import AccountingExport, AccountMap, RevenueAccount
from ..services import accounting as services

CONTENT_TYPES = {"fec": "text/plain; charset=iso-8859-15", "csv": "text/csv; charset=utf-8",
                 "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


class AccountMapForm(forms.ModelForm):
    class Meta:
        model = AccountMap
        exclude = ["establishment"]


RevenueFormSet = inlineformset_factory(AccountMap, RevenueAccount, fields=["product_kind", "financing", "account",
                                                                           "label"], extra=2, can_delete=True)


class ExportForm(forms.Form):
    date_from = forms.DateField(label=gettext_lazy("Du"), widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label=gettext_lazy("Au"), widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise ValidationError(_("La date de début est après la date de fin."))
        return data


class AccountingView(SectionMixin, TemplateView):
    template_name = "billing/accounting.html"
    required_role = Role.READER

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        establishment = self.section.establishment
        account_map = services.account_map_for(establishment)
        ctx.update(establishment=establishment, account_map=account_map,
                   form=kwargs.get("form") or AccountMapForm(instance=account_map),
                   formset=kwargs.get("formset") or RevenueFormSet(instance=account_map),
                   export_form=kwargs.get("export_form") or ExportForm(),
                   exports=AccountingExport.objects.filter(establishment=establishment)
                   .prefetch_related("entries")[:24],
                   layouts=[(key, layout.label) for key, layout in services.LAYOUTS.items() if key != "generic"])
        return ctx


class AccountMapSaveView(AccountingView):
    required_role = Role.MANAGER
    write_view = True

    def post(self, request, *args, **kwargs):
        account_map = services.account_map_for(self.section.establishment)
        form = AccountMapForm(request.POST, instance=account_map)
        formset = RevenueFormSet(request.POST, instance=account_map)
        if not (form.is_valid() and formset.is_valid()):
            return self.render_to_response(self.get_context_data(form=form, formset=formset))
        form.save()
        formset.save()
        messages.success(request, _("Comptes enregistrés."))
        return redirect("billing:accounting", alias=self.section.alias)


class ExportBuildView(AccountingView):
    required_role = Role.MANAGER
    write_view = True

    def post(self, request, *args, **kwargs):
        form = ExportForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(export_form=form))
        try:
            export = services.export_build(establishment=self.section.establishment, user=request.user,
                                           date_from=form.cleaned_data["date_from"],
                                           date_to=form.cleaned_data["date_to"])
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("Export préparé : %(count)s écriture(s).") % {"count": export.entries.count()})
        return redirect("billing:accounting", alias=self.section.alias)


class ExportMixin(SectionMixin):
    def export(self, pk) -> AccountingExport:
        return get_object_or_404(AccountingExport, pk=pk, establishment=self.section.establishment)


class ExportDownloadView(ExportMixin, View):
    required_role = Role.READER

    def get(self, request, alias, pk, fmt):
        if fmt not in CONTENT_TYPES:
            raise Http404("Format d'export inconnu.")
        export = self.export(pk)
        layout = request.GET.get("layout", "generic")
        if layout not in services.LAYOUTS or (fmt == "fec" and layout != "generic"):
            raise Http404("Présentation d'export inconnue.")
        try:
            content = services.export_content(export, fmt, layout)
            name = services.export_filename(export, fmt, layout)
        except (FecError, ValidationError) as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect("billing:accounting", alias=alias)
        response = HttpResponse(content, content_type=CONTENT_TYPES[fmt])
        response["Content-Disposition"] = f'attachment; filename="{name}"'
        return response


class ExportTransmitView(ExportMixin, View):
    required_role = Role.MANAGER

    def post(self, request, alias, pk):
        try:
            services.export_transmit(export=self.export(pk), user=request.user)
        except (FecError, ValidationError) as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("Export marqué « transmis à la comptabilité » : il ne changera plus."))
        return redirect(reverse("billing:accounting", kwargs={"alias": alias}))


class FacturXZipView(SectionMixin, View):
    """The section's Factur-X (invoices and credit notes to Chorus Pro payers) of a month, as a zip
    for batch upload on the Chorus Pro portal (``?month=AAAA-MM``)."""
    required_role = Role.READER

    def get(self, request, alias):
        from ..services import facturx

        month = request.GET.get("month", "")
        try:
            content, _count = facturx.facturx_zip(self.section, month, render_missing=False)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
            return redirect(reverse("billing:accounting", kwargs={"alias": alias}) + "#facturx")
        response = HttpResponse(content, content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{facturx.facturx_zip_name(self.section, month)}"'
        return response


urlpatterns = [
    path("comptabilite/chorus-pro/", FacturXZipView.as_view(), name="facturx-zip"),
    path("comptabilite/", AccountingView.as_view(), name="accounting"),
    path("comptabilite/comptes/", AccountMapSaveView.as_view(), name="accounting-map"),
    path("comptabilite/exports/", ExportBuildView.as_view(), name="accounting-export-build"),
    path("comptabilite/exports/<int:pk>/fichier.<str:fmt>", ExportDownloadView.as_view(),
         name="accounting-export-download"),
    path("comptabilite/exports/<int:pk>/transmettre/", ExportTransmitView.as_view(), name="accounting-export-transmit"),
]
