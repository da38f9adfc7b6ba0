"""SEPA screens: the *Mandats SEPA* tab of the resident file (create, print, sign, change of account,
revoke) and the debit batches of a section (create from a period, generate, download, send,
settle, cancel). Thin: the rules are in ``sepa.services``."""
from __future__ import annotations

from datetime import date

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import TemplateView

from billing.models import BillingPeriod
from billing.services.pdf import html_to_pdf
from core.exports import xlsx_bytes
from residents import selectors as resident_selectors
from residents.views import TABS
from structures.access import Role
from structures.views_mixins import SectionMixin

from .models import DebitBatch, Mandate
from .services import debits, mandates, returns

app_name = "sepa"


def _date(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value or "")
    except ValueError:
        raise ValidationError({field: _("Date invalide : « %(value)s ».") % {"value": value}}) from None


def _error(request, exc: ValidationError) -> None:
    messages.error(request, " ".join(exc.messages))


class ResidentMandatesView(SectionMixin, TemplateView):
    template_name = "sepa/resident_mandates.html"

    def _resident(self):
        return resident_selectors.resident_get(self.request.user, section=self.section, pk=self.kwargs["pk"])

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        resident = self._resident()
        ctx.update(resident=resident, tabs=TABS, tab="mandates", age=resident.age_on(timezone.localdate()),
                   mandates=Mandate.objects.filter(establishment=self.section.establishment, resident=resident)
                   .select_related("relative").prefetch_related("accounts").order_by("-pk"),
                   relatives=resident.relatives.all(), today=timezone.localdate())
        return ctx

    def post(self, request, alias, pk):
        resident = self._resident()
        data = request.POST
        action = data.get("action")
        try:
            if action == "create":
                relative = resident.relatives.filter(pk=data.get("relative") or 0).first()
                mandates.mandate_create(
                    establishment=self.section.establishment, resident=resident, relative=relative,
                    iban=data.get("iban", ""), bic=data.get("bic", ""), account_holder=data.get("account_holder", ""),
                    rum=data.get("rum", ""), signature_date=_date(data["signature_date"], "signature_date")
                    if data.get("signature_date") else None)
                messages.success(request, _("Mandat créé."))
            else:
                mandate = get_object_or_404(Mandate, pk=data.get("mandate") or 0, resident=resident,
                                            establishment=self.section.establishment)
                if action == "sign":
                    mandates.mandate_sign(mandate=mandate, signature_date=_date(data.get("signature_date"), "signature_date"))
                    messages.success(request, _("Mandat %(rum)s signé : actif.") % {"rum": mandate.rum})
                elif action == "account":
                    mandates.mandate_change_account(mandate=mandate, iban=data.get("iban", ""), bic=data.get("bic", ""),
                                                    account_holder=data.get("account_holder", ""))
                    messages.success(request, _("Nouveau compte enregistré sur le mandat %(rum)s (amendement au "
                                                "prochain prélèvement).") % {"rum": mandate.rum})
                elif action == "revoke":
                    mandates.mandate_revoke(mandate=mandate, on=_date(data.get("revoked_on"), "revoked_on"),
                                            reason=data.get("reason", ""))
                    messages.success(request, _("Mandat %(rum)s révoqué.") % {"rum": mandate.rum})
                else:
                    raise Http404
        except ValidationError as exc:
            _error(request, exc)
        return redirect("sepa:resident-mandates", alias=alias, pk=pk)


class MandateFormPdfView(SectionMixin, View):
    """The mandate form to sign, pre-filled, with the legal SEPA texts."""

    required_role = Role.READER

    def get(self, request, alias, pk):
        mandate = get_object_or_404(Mandate.objects.select_related("resident", "relative", "establishment"), pk=pk,
                                    establishment=self.section.establishment)
        resident_selectors.resident_get(request.user, section=self.section, pk=mandate.resident_id)
        html = render_to_string("sepa/pdf/mandate.html", {"mandate": mandate, "est": mandate.establishment,
                                                          "debtor": mandate.relative or mandate.resident,
                                                          "texts": mandates.mandate_texts(mandate.establishment)})
        response = HttpResponse(html_to_pdf(html), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="mandat-{mandate.rum}.pdf"'
        response["Cache-Control"] = "private, no-store"
        return response


class BatchListView(SectionMixin, TemplateView):
    template_name = "sepa/batch_list.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx.update(batches=DebitBatch.objects.filter(section=self.section).select_related("period"),
                   periods=BillingPeriod.objects.filter(section=self.section).order_by("-start")[:24])
        return ctx

    def post(self, request, alias):
        period = get_object_or_404(BillingPeriod, pk=request.POST.get("period") or 0, section=self.section)
        try:
            batch = debits.debit_batch_create(period=period, user=request.user,
                                              collection_date=_date(request.POST.get("collection_date"),
                                                                    "collection_date"))
        except ValidationError as exc:
            _error(request, exc)
            return redirect("sepa:batches", alias=alias)
        return redirect("sepa:batch-detail", alias=alias, pk=batch.pk)


class BatchMixin(SectionMixin):
    def batch(self) -> DebitBatch:
        return get_object_or_404(DebitBatch.objects.select_related("period"), pk=self.kwargs["pk"], section=self.section)


class BatchDetailView(BatchMixin, TemplateView):
    template_name = "sepa/batch_detail.html"
    ACTIONS = {"generate": debits.debit_batch_generate, "send": debits.debit_batch_mark_sent,
               "cancel": debits.debit_batch_cancel}

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        batch = self.batch()
        exclusions = []
        if batch.status in (DebitBatch.Status.DRAFT, DebitBatch.Status.GENERATED):
            try:
                exclusions = [e for e in debits.batch_selection(period=batch.period).exclusions
                              if not e.reason.startswith(_("Déjà dans le lot"))]
            except ValidationError:
                exclusions = []
        ctx.update(batch=batch, totals=debits.debit_batch_totals(batch), exclusions=exclusions,
                   lines=batch.lines.filter(active=True).select_related("invoice", "mandate", "installment__plan"))
        return ctx

    def post(self, request, alias, pk):
        batch = self.batch()
        action = request.POST.get("action")
        try:
            if action == "settle":
                debits.debit_batch_settle(batch=batch, user=request.user)
            elif action in self.ACTIONS:
                self.ACTIONS[action](batch=batch)
            else:
                raise Http404
            messages.success(request, _("Lot n° %(pk)s : %(status)s.") % {
                "pk": batch.pk, "status": DebitBatch.objects.get(pk=batch.pk).get_status_display().lower()})
        except ValidationError as exc:
            _error(request, exc)
        return redirect("sepa:batch-detail", alias=alias, pk=pk)


class BatchXmlView(BatchMixin, View):
    required_role = Role.READER

    def get(self, request, alias, pk):
        batch = self.batch()
        if not batch.xml or batch.status == DebitBatch.Status.CANCELLED:
            raise Http404
        response = HttpResponse(batch.xml.encode("utf-8"), content_type="application/xml")
        response["Content-Disposition"] = f'attachment; filename="prelevements-{batch.pk}.xml"'
        return response


class BatchListingView(BatchMixin, View):
    """The listing as XLSX (through ``core.exports``: typed amounts, formula-safe text) or PDF."""

    required_role = Role.READER

    def get(self, request, alias, pk, fmt="xlsx"):
        batch = self.batch()
        listing = debits.debit_batch_listing(batch)
        name = f"prelevements-{batch.pk}"
        if fmt == "pdf":
            html = render_to_string("sepa/pdf/batch_listing.html", {
                "batch": batch, "rows": listing.rows, "totals": listing.totals, "section": self.section,
                "creditor": self.section.establishment})
            response = HttpResponse(html_to_pdf(html), content_type="application/pdf")
            response["Content-Disposition"] = f'inline; filename="{name}.pdf"'
            return response
        content = xlsx_bytes(_("Prélèvements"), listing.spreadsheet_rows(), headers=listing.headers,
                             widths=[32, 24, 10, 14, 22, 32])
        response = HttpResponse(content, content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        response["Content-Disposition"] = f'attachment; filename="{name}.xlsx"'
        return response


class ReturnsImportView(SectionMixin, View):
    """Upload of a pain.002 / camt.054 file of rejects and returns (the report shown as messages)."""

    MAX_BYTES = 20 * 1024 * 1024

    def post(self, request, alias):
        upload = request.FILES.get("file")
        if upload is None or upload.size > self.MAX_BYTES:
            messages.error(request, _("Choisissez un fichier pain.002 ou camt.054 (20 Mo au plus)."))
            return redirect("sepa:batches", alias=alias)
        try:
            report = returns.returns_apply(content=upload.read(), user=request.user)
        except ValidationError as exc:
            messages.error(request, _("%(name)s refusé, rien n'a été appliqué : %(errors)s") % {
                "name": upload.name, "errors": " ".join(exc.messages)})
            return redirect("sepa:batches", alias=alias)
        messages.success(request, _("%(applied)s rejet(s) ou retour(s) appliqué(s), %(already)s déjà traité(s), "
                                    "%(unmatched)s sans correspondance.") % {
            "applied": len(report.applied), "already": len(report.already), "unmatched": len(report.unmatched)})
        if report.unmatched:
            messages.warning(request, _("Sans correspondance : %(refs)s") % {"refs": ", ".join(report.unmatched)})
        if report.suspended:
            messages.warning(request, _("Mandats suspendus, à revoir : %(rums)s") % {"rums": ", ".join(report.suspended)})
        return redirect("sepa:batches", alias=alias)


class MandateTextsView(SectionMixin, TemplateView):
    """The legal texts of the mandate form of the section's establishment (managers edit them)."""

    template_name = "sepa/mandate_texts.html"
    required_role = Role.MANAGER
    write_view = True

    def get_context_data(self, **kwargs):
        from .models import DEFAULT_MANDATE_AUTHORISATION, DEFAULT_MANDATE_NOTICE, MandateText

        ctx = super().get_context_data(**kwargs)
        saved = MandateText.objects.filter(establishment=self.section.establishment).first()
        ctx.update(establishment=self.section.establishment,
                   authorisation=kwargs.get("authorisation") or (saved.authorisation if saved else DEFAULT_MANDATE_AUTHORISATION),
                   notice=kwargs.get("notice") or (saved.notice if saved else DEFAULT_MANDATE_NOTICE))
        return ctx

    def post(self, request, alias):
        data = request.POST
        try:
            mandates.mandate_texts_save(establishment=self.section.establishment,
                                        authorisation=data.get("authorisation", ""), notice=data.get("notice", ""))
        except ValidationError as exc:
            _error(request, exc)
            return self.render_to_response(self.get_context_data(authorisation=data.get("authorisation", ""),
                                                                 notice=data.get("notice", "")), status=400)
        messages.success(request, _("Textes du mandat enregistrés : ils s'impriment sur les prochains formulaires."))
        return redirect("sepa:mandate-texts", alias=alias)


class MandatesLapsedView(SectionMixin, TemplateView):
    """For the clerk: mandates *caducs* (36 months without a debit) and those about to lapse."""

    template_name = "sepa/mandates_lapsed.html"
    required_role = Role.READER

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        lapsed, lapsing = mandates.mandates_lapse_list(section=self.section)
        ctx.update(lapsed=lapsed, lapsing=lapsing, within_days=mandates.LAPSE_WARNING_DAYS)
        return ctx


def resident_mandates_url(section, resident_id) -> str:
    return reverse("sepa:resident-mandates", kwargs={"alias": section.alias, "pk": resident_id})


urlpatterns = [
    path("residents/<int:pk>/mandats/", ResidentMandatesView.as_view(), name="resident-mandates"),
    path("mandats/<int:pk>/formulaire.pdf", MandateFormPdfView.as_view(), name="mandate-pdf"),
    path("mandats/caducs/", MandatesLapsedView.as_view(), name="mandates-lapsed"),
    path("mandats/textes/", MandateTextsView.as_view(), name="mandate-texts"),
    path("lots/", BatchListView.as_view(), name="batches"),
    path("retours/", ReturnsImportView.as_view(), name="returns"),
    path("lots/<int:pk>/", BatchDetailView.as_view(), name="batch-detail"),
    path("lots/<int:pk>/pain008.xml", BatchXmlView.as_view(), name="batch-xml"),
    path("lots/<int:pk>/liste.xlsx", BatchListingView.as_view(), name="batch-xlsx"),
    path("lots/<int:pk>/liste.pdf", BatchListingView.as_view(), {"fmt": "pdf"}, name="batch-pdf"),
]
