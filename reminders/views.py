"""Reminder screens: runs (form, proposal with « loupe », untick, validate as a job), letters,
registered-letter number, history per invoice (with the dispute flag) and per resident, reminded
debtors still owing. Reading needs the section; any change needs the *facturation* role."""
from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import TemplateView

from residents.models import Resident
from structures import access
from structures.views_mixins import SectionMixin

from . import selectors
from .models import InvoiceDispute, Reminder, ReminderRun
from .services import runs
from .services.proposal import first_of_month


class RunForm(forms.Form):
    limit_date = forms.DateField(label=gettext_lazy("Date limite"), required=False,
                                 help_text=gettext_lazy("Factures échues au plus tard ce jour (défaut : le 1er du mois)."),
                                 widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}))
    print_date = forms.DateField(label=gettext_lazy("Date d'impression"),
                                 widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}))
    all_sections = forms.BooleanField(
        label=gettext_lazy("Toutes les sections"), required=False,
        help_text=gettext_lazy("Toutes les sections de l'association où vous facturez : une campagne par section."))


class RunListView(SectionMixin, TemplateView):
    template_name = "reminders/run_list.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        today = timezone.localdate()
        ctx.update(form=kwargs.get("form") or RunForm(initial={"print_date": today,
                                                               "limit_date": first_of_month(today)}),
                   runs=ReminderRun.objects.filter(section=self.section).order_by("-created_at")[:30],
                   unpaid=selectors.reminded_unpaid(self.section),
                   aid_pending=selectors.aid_pending_invoices(self.section),
                   other_proposed=selectors.proposed_runs(self.clerk_sections().exclude(pk=self.section.pk)))
        return ctx

    def clerk_sections(self):
        """The association's sections where the user may bill (the single scoping path)."""
        return access.sections_for(self.request.user, access.Role.CLERK).filter(
            establishment__organisation_id=self.section.establishment.organisation_id, is_active=True)

    def post(self, request, alias):
        form = RunForm(request.POST)
        if form.is_valid():
            dates = {"print_date": form.cleaned_data["print_date"], "limit_date": form.cleaned_data["limit_date"]}
            try:
                if form.cleaned_data["all_sections"]:
                    created = runs.runs_create(sections=self.clerk_sections(), user=request.user, **dates)
                else:
                    created = [runs.run_create(section=self.section, user=request.user, **dates)]
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                if len(created) == 1 and created[0].section_id == self.section.pk:
                    return redirect("reminders:run", alias=alias, pk=created[0].pk)
                messages.success(request, _("%(n)s campagne(s) proposée(s) : %(aliases)s.") % {
                    "n": len(created), "aliases": ", ".join(run.section.alias for run in created) or "—"})
                return redirect("reminders:runs", alias=alias)
        return self.render_to_response(self.get_context_data(form=form))


class RunDetailView(SectionMixin, TemplateView):
    template_name = "reminders/run_detail.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        run = selectors.run_get(section=self.section, pk=self.kwargs["pk"])
        letters = list(run.letters.order_by("debtor_name", "pk"))
        ctx.update(run=run, debtors=selectors.run_debtors(run), suspended=selectors.run_suspended(run),
                   job=run.job, letters=letters,
                   to_post=[letter for letter in letters if not letter.emails])
        return ctx

    def post(self, request, alias, pk):
        run = selectors.run_get(section=self.section, pk=pk)
        try:
            runs.run_select(run=run, selected_ids=request.POST.getlist("line"))
            if "validate" in request.POST:
                runs.run_validate_start(run=run, user=request.user)
                messages.success(request, _("Validation lancée : les lettres sont produites et envoyées."))
            else:
                messages.success(request, _("Sélection enregistrée."))
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        return redirect("reminders:run", alias=alias, pk=pk)


def _pdf(data: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(data, content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    return response


class PreviewView(SectionMixin, View):
    """The « loupe »: the debtor's letter as it would be printed, inline."""

    def get(self, request, alias, pk, line_pk):
        run = selectors.run_get(section=self.section, pk=pk)
        line = get_object_or_404(Reminder.objects.select_related("invoice"), pk=line_pk, run=run)
        return _pdf(runs.run_preview_pdf(run=run, reminder=line), f"apercu_relance_{line.pk}.pdf")


class MergedPdfView(SectionMixin, View):
    def get(self, request, alias, pk):
        run = selectors.run_get(section=self.section, pk=pk)
        if not run.merged_pdf:
            raise Http404("Aucune lettre produite pour cette campagne.")
        return FileResponse(run.merged_pdf.open("rb"), content_type="application/pdf",
                            filename=f"relances_{run.section.alias}_{run.print_date:%Y%m%d}.pdf", as_attachment=False)


class LetterPdfView(SectionMixin, View):
    def get(self, request, alias, pk):
        letter = selectors.letter_get(section=self.section, pk=pk)
        if not letter.pdf:
            raise Http404("Lettre sans PDF.")
        return FileResponse(letter.pdf.open("rb"), content_type="application/pdf",
                            filename=f"relance_{letter.pk}.pdf", as_attachment=False)


class RegisteredNumberView(SectionMixin, View):
    def post(self, request, alias, pk):
        letter = selectors.letter_get(section=self.section, pk=pk)
        try:
            runs.letter_set_registered_number(letter=letter, number=request.POST.get("registered_number", ""))
            messages.success(request, _("Numéro de recommandé enregistré."))
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        return redirect("reminders:run", alias=alias, pk=letter.run_id)


class DisputeForm(forms.Form):
    is_disputed = forms.BooleanField(label=gettext_lazy("Facture contestée (ne pas relancer)"), required=False)
    comment = forms.CharField(label=gettext_lazy("Commentaire"), max_length=250, required=False)

    def clean(self):
        data = super().clean()
        if data.get("is_disputed") and not (data.get("comment") or "").strip():
            self.add_error("comment", _("Indiquez pourquoi la facture est contestée."))
        return data


class InvoiceRemindersView(SectionMixin, TemplateView):
    """An invoice's reminder history, its dispute flag (editable) and the cancel buttons."""

    template_name = "reminders/invoice.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        invoice = selectors.invoice_get(section=self.section, pk=self.kwargs["pk"])
        dispute = InvoiceDispute.objects.filter(invoice=invoice).first()
        ctx.update(invoice=invoice, history=selectors.invoice_history(invoice),
                   dispute_form=kwargs.get("dispute_form") or DisputeForm(initial={
                       "is_disputed": bool(dispute and dispute.is_disputed),
                       "comment": dispute.comment if dispute else ""}))
        return ctx

    def post(self, request, alias, pk):
        invoice = selectors.invoice_get(section=self.section, pk=pk)
        if "cancel" in request.POST:
            reminder = get_object_or_404(Reminder, pk=request.POST.get("cancel"), invoice=invoice)
            try:
                runs.reminder_cancel(reminder=reminder, reason=request.POST.get("reason", ""), user=request.user)
                messages.success(request, _("Relance annulée."))
            except ValidationError as exc:
                messages.error(request, " ".join(exc.messages))
            return redirect("reminders:invoice", alias=alias, pk=pk)
        form = DisputeForm(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(dispute_form=form))
        InvoiceDispute.objects.update_or_create(invoice=invoice, defaults={
            "is_disputed": form.cleaned_data["is_disputed"], "comment": form.cleaned_data["comment"].strip(),
            "updated_by": request.user})
        messages.success(request, _("Contestation enregistrée."))
        return redirect("reminders:invoice", alias=alias, pk=pk)


class ResidentRemindersView(SectionMixin, TemplateView):
    template_name = "reminders/resident.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        resident = Resident.objects.filter(pk=self.kwargs["pk"], stays__section=self.section).first()
        if resident is None:
            raise Http404("Résident introuvable dans cette section.")
        ctx.update(resident=resident, history=selectors.resident_history(section=self.section, resident=resident))
        return ctx
