"""Payments in the browser: entering a payment on an invoice, applying a credit, a payment's page
(cancel with a reason, manual re-allocation), and the *Compte* tab of the resident file.

Every object comes from ``billing.selectors`` (or ``residents.selectors``) with the section of the
URL: another section's invoice, payment or resident is a 404; writing needs the *facturation* role
(403). Re-allocation choices are the debtor's invoices of this section only."""
from __future__ import annotations

from datetime import date

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import path
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import TemplateView

from core.forms import attach_errors
from core.money import round_money
from residents import selectors as resident_selectors
from residents.views import TABS
from structures.access import Role
from structures.views_mixins import SectionMixin

from .. import selectors
from ..models import Invoice, Payment
from ..services import deposit_slip
from ..services.panels import panels
from ..services import payments as services
from .payment_forms import CancelForm, PaymentForm, ReallocateForm
from .periods import InvoiceDetailView

class InvoicePaymentCreateView(InvoiceDetailView):
    """POST: enter a payment naming this invoice (allocated here first, then oldest due first);
    an invalid form shows the invoice page again with its errors."""

    required_role = Role.CLERK
    http_method_names = ["post"]

    def post(self, request, alias, pk):
        invoice = self.get_invoice()
        form = PaymentForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                payment = services.payment_record(
                    section=self.section, invoice=invoice, on=data["on"], amount=data["amount"], mode=data["mode"],
                    reference=data["reference"], bank=data["bank"], drawer=data["drawer"], comment=data["comment"],
                    user=request.user)
            except ValidationError as exc:
                attach_errors(exc, form)
            else:
                messages.success(request, _("Règlement de %(amount)s € enregistré.") % {"amount": payment.amount})
                return redirect("billing:invoice-detail", alias=self.section.alias, pk=invoice.pk)
        return self.render_to_response(self.get_context_data(payment_form=form), status=400)


class CreditApplyView(SectionMixin, TemplateView):
    """POST: put the debtor's credit on this invoice."""

    required_role = Role.CLERK
    http_method_names = ["post"]

    def post(self, request, alias, pk):
        invoice = selectors.invoice_get(section=self.section, pk=pk)
        try:
            applied = services.credit_apply(invoice=invoice, user=request.user)
        except ValidationError as exc:
            messages.error(request, " ".join(exc.messages))
        else:
            messages.success(request, _("Crédit imputé : %(amount)s €.") % {"amount": applied})
        return redirect("billing:invoice-detail", alias=self.section.alias, pk=invoice.pk)


class PaymentDetailView(SectionMixin, TemplateView):
    """A payment: its allocations; cancel it (reason) or re-allocate it (POST, *facturation*)."""

    template_name = "billing/payment_detail.html"

    @cached_property
    def payment(self) -> Payment:
        return selectors.payment_get(section=self.section, pk=self.kwargs["pk"])

    def open_invoices(self):
        debtor = services.Debtor.of(self.payment)
        allocated_here = self.payment.allocations.values("invoice_id")
        return (Invoice.objects.filter(debtor.q())
                .filter(services.unpaid_q() | Q(pk__in=allocated_here))
                .order_by("due_date", "number"))

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        payment = self.payment
        ctx.update(payment=payment, debtor=selectors.payment_debtor_label(payment),
                   allocations=payment.allocations.select_related("invoice").order_by("created_at", "pk"),
                   allocated=services.payment_allocated(payment))
        if self.can_write and not payment.is_cancelled:
            ctx["cancel_form"] = kwargs.get("cancel_form") or CancelForm()
            if payment.kind == Payment.Kind.PAYMENT:
                ctx["reallocate_form"] = kwargs.get("reallocate_form") or ReallocateForm(invoices=self.open_invoices())
        return ctx

    def post(self, request, *args, **kwargs):
        payment = self.payment
        if "reason" in request.POST:
            form = CancelForm(request.POST)
            if form.is_valid():
                try:
                    services.payment_cancel(payment=payment, reason=form.cleaned_data["reason"], user=request.user)
                except ValidationError as exc:
                    attach_errors(exc, form)
                else:
                    messages.success(request, _("Règlement annulé."))
                    return redirect("billing:payment-detail", alias=self.section.alias, pk=payment.pk)
            return self.render_to_response(self.get_context_data(cancel_form=form), status=400)
        form = ReallocateForm(request.POST, invoices=self.open_invoices())
        if form.is_valid():
            try:
                services.payment_reallocate(payment=payment, amounts=form.amounts(), user=request.user)
            except ValidationError as exc:
                form.add_error(None, exc.messages)
            else:
                messages.success(request, _("Règlement réimputé."))
                return redirect("billing:payment-detail", alias=self.section.alias, pk=payment.pk)
        return self.render_to_response(self.get_context_data(reallocate_form=form), status=400)


class ResidentAccountView(SectionMixin, TemplateView):
    """The *Compte* tab of the resident file: one account per debtor (the resident, each paying
    relative), entries in date order with a running balance."""

    template_name = "billing/resident_account.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        resident = resident_selectors.resident_get(self.request.user, section=self.section, pk=self.kwargs["pk"])
        debtors = [(resident.full_name, services.Debtor(self.section.pk, Invoice.DebtorKind.RESIDENT,
                                                        resident_id=resident.pk))]
        # Every account's entries in two queries; the relatives who owe or paid something, and the paying ones.
        entries_of = selectors.resident_accounts(section=self.section, resident=resident)
        relative_ids = {d.relative_id for d in entries_of if d.kind == Invoice.DebtorKind.RELATIVE}
        for relative in resident.relatives.filter(Q(pk__in=relative_ids) | Q(is_payer=True)):
            debtors.append((f"{relative} ({_('proche payeur')})", services.Debtor(
                self.section.pk, Invoice.DebtorKind.RELATIVE, resident_id=resident.pk, relative_id=relative.pk)))
        accounts = []
        for label, debtor in debtors:
            entries = entries_of.get(debtor, [])
            accounts.append({"label": label, "entries": entries, "relative_id": debtor.relative_id or "",
                             "balance": entries[-1]["balance"] if entries else round_money(0)})
        today = timezone.localdate()
        ctx.update(resident=resident, tabs=TABS, tab="account", accounts=accounts,
                   age=resident.age_on(today), statement_start=date(today.year, 1, 1), statement_end=today,
                   extra_panels=panels("resident_account", section=self.section, resident=resident,
                                         user=self.request.user))
        return ctx


urlpatterns = [
    path("factures/<int:pk>/reglements/", InvoicePaymentCreateView.as_view(), name="invoice-payment"),
    path("factures/<int:pk>/imputer-credit/", CreditApplyView.as_view(), name="invoice-credit-apply"),
    path("reglements/<int:pk>/", PaymentDetailView.as_view(), name="payment-detail"),
    path("residents/<int:pk>/compte/", ResidentAccountView.as_view(), name="resident-account"),
]


# ---------------------------------------------------------------- fast keying of a batch

BATCH_ROWS = 10
ROW_FIELDS = ("query", "invoice", "amount", "reference", "bank", "drawer")
BATCH_MODES = [(m, label) for m, label in Payment.Mode.choices
               if m in (Payment.Mode.CHEQUE, Payment.Mode.TRANSFER, Payment.Mode.CASH)]


def _row_values(data, index: int) -> dict:
    return {name: (data.get(f"line-{index}-{name}") or "").strip() for name in ROW_FIELDS}


def _row_context(section, index: int, values: dict, *, looked_up: bool = False) -> dict:
    """A keying row; after a lookup: the matching invoice (its balance and debtor proposed) or the candidates."""
    row = {"index": index, "number": index + 1, "values": values, "invoice": None, "candidates": [],
           "message": ""}
    if values.get("invoice"):
        row["invoice"] = selectors.invoices_of(section=section).filter(pk=values["invoice"]).first() if \
            values["invoice"].isdigit() else None
    if looked_up:
        found = services.invoice_lookup(section=section, query=values.get("query", ""))
        if len(found) == 1:
            invoice = found[0]
            row["invoice"] = invoice
            values.update(invoice=str(invoice.pk), amount=f"{invoice.total - invoice.paid_amount:.2f}".replace(".", ","),
                          query=invoice.number, drawer=values.get("drawer") or invoice.debtor_name)
        else:
            row["invoice"] = None
            values["invoice"] = ""
            row["candidates"] = found
            row["message"] = (_("Plusieurs factures ouvertes : choisissez.") if found else
                              _("Aucune facture ouverte ne correspond à « %(q)s ».") % {"q": values.get("query", "")})
    return row


class PaymentBatchView(SectionMixin, TemplateView):
    """Fast keying of cheques or transfers: one line per payment, invoice number or name looked up
    (htmx), balance proposed, Enter to the next field; saved all or nothing as one batch."""

    template_name = "billing/payment_batch.html"
    write_view = True
    required_role = Role.CLERK

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        rows = kwargs.get("rows") or [_row_context(self.section, i, {n: "" for n in ROW_FIELDS})
                                      for i in range(BATCH_ROWS)]
        ctx.update(rows=rows, modes=BATCH_MODES, errors=kwargs.get("errors", []),
                   on=kwargs.get("on") or timezone.localdate().isoformat(),
                   mode=kwargs.get("mode") or Payment.Mode.CHEQUE)
        return ctx

    def post(self, request, *args, **kwargs):
        data = request.POST
        count = min(int(data.get("rows") or BATCH_ROWS) if (data.get("rows") or "").isdigit() else BATCH_ROWS, 200)
        rows, lines, errors = [], [], []
        on_raw, mode = data.get("on", ""), data.get("mode", "")
        try:
            on = date.fromisoformat(on_raw)
        except ValueError:
            on = None
            errors.append(_("Date de remise invalide : « %(value)s ».") % {"value": on_raw})
        wanted = [_row_values(data, i)["invoice"] for i in range(count)]
        # Only this section's invoices can be chosen: another id is "unknown" below.
        invoices = {str(i.pk): i for i in selectors.invoices_of(section=self.section).filter(
            pk__in=[v for v in wanted if v.isdigit()])}
        for index in range(count):
            values = _row_values(data, index)
            rows.append(_row_context(self.section, index, values))
            if not (values["invoice"] or values["amount"] or values["reference"] or values["query"]):
                continue
            invoice = invoices.get(values["invoice"])
            if invoice is None:
                errors.append(_("Ligne %(row)s : facture inconnue dans cette section (« %(value)s »).") % {
                    "row": index + 1, "value": values["query"] or values["invoice"]})
                continue
            try:
                amount = round_money(values["amount"])
            except ValueError:
                errors.append(_("Ligne %(row)s : montant invalide « %(value)s ».") % {"row": index + 1,
                                                                                     "value": values["amount"]})
                continue
            lines.append(services.BatchLine(row=index + 1, invoice=invoice, amount=amount,
                                            reference=values["reference"], bank=values["bank"],
                                            drawer=values["drawer"]))
        if not errors and on is not None:
            try:
                batch = services.payment_batch_record(section=self.section, on=on, mode=mode, lines=lines,
                                                      user=request.user)
            except ValidationError as exc:
                errors.extend(exc.messages)
            else:
                messages.success(request, _("Remise %(ref)s enregistrée : %(count)s règlement(s).") % {
                    "ref": batch.reference, "count": len(lines)})
                return redirect("billing:payment-batch-detail", alias=self.section.alias, pk=batch.pk)
        return self.render_to_response(self.get_context_data(rows=rows, errors=errors, on=on_raw, mode=mode),
                                       status=400)


class PaymentBatchLookupView(SectionMixin, TemplateView):
    """htmx: the keying row ``row`` after looking up what was typed in it."""

    template_name = "billing/_batch_row.html"
    write_view = True
    required_role = Role.CLERK

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        raw = self.request.GET.get("row", "0")
        index = int(raw) if raw.isdigit() else 0
        values = _row_values(self.request.GET, index)
        pick = self.request.GET.get("pick", "")
        if pick:
            values["query"] = pick
        ctx["row"] = _row_context(self.section, index, values, looked_up=True)
        ctx["focus"] = True
        return ctx


class PaymentBatchDetailView(SectionMixin, TemplateView):
    template_name = "billing/payment_batch_detail.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        batch = selectors.payment_batch_get(section=self.section, pk=self.kwargs["pk"])
        payments, total = services.batch_deposit_rows(batch)
        ctx.update(batch=batch, payments=payments, total=total,
                   mode_label=Payment.Mode(batch.mode).label)
        return ctx


class PaymentBatchPdfView(SectionMixin, View):
    required_role = Role.READER

    def get(self, request, alias, pk):
        batch = selectors.payment_batch_get(section=self.section, pk=pk)
        response = HttpResponse(deposit_slip.deposit_slip_pdf(batch), content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="bordereau-{batch.reference}.pdf"'
        response["Cache-Control"] = "private, no-store"
        return response


urlpatterns += [
    path("reglements/saisie/", PaymentBatchView.as_view(), name="payment-batch"),
    path("reglements/saisie/recherche/", PaymentBatchLookupView.as_view(), name="payment-batch-lookup"),
    path("reglements/remises/<int:pk>/", PaymentBatchDetailView.as_view(), name="payment-batch-detail"),
    path("reglements/remises/<int:pk>/bordereau.pdf", PaymentBatchPdfView.as_view(), name="payment-batch-pdf"),
]
