"""Tax certificates in the browser: the year's list of a section (readers), one resident's PDF,
the batch job (print file, and e-mails when asked: *facturation* role) and the section's texts
(managers). Residents come only through the section of the URL (another section's: 404)."""
from __future__ import annotations

from django import forms
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import TemplateView

from core.forms import attach_errors
from residents import selectors as resident_selectors
from structures.access import Role
from structures.views_mixins import SectionMixin

from ..services import tax_certificates as services


def _year(raw, default: int) -> int:
    try:
        return services._check_year(raw) if raw not in (None, "") else default
    except ValidationError:
        return default


class TaxCertificateListView(SectionMixin, TemplateView):
    template_name = "billing/tax_certificates.html"
    required_role = Role.CLERK

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        year = _year(self.request.GET.get("annee"), timezone.localdate().year - 1)
        certificates = services.tax_certificates_compute(section=self.section, year=year)
        ctx.update(year=year, certificates=certificates, years=range(timezone.localdate().year, 2019, -1),
                   totals={"accommodation": sum((c.accommodation for c in certificates), services.ZERO),
                           "dependency": sum((c.dependency for c in certificates), services.ZERO),
                           "aids": sum((c.aids_total for c in certificates), services.ZERO),
                           "net": sum((c.net for c in certificates), services.ZERO)})
        return ctx

    def post(self, request, *args, **kwargs):
        year = _year(request.POST.get("annee"), timezone.localdate().year - 1)
        job = services.tax_certificates_start(section=self.section, year=year,
                                              send=request.POST.get("action") == "send", user=request.user)
        return redirect("job-detail", pk=job.pk)


class TaxCertificatePdfView(SectionMixin, View):
    required_role = Role.READER

    def get(self, request, alias, resident_pk, year):
        resident = resident_selectors.resident_get(request.user, section=self.section, pk=resident_pk)
        try:
            cert = services.tax_certificate_for(section=self.section, resident=resident, year=year)
        except ValidationError as exc:
            return HttpResponse(" ".join(exc.messages), status=404, content_type="text/plain; charset=utf-8")
        response = HttpResponse(services.certificate_pdf(cert), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="{services.certificate_filename(cert)}"'
        response["Cache-Control"] = "private, no-store"
        return response


class TaxCertificateSettingsForm(forms.Form):
    body = forms.CharField(label=gettext_lazy("Texte de l'attestation"), widget=forms.Textarea(attrs={"rows": 10}))
    signatory = forms.CharField(label=gettext_lazy("Signataire"), required=False, max_length=200)
    mail_subject = forms.CharField(label=gettext_lazy("Objet du courriel"), max_length=200)
    mail_body = forms.CharField(label=gettext_lazy("Texte du courriel"), widget=forms.Textarea(attrs={"rows": 6}))


class TaxCertificateSettingsView(SectionMixin, TemplateView):
    template_name = "billing/tax_certificate_settings.html"
    required_role = Role.MANAGER
    write_view = True

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        current = services.section_settings(self.section)
        from mailing.services import placeholders

        ctx.update(form=kwargs.get("form") or TaxCertificateSettingsForm(initial={
            "body": current.body, "signatory": current.signatory, "mail_subject": current.mail_subject,
            "mail_body": current.mail_body}), body_placeholders=services.BODY_PLACEHOLDERS,
            mail_placeholders=placeholders.placeholders(), cgi_statement=services.CGI_STATEMENT)
        return ctx

    def post(self, request, *args, **kwargs):
        form = TaxCertificateSettingsForm(request.POST)
        if form.is_valid():
            try:
                services.settings_save(section=self.section, user=request.user, **form.cleaned_data)
            except ValidationError as exc:
                attach_errors(exc, form)
            else:
                from django.contrib import messages

                messages.success(request, _("Textes de l'attestation fiscale enregistrés."))
                return redirect("billing:tax-certificates", alias=self.section.alias)
        return self.render_to_response(self.get_context_data(form=form), status=400)


urlpatterns = [
    path("attestations-fiscales/", TaxCertificateListView.as_view(), name="tax-certificates"),
    path("attestations-fiscales/modele/", TaxCertificateSettingsView.as_view(), name="tax-certificate-settings"),
    path("attestations-fiscales/<int:year>/residents/<int:resident_pk>.pdf", TaxCertificatePdfView.as_view(),
         name="tax-certificate-pdf"),
]
