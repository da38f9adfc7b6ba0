"""Bank statements (camt.053) in the browser: upload (managers; a job parses the large ones) and the
manual matching screen (clerks): each pending line is given an invoice number of the section, a
resident's external reference or a payer of the association — every choice resolved within the
section of the URL (another section's invoice or resident: refused), or set aside with a reason."""
from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView

from billing.models import Invoice
from billing.services.payments import Debtor
from core.forms import attach_errors
from payers.models import Payer
from residents.models import Relative, Resident
from structures.access import Role
from structures.views_mixins import SectionMixin

from ..models import BankStatementEntry, ImportRun
from ..services import bank_statement as service


class StatementUploadForm(forms.Form):
    file = forms.FileField(label=gettext_lazy("Relevé bancaire camt.053 (.xml)"))
    dry_run = forms.BooleanField(label=gettext_lazy("Simulation (ne rien écrire)"), required=False)

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > service.MAX_BYTES:
            raise forms.ValidationError(gettext_lazy("Le fichier dépasse 20 Mo."))
        return upload


class EntryMatchForm(forms.Form):
    """One pending line: an invoice number, a resident's reference or a payer (exactly one), or set aside."""

    entry = forms.IntegerField(widget=forms.HiddenInput)
    invoice = forms.CharField(label=gettext_lazy("N° de facture"), required=False, max_length=30)
    resident = forms.CharField(label=gettext_lazy("Réf. résident"), required=False, max_length=40)
    payer = forms.ModelChoiceField(label=gettext_lazy("Payeur"), queryset=Payer.objects.none(), required=False)
    reason = forms.CharField(label=gettext_lazy("Motif pour écarter"), required=False, max_length=250)

    def __init__(self, *args, section, **kwargs):
        super().__init__(*args, **kwargs)
        self.section = section
        self.fields["payer"].queryset = Payer.objects.filter(
            organisation=section.establishment.organisation).order_by("name")

    def clean_invoice(self):
        number = self.cleaned_data["invoice"].strip()
        if not number:
            return None
        invoice = Invoice.objects.filter(section=self.section, number__iexact=number).first()
        if invoice is None:
            raise forms.ValidationError(_("Facture inconnue dans la section %(s)s : %(n)s.") % {
                "s": self.section.alias, "n": number})
        return invoice

    def clean_resident(self):
        ref = self.cleaned_data["resident"].strip()
        if not ref:
            return None
        resident = Resident.objects.filter(organisation=self.section.establishment.organisation, external_ref=ref,
                                           stays__section=self.section).distinct().first()
        if resident is None:
            raise forms.ValidationError(_("Aucun résident de la section %(s)s n'a la référence %(r)s.") % {
                "s": self.section.alias, "r": ref})
        return resident

    def debtor(self) -> Debtor | None:
        data = self.cleaned_data
        if data.get("payer"):
            return Debtor(self.section.pk, Invoice.DebtorKind.PAYER, payer_id=data["payer"].pk)
        resident = data.get("resident")
        if resident is None:
            return None
        latest = (Invoice.objects.filter(section=self.section, resident=resident, kind__in=(
            Invoice.Kind.INVOICE, Invoice.Kind.RAPPEL)).exclude(status=Invoice.Status.DRAFT)
            .exclude(debtor_kind=Invoice.DebtorKind.PAYER).order_by("issue_date", "pk").last())
        if latest is not None:
            return Debtor.of(latest)
        relative = Relative.objects.filter(resident=resident, is_payer=True).order_by("pk").first()
        if relative is not None:
            return Debtor(self.section.pk, Invoice.DebtorKind.RELATIVE, resident_id=resident.pk, relative_id=relative.pk)
        return Debtor(self.section.pk, Invoice.DebtorKind.RESIDENT, resident_id=resident.pk)

    def clean(self):
        data = super().clean()
        if self.errors:
            return data
        chosen = [k for k in ("invoice", "resident", "payer") if data.get(k)]
        if "ignore" in self.data:
            if chosen:
                raise forms.ValidationError(_("Pour écarter la ligne, ne choisissez ni facture ni débiteur."))
        elif len(chosen) != 1:
            raise forms.ValidationError(_("Indiquez une et une seule des zones : facture, résident ou payeur."))
        return data


class StatementImportView(SectionMixin, TemplateView):
    template_name = "imports/bank_statement.html"
    required_role = Role.MANAGER
    write_view = True

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        ctx.setdefault("form", StatementUploadForm())
        ctx["runs"] = ImportRun.objects.filter(section=self.section, kind=ImportRun.Kind.BANK_STATEMENT)[:10]
        ctx["pending_count"] = service.pending_entries(section=self.section).count()
        return ctx

    def post(self, request, *args, **kwargs):
        form = StatementUploadForm(request.POST, request.FILES)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form), status=400)
        upload = form.cleaned_data["file"]
        data = upload.read()
        if len(data) > service.JOB_THRESHOLD_BYTES:
            run = service.statement_run_start(section=self.section, data=data, name=upload.name, user=request.user,
                                              dry_run=form.cleaned_data["dry_run"])
            return self.render_to_response(self.get_context_data(run=run, job=run.job), status=202)
        try:
            run = service.statement_import_apply(section=self.section, data=data, name=upload.name, user=request.user,
                                                 dry_run=form.cleaned_data["dry_run"])
        except service.StatementImportError as exc:
            return self.render_to_response(self.get_context_data(form=form, run=exc.run, failed=str(exc)), status=400)
        return self.render_to_response(self.get_context_data(run=run))


class StatementMatchView(SectionMixin, TemplateView):
    """The lines waiting for a clerk; POST matches or sets aside one line (*facturation*)."""

    template_name = "imports/bank_statement_match.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        failed = kwargs.get("failed_form")
        rows = []
        for entry in service.pending_entries(section=self.section).select_related("run"):
            form = failed if failed is not None and failed.data.get("entry") == str(entry.pk) else \
                EntryMatchForm(section=self.section, initial={"entry": entry.pk}, prefix=None)
            rows.append((entry, form))
        ctx["rows"] = rows
        if failed is not None and not any(form is failed for _e, form in rows):
            ctx["failed_errors"] = [m for errors in failed.errors.values() for m in errors]
        ctx["done"] = (BankStatementEntry.objects.filter(section=self.section)
                       .exclude(status=BankStatementEntry.Status.PENDING)
                       .select_related("payment", "processed_by").order_by("-processed_at", "-pk")[:30])
        return ctx

    def post(self, request, *args, **kwargs):
        form = EntryMatchForm(request.POST, section=self.section)
        entry = None
        if form.is_valid():
            entry = get_object_or_404(BankStatementEntry, pk=form.cleaned_data["entry"], section=self.section)
            try:
                if "ignore" in request.POST:
                    service.entry_ignore(entry=entry, reason=form.cleaned_data["reason"], user=request.user)
                    messages.success(request, _("Ligne écartée."))
                else:
                    service.entry_match(entry=entry, invoice=form.cleaned_data.get("invoice"), debtor=form.debtor(),
                                        user=request.user)
                    messages.success(request, _("Ligne rapprochée : %(amount)s €.") % {"amount": entry.amount})
            except ValidationError as exc:
                attach_errors(exc, form)
            else:
                return redirect("imports:bank-statement-match", alias=self.section.alias)
        elif form.data.get("entry", "").isdigit():
            get_object_or_404(BankStatementEntry, pk=form.data["entry"], section=self.section)
        return self.render_to_response(self.get_context_data(failed_form=form), status=400)


urlpatterns = [
    path("releves/", StatementImportView.as_view(), name="bank-statement"),
    path("releves/a-rapprocher/", StatementMatchView.as_view(), name="bank-statement-match"),
]
