"""Payment forms and the payment part of the invoice page (shared by ``periods`` and ``payments`` views)."""
from __future__ import annotations

from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from .. import selectors
from ..models import Invoice, Payment
from ..services import payments as services

DATE_WIDGET = forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"})


class PaymentForm(forms.Form):
    on = forms.DateField(label=gettext_lazy("date"), widget=DATE_WIDGET)
    amount = forms.DecimalField(label=gettext_lazy("montant"), max_digits=12, decimal_places=2, min_value=Decimal("0.01"), localize=True,
                                widget=forms.TextInput(attrs={"inputmode": "decimal", "size": 10}))
    mode = forms.ChoiceField(label=gettext_lazy("mode"), choices=Payment.Mode.choices)
    reference = forms.CharField(label=gettext_lazy("référence"), max_length=80, required=False,
                                help_text=gettext_lazy("N° de chèque, libellé du virement…"))
    bank = forms.CharField(label=gettext_lazy("banque"), max_length=80, required=False)
    drawer = forms.CharField(label=gettext_lazy("tireur"), max_length=120, required=False)
    comment = forms.CharField(label=gettext_lazy("commentaire"), max_length=250, required=False)


class CancelForm(forms.Form):
    reason = forms.CharField(label=gettext_lazy("motif de l'annulation"), max_length=250)


class ReallocateForm(forms.Form):
    """One amount per open invoice of the debtor (this section only): field ``invoice_<pk>``."""

    def __init__(self, *args, invoices=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.invoices = list(invoices)
        for invoice in self.invoices:
            self.fields[f"invoice_{invoice.pk}"] = forms.DecimalField(
                label=f"{invoice.number} ({invoice.due_date:%d/%m/%Y})", required=False, max_digits=12,
                decimal_places=2, min_value=Decimal("0"), localize=True, widget=forms.TextInput(attrs={"inputmode": "decimal",
                                                                                         "size": 10}))
        if self.data:
            known = {f"invoice_{i.pk}" for i in self.invoices}
            foreign = [k for k in self.data if k.startswith("invoice_") and k not in known]
            if foreign:
                self.foreign = foreign

    def clean(self):
        data = super().clean()
        if getattr(self, "foreign", None):
            raise ValidationError(_("Facture inconnue pour ce débiteur : %(ids)s") % {
                "ids": ", ".join(k.removeprefix("invoice_") for k in self.foreign)})
        return data

    def amounts(self) -> dict[int, Decimal]:
        return {invoice.pk: self.cleaned_data[f"invoice_{invoice.pk}"] for invoice in self.invoices
                if self.cleaned_data.get(f"invoice_{invoice.pk}")}


def invoice_payment_context(invoice: Invoice, *, can_write: bool, payment_form=None) -> dict:
    """What the invoice page shows about payments (included by ``InvoiceDetailView``)."""
    state = services.invoice_payment_state(invoice)
    if invoice.kind == Invoice.Kind.CREDIT_NOTE and invoice.status == Invoice.Status.ISSUED:
        allocations = list(invoice.credit_allocations.select_related("invoice").order_by("created_at", "pk"))
        used = sum((a.amount for a in allocations), Decimal("0.00"))
        return {"credit_note_allocations": allocations, "credit_note_left": -invoice.total - used}
    ctx = {"payment_state": state, "payment_state_label": services.PaymentState.LABELS.get(state, ""),
           "allocations": selectors.invoice_allocations(invoice), "debtor_credit": None}
    if state in (services.PaymentState.TO_PAY, services.PaymentState.PARTIAL):
        ctx["debtor_credit"] = services.debtor_credit(services.Debtor.of(invoice))
        if can_write:
            mode = invoice.payment_mode if invoice.payment_mode in Payment.Mode.values else Payment.Mode.CHEQUE
            ctx["payment_form"] = payment_form or PaymentForm(initial={
                "on": timezone.localdate(), "amount": invoice.total - invoice.paid_amount, "mode": mode,
                "drawer": invoice.debtor_name})
    return ctx
