"""Outbox pages, mounted under /s/<alias>/courriels/: the section's sendings, a campaign's report
(live progress, printable, XLSX), one message's log with the manual decisions, and the SMTP test.

Every object is looked up through the section of the URL (``SectionMixin``): another section's
campaign or message is a 404; changes need the *facturation* role, the SMTP test an administrator of the association."""
from __future__ import annotations

import json

from django import forms
from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import redirect
from django.urls import path
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import TemplateView

from structures.access import Role
from structures.selectors import smtp_blocked_notices
from structures.views_mixins import SectionMixin

from .models import MailCampaign, OutgoingMessage
from .services import outbox
from .services.campaigns import campaign_start, counts_message
from .services.reports import campaign_xlsx
from .services.smtp_test import smtp_test

app_name = "mailing"


def campaigns_of(section):
    return MailCampaign.objects.filter(section=section).select_related("created_by", "job")


class CampaignListView(SectionMixin, TemplateView):
    template_name = "mailing/campaign_list.html"
    required_role = Role.READER

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        campaigns = list(campaigns_of(self.section)[:200])
        for campaign in campaigns:
            campaign.counts = outbox.campaign_counts(campaign)
        ctx["campaigns"] = campaigns
        return ctx


class CampaignMixin(SectionMixin):
    required_role = Role.CLERK

    @cached_property
    def campaign(self) -> MailCampaign:
        try:
            return campaigns_of(self.section).get(pk=self.kwargs["pk"])
        except MailCampaign.DoesNotExist as exc:
            raise Http404(_("Envoi introuvable dans cette section.")) from exc

    def campaign_context(self) -> dict:
        counts = outbox.campaign_counts(self.campaign)
        job = self.campaign.job
        running = bool(job and not job.is_finished) or (counts["remaining"] > 0 and counts["sending"] > 0)
        return {"campaign": self.campaign, "counts": counts, "counts_text": counts_message(counts),
                "running": running, "job": job}


class CampaignDetailView(CampaignMixin, TemplateView):
    """The report of one sending: counts, each message with its outcome and explanation."""

    template_name = "mailing/campaign_detail.html"
    required_role = Role.READER

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx.update(self.campaign_context())
        ctx["messages_list"] = self.campaign.messages.order_by("related_label", "pk")
        ctx["no_address"] = (self.campaign.context or {}).get("no_address", [])
        ctx["smtp_blocked"] = smtp_blocked_notices(self.request.user, [self.section])
        return ctx


class CampaignProgressView(CampaignMixin, TemplateView):
    """htmx fragment polled while the campaign runs: sent / failed / remaining."""

    template_name = "mailing/_campaign_progress.html"
    required_role = Role.READER

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx.update(self.campaign_context())
        return ctx

    def render_to_response(self, context, **kwargs):
        response = super().render_to_response(context, **kwargs)
        if not context["running"] and self.request.htmx:
            # The page was following the sending: let it reload the message rows and buttons.
            response["HX-Trigger"] = json.dumps({"job-finished": {"campaign": self.campaign.pk}})
        return response


class CampaignExportView(CampaignMixin, View):
    required_role = Role.READER

    def get(self, request, *args, **kwargs):
        response = HttpResponse(campaign_xlsx(self.campaign),
                                content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        response["Content-Disposition"] = (f'attachment; filename="envoi-{self.section.alias}-'
                                           f'{self.campaign.pk}.xlsx"')
        return response


class CampaignActionView(CampaignMixin, View):
    """POST ``action=resume`` (start a new sending job: finishes what remains, never re-sends) or
    ``action=cancel`` (cancel the messages not yet handed to the server)."""

    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        campaign = self.campaign
        action = request.POST.get("action")
        if action == "resume":
            if campaign.job and not campaign.job.is_finished:
                messages.info(request, _("L'envoi est déjà en cours."))
            else:
                campaign_start(campaign=campaign, user=request.user)
                messages.success(request, _("Envoi relancé : seuls les messages restants partiront."))
        elif action == "cancel":
            n = outbox.messages_cancel(campaign.messages.all(), user=request.user)
            messages.success(request, _("%(n)s message(s) annulé(s).") % {"n": n})
        else:
            raise Http404(_("Action inconnue."))
        return redirect("mailing:campaign-detail", alias=self.section.alias, pk=campaign.pk)


class MessageDetailView(SectionMixin, TemplateView):
    """One message: what was sent to whom, every attempt; resend / mark as sent (POST, clerk)."""

    template_name = "mailing/message_detail.html"
    required_role = Role.CLERK

    @cached_property
    def message(self) -> OutgoingMessage:
        try:
            return OutgoingMessage.objects.select_related("campaign").get(pk=self.kwargs["pk"], section=self.section)
        except OutgoingMessage.DoesNotExist as exc:
            raise Http404(_("Message introuvable dans cette section.")) from exc

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx.update(message=self.message, attempts=self.message.attempt_log.all())
        return ctx

    def post(self, request, *args, **kwargs):
        message = self.message
        action = request.POST.get("action")
        try:
            if action == "requeue":
                outbox.message_requeue(message=message, user=request.user)
                if message.campaign and message.campaign.kind != MailCampaign.Kind.TEST:
                    if not (message.campaign.job and not message.campaign.job.is_finished):
                        campaign_start(campaign=message.campaign, user=request.user)
                messages.success(request, _("Le message est remis en file et va être renvoyé."))
            elif action == "mark_sent":
                outbox.message_mark_sent(message=message, user=request.user)
                messages.success(request, _("Message marqué comme envoyé."))
            else:
                raise Http404(_("Action inconnue."))
        except ValueError as exc:
            messages.error(request, str(exc))
        return redirect("mailing:message-detail", alias=self.section.alias, pk=message.pk)


class SmtpTestForm(forms.Form):
    to = forms.EmailField(label=gettext_lazy("Adresse de destination du test"),
                          widget=forms.EmailInput(attrs={"placeholder": "vous@exemple.fr"}))


class SmtpTestView(SectionMixin, TemplateView):
    """Administrators of the association: connect, authenticate and send a test message with its
    settings (a section manager gets 403: the test would hand the password to any server)."""

    template_name = "mailing/smtp_test.html"
    required_role = Role.READER
    write_view = True
    organisation_admin_required = True

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        establishment = self.section.establishment
        ctx.update(organisation=establishment.organisation, establishment=establishment,
                   smtp_blocked=smtp_blocked_notices(self.request.user, [self.section]),
                   form=kwargs.get("form") or SmtpTestForm(initial={"to": self.request.user.email}))
        return ctx

    def post(self, request, *args, **kwargs):
        form = SmtpTestForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form))
        establishment = self.section.establishment
        organisation = establishment.organisation
        sender = establishment.sender_email or organisation.email or organisation.smtp_username
        if not sender:
            form.add_error(None, _("Renseignez l'adresse de l'expéditeur de l'établissement (ou l'e-mail de "
                                   "l'association) avant le test."))
            return self.render_to_response(self.get_context_data(form=form))
        report = smtp_test(organisation=organisation, sender_email=sender,
                           sender_name=establishment.sender_name or establishment.name, to=form.cleaned_data["to"],
                           section=self.section, user=request.user)
        organisation.refresh_from_db(fields=["smtp_blocked_at", "smtp_blocked_reason"])  # a success lifts the block
        return self.render_to_response(self.get_context_data(form=form, report=report, sender=sender))


urlpatterns = [
    path("", CampaignListView.as_view(), name="campaigns"),
    path("envois/<int:pk>/", CampaignDetailView.as_view(), name="campaign-detail"),
    path("envois/<int:pk>/avancement/", CampaignProgressView.as_view(), name="campaign-progress"),
    path("envois/<int:pk>/rapport.xlsx", CampaignExportView.as_view(), name="campaign-export"),
    path("envois/<int:pk>/action/", CampaignActionView.as_view(), name="campaign-action"),
    path("messages/<int:pk>/", MessageDetailView.as_view(), name="message-detail"),
    # Outside the request transaction: the test's outbox rows and throttle are committed step by step.
    path("test-smtp/", transaction.non_atomic_requests(SmtpTestView.as_view()), name="smtp-test"),
]
