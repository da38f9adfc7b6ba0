"""Invoices by e-mail in the browser: a period's campaign (from the journal), one invoice to chosen
addresses, the preview of the subject and text with a real invoice, and the establishment's
sender and default text. Sending itself is a job of the outbox (``mailing``); its report lives
at ``mailing:campaign-detail``."""
from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect
from django.urls import path
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView

from core.forms import attach_errors
from mailing.forms import AttachmentField, check_attachment, validate_single_line
from mailing.models import OutgoingMessage
from mailing.services import placeholders
from mailing.services.outbox import attachment_store
from structures.access import Role
from structures.models import Establishment
from structures.views_mixins import SectionMixin

from .. import selectors
from ..models import Invoice
from ..services import mailing as mail_services


class MailTextForm(forms.Form):
    subject = forms.CharField(label=gettext_lazy("Objet"), max_length=250, validators=[validate_single_line])
    body = forms.CharField(label=gettext_lazy("Texte du message"), widget=forms.Textarea(attrs={"rows": 8}))
    read_receipt = forms.BooleanField(label=gettext_lazy("Demander un accusé de lecture"), required=False,
                                      help_text=gettext_lazy("Le destinataire peut refuser de l'envoyer."))
    general_attachment = AttachmentField(label=gettext_lazy("Pièce jointe générale (pour tous)"))

    def clean(self):
        data = super().clean()
        try:
            mail_services.check_placeholders(subject=data.get("subject", ""), body=data.get("body", ""))
        except ValidationError as exc:
            attach_errors(exc, self)
        return data


def _initial_text(establishment: Establishment) -> dict:
    return {"subject": establishment.mail_subject, "body": establishment.mail_body}


def _store_attachment(uploaded, folder: str, request) -> dict:
    warning = check_attachment(uploaded)
    if warning:
        messages.warning(request, warning)
    return attachment_store(uploaded=uploaded, folder=folder)


class PeriodMailMixin(SectionMixin):
    required_role = Role.CLERK
    write_view = True

    @cached_property
    def period(self):
        return selectors.period_get(section=self.section, pk=self.kwargs["period_pk"])


class MailCampaignView(PeriodMailMixin, TemplateView):
    """The period's issued invoices with their addresses (select all / none / one by one), the
    subject and text for this sending, general and individual attachments, read receipt."""

    template_name = "billing/mail_campaign.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        rows, without = mail_services.period_mailing_rows(self.period)
        establishment = self.section.establishment
        form = kwargs.get("form") or MailTextForm(initial=_initial_text(establishment))
        selected = kwargs.get("selected")
        for row in rows:
            row.checked = (row.invoice.pk in selected) if selected is not None else (
                row.invoice.last_sent_at is None and not row.pending)
        preview_invoice = rows[0].invoice if rows else None
        ctx.update(period=self.period, rows=rows, without=without, form=form, establishment=establishment,
                   organisation=establishment.organisation, placeholders=placeholders.placeholders(),
                   preview=_preview(form, preview_invoice), preview_invoice=preview_invoice)
        return ctx

    def post(self, request, *args, **kwargs):
        form = MailTextForm(request.POST, request.FILES)
        selected = {int(pk) for pk in request.POST.getlist("invoices") if pk.isdigit()}
        individual_uploads = {}
        for pk in selected:
            uploaded = request.FILES.get(f"attachment_{pk}")
            if uploaded:
                try:
                    check_attachment(uploaded)
                except ValidationError as exc:
                    form.add_error(None, exc.messages)
                individual_uploads[pk] = uploaded
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form, selected=selected))
        folder = f"{self.section.alias}/{self.period.start:%Y-%m}"
        general = []
        if form.cleaned_data.get("general_attachment"):
            general.append(_store_attachment(form.cleaned_data["general_attachment"], folder, request))
        individual = {pk: [_store_attachment(f, folder, request)] for pk, f in individual_uploads.items()}
        try:
            campaign = mail_services.period_campaign_send(
                period=self.period, invoice_ids=sorted(selected), subject=form.cleaned_data["subject"],
                body=form.cleaned_data["body"], read_receipt=form.cleaned_data["read_receipt"],
                general_attachments=general, individual_attachments=individual, user=request.user)
        except ValidationError as exc:
            form.add_error(None, exc.messages)
            return self.render_to_response(self.get_context_data(form=form, selected=selected))
        n = campaign.messages.count()
        messages.success(request, _("%(n)s message(s) mis en file d'envoi.") % {"n": n})
        return redirect("mailing:campaign-detail", alias=self.section.alias, pk=campaign.pk)


def _preview(form, invoice: Invoice | None) -> dict | None:
    if invoice is None:
        return None
    data = form.data if form.is_bound else form.initial
    subject, body = data.get("subject", ""), data.get("body", "")
    return {"invoice": invoice, "subject": mail_services.render_for_invoice(subject, invoice),
            "body": mail_services.render_for_invoice(body, invoice),
            "recipients": mail_services.invoice_recipients(invoice),
            "unknown": placeholders.unknown_placeholders(subject + " " + body)}


class MailPreviewView(SectionMixin, TemplateView):
    """htmx fragment: the subject and text as they will read for one real invoice of the section."""

    template_name = "billing/mail_preview.html"
    required_role = Role.CLERK
    write_view = True

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        params = self.request.GET
        invoice = None
        if params.get("invoice", "").isdigit():
            invoice = selectors.invoices_of(section=self.section).filter(
                pk=int(params["invoice"]), status=Invoice.Status.ISSUED).first()
        if invoice is None:
            invoice = selectors.invoices_of(section=self.section).filter(status=Invoice.Status.ISSUED) \
                .order_by("-issue_date", "-pk").first()
        form = MailTextForm(data={"subject": params.get("subject", ""), "body": params.get("body", "")})
        ctx["preview"] = _preview(form, invoice)
        ctx["samples"] = placeholders.render(params.get("subject", ""), placeholders.sample_values())
        return ctx


class InvoiceMailForm(MailTextForm):
    addresses = forms.MultipleChoiceField(label=gettext_lazy("Destinataires"), required=False,
                                          widget=forms.CheckboxSelectMultiple)
    other = forms.CharField(label=gettext_lazy("Autre adresse"), required=False,
                            help_text=gettext_lazy("Une ou plusieurs adresses saisies à la main, séparées par des "
                                                   "virgules."))

    field_order = ["addresses", "other", "subject", "body", "read_receipt", "general_attachment"]

    def __init__(self, *args, candidates=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["addresses"].choices = [(c.email, f"{c.email} — {c.name} ({c.role})") for c in candidates]
        self.fields["general_attachment"].label = _("Pièce jointe supplémentaire")

    def recipients(self) -> list[str]:
        typed = [a.strip() for a in self.cleaned_data.get("other", "").replace(";", ",").split(",") if a.strip()]
        return list(self.cleaned_data.get("addresses", [])) + typed


class InvoiceMailView(SectionMixin, TemplateView):
    """One invoice to one or several of the resident's relatives, or to an address typed by hand."""

    template_name = "billing/mail_invoice.html"
    required_role = Role.CLERK
    write_view = True

    @cached_property
    def invoice(self) -> Invoice:
        return selectors.invoice_get(section=self.section, pk=self.kwargs["pk"])

    def get_form(self, data=None, files=None):
        candidates = mail_services.invoice_candidate_addresses(self.invoice)
        initial = {**mail_services.default_text(establishment=self.section.establishment, invoice=self.invoice),
                   "addresses": [r.email for r in mail_services.invoice_recipients(self.invoice)]}
        return InvoiceMailForm(data, files, candidates=candidates, initial=initial)

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        form = kwargs.get("form") or self.get_form()
        ctx.update(invoice=self.invoice, form=form, placeholders=placeholders.placeholders(),
                   preview=_preview(form, self.invoice) if self.invoice.status == Invoice.Status.ISSUED else None,
                   history=OutgoingMessage.objects.filter(
                       related_key=mail_services.invoice_key(self.invoice)).order_by("-created_at")[:20])
        return ctx

    def post(self, request, *args, **kwargs):
        form = self.get_form(request.POST, request.FILES)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form))
        attachments = []
        if form.cleaned_data.get("general_attachment"):
            attachments.append(_store_attachment(form.cleaned_data["general_attachment"],
                                                 f"{self.section.alias}/factures", request))
        try:
            campaign = mail_services.invoice_send(
                invoice=self.invoice, recipients=form.recipients(), subject=form.cleaned_data["subject"],
                body=form.cleaned_data["body"], read_receipt=form.cleaned_data["read_receipt"],
                attachments=attachments, user=request.user)
        except ValidationError as exc:
            form.add_error(None, exc.messages)
            return self.render_to_response(self.get_context_data(form=form))
        done = (_("Avoir %(number)s mis en file d'envoi.") if self.invoice.kind == Invoice.Kind.CREDIT_NOTE
                else _("Facture %(number)s mise en file d'envoi."))
        messages.success(request, done % {"number": self.invoice.number})
        return redirect("mailing:campaign-detail", alias=self.section.alias, pk=campaign.pk)


class MailSettingsForm(forms.ModelForm):
    class Meta:
        model = Establishment
        fields = ["sender_name", "sender_email", "mail_subject", "mail_body"]
        widgets = {"mail_body": forms.Textarea(attrs={"rows": 8})}

    def clean_mail_subject(self):
        subject = self.cleaned_data.get("mail_subject", "")
        validate_single_line(subject)
        return subject

    def clean(self):
        data = super().clean()
        try:
            mail_services.check_placeholders(subject=data.get("mail_subject", ""), body=data.get("mail_body", ""))
        except ValidationError as exc:
            attach_errors(exc, self, rename={"subject": "mail_subject", "body": "mail_body"})
        return data


class MailSettingsView(SectionMixin, TemplateView):
    """Managers: sender of the establishment and default subject / text, with the placeholders,
    their sample values and a preview with the section's latest issued invoice."""

    template_name = "billing/mail_settings.html"
    required_role = Role.MANAGER
    write_view = True

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        establishment = self.section.establishment
        form = kwargs.get("form") or MailSettingsForm(instance=establishment)
        invoice = selectors.invoices_of(section=self.section).filter(status=Invoice.Status.ISSUED) \
            .order_by("-issue_date", "-pk").first()
        subject = form.data.get("mail_subject", "") if form.is_bound else establishment.mail_subject
        body = form.data.get("mail_body", "") if form.is_bound else establishment.mail_body
        samples = placeholders.sample_values()
        ctx.update(form=form, establishment=establishment, placeholders=placeholders.placeholders(),
                   sample_subject=placeholders.render(subject, samples), sample_body=placeholders.render(body, samples),
                   invoice=invoice,
                   invoice_subject=mail_services.render_for_invoice(subject, invoice) if invoice else "",
                   invoice_body=mail_services.render_for_invoice(body, invoice) if invoice else "")
        return ctx

    def post(self, request, *args, **kwargs):
        form = MailSettingsForm(request.POST, instance=self.section.establishment)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form))
        form.save()
        messages.success(request, _("Paramètres d'envoi enregistrés."))
        return redirect(request.path)


urlpatterns = [
    path("periodes/<int:period_pk>/envoi-mail/", MailCampaignView.as_view(), name="mail-campaign"),
    path("envoi-mail/apercu/", MailPreviewView.as_view(), name="mail-preview"),
    path("factures/<int:pk>/envoi-mail/", InvoiceMailView.as_view(), name="invoice-mail"),
    path("envoi-mail/parametres/", MailSettingsView.as_view(), name="mail-settings"),
]
