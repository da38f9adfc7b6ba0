"""A payer's payment spread over its open invoices in the section (*facturation*).

``/s/<alias>/facturation/payeurs/<payer id>/reglement/`` (``billing:payer_payment``, linkable from a
payer's page): the payer's open invoices of the section with a checkbox and an amount each;
« Associer automatiquement » ticks and fills them (``payer_auto_match``), the clerk confirms or
unticks, « Enregistrer » records one payment allocated as shown (the rest stays as credit). The
payer must belong to the section's association (else 404) and only its open invoices of this
section are accepted, whatever is posted."""
from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count, F, Sum
from django.shortcuts import get_object_or_404, redirect
from django.urls import path
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView

from core.forms import attach_errors
from core.money import round_money
from payers.models import Payer
from structures.views_mixins import SectionMixin

from ..models import Invoice, Payment, Statement
from ..services import payer_payments as service
from ..services.payments import payment_record_allocated, unpaid_q
from .payment_forms import DATE_WIDGET


class PayerPaymentForm(forms.Form):
    on = forms.DateField(label=gettext_lazy("date"), widget=DATE_WIDGET)
    amount = forms.DecimalField(label=gettext_lazy("montant"), max_digits=12, decimal_places=2,
                                min_value=Decimal("0.01"), localize=True,
                                widget=forms.TextInput(attrs={"inputmode": "decimal", "size": 10}))
    mode = forms.ChoiceField(label=gettext_lazy("mode"), choices=Payment.Mode.choices, initial=Payment.Mode.TRANSFER)
    reference = forms.CharField(label=gettext_lazy("référence"), max_length=80, required=False)
    comment = forms.CharField(label=gettext_lazy("commentaire"), max_length=250, required=False)
    period_from = forms.DateField(label=gettext_lazy("période du"), required=False, widget=DATE_WIDGET,
                                  help_text=gettext_lazy("Pour « associer automatiquement » : factures de la période."))
    period_to = forms.DateField(label=gettext_lazy("au"), required=False, widget=DATE_WIDGET)
    statement = forms.ModelChoiceField(label=gettext_lazy("bordereau réglé"), queryset=Statement.objects.none(),
                                       required=False, help_text=gettext_lazy(
                                           "Pour « associer automatiquement » : les factures de ce bordereau."))

    def __init__(self, *args, section=None, payer=None, **kwargs):
        super().__init__(*args, **kwargs)
        if section is not None:
            self.fields["statement"].queryset = (Statement.objects.filter(
                section=section, payer=payer, status=Statement.Status.VALIDATED).order_by("-statement_date", "-number"))


class PayerPaymentListView(SectionMixin, TemplateView):
    """The payers of the association with open invoices in the section."""

    template_name = "billing/payer_payment_list.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        rows = (Invoice.objects.filter(unpaid_q(), section=self.section, debtor_kind=Invoice.DebtorKind.PAYER)
                .values("payer_id", "payer__code", "payer__name").annotate(
                    n=Count("pk"), balance=Sum(F("total") - F("paid_amount"))).order_by("payer__code"))
        ctx["rows"] = list(rows)
        return ctx


class PayerPaymentView(SectionMixin, TemplateView):
    template_name = "billing/payer_payment.html"
    write_view = True

    @cached_property
    def payer(self) -> Payer:
        return get_object_or_404(Payer, pk=self.kwargs["payer"], organisation=self.section.establishment.organisation)

    def open_invoices(self, form=None):
        period = {}
        if form is not None and form.is_valid():
            period = {"period_from": form.cleaned_data["period_from"], "period_to": form.cleaned_data["period_to"],
                      "statement": form.cleaned_data["statement"]}
        return service.payer_open_invoices(section=self.section, payer=self.payer, **period)

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        form = kwargs.get("form") or PayerPaymentForm(initial={"mode": Payment.Mode.TRANSFER}, section=self.section,
                                                      payer=self.payer)
        rows = kwargs.get("rows")
        if rows is None:
            rows = [{"open": o, "picked": False, "amount": o.balance} for o in self.open_invoices()]
        ctx.update(payer=self.payer, form=form, rows=rows, row_errors=kwargs.get("row_errors", []),
                   picked_total=sum((r["amount"] for r in rows if r["picked"] and r["amount"]), Decimal("0.00")))
        return ctx

    def post(self, request, *args, **kwargs):
        form = PayerPaymentForm(request.POST, section=self.section, payer=self.payer)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form), status=400)
        opens = self.open_invoices(form if "auto" in request.POST else None)
        if "auto" in request.POST:
            proposal = service.payer_auto_match(opens, form.cleaned_data["amount"])
            rows = [{"open": o, "picked": o.invoice.pk in proposal, "amount": proposal.get(o.invoice.pk, o.balance)}
                    for o in opens]
            return self.render_to_response(self.get_context_data(form=form, rows=rows))
        known = {o.invoice.pk: o for o in opens}
        row_errors, amounts, rows = [], {}, []
        picked_ids = [v for v in request.POST.getlist("pick")]
        for raw in picked_ids:
            if not raw.isdigit() or int(raw) not in known:
                row_errors.append(_("Facture inconnue ou déjà réglée pour ce payeur dans cette section (n° %(id)s).")
                                  % {"id": raw})
        for o in opens:
            pk = o.invoice.pk
            raw = (request.POST.get(f"amount-{pk}") or "").strip().replace(" ", "").replace(",", ".")
            picked = str(pk) in picked_ids
            try:
                value = round_money(raw) if raw else o.balance
            except (ValueError, ArithmeticError):
                row_errors.append(_("Facture %(n)s : montant invalide « %(v)s ».") % {"n": o.invoice.number, "v": raw})
                value = None
            rows.append({"open": o, "picked": picked, "amount": value})
            if picked and value is not None:
                if value <= 0:
                    row_errors.append(_("Facture %(n)s : le montant doit être positif.") % {"n": o.invoice.number})
                else:
                    amounts[pk] = value
        if not row_errors:
            data = form.cleaned_data
            try:
                payment = payment_record_allocated(
                    section=self.section, debtor=service.payer_debtor(section=self.section, payer=self.payer),
                    on=data["on"], amount=data["amount"], mode=data["mode"], amounts=amounts,
                    reference=data["reference"], comment=data["comment"], user=request.user)
            except ValidationError as exc:
                attach_errors(exc, form)
            else:
                messages.success(request, _("Règlement de %(payer)s enregistré : %(amount)s € sur %(n)s facture(s).")
                                 % {"payer": self.payer.name, "amount": payment.amount, "n": len(amounts)})
                return redirect("billing:payment-detail", alias=self.section.alias, pk=payment.pk)
        return self.render_to_response(self.get_context_data(form=form, rows=rows, row_errors=row_errors), status=400)


urlpatterns = [
    path("payeurs/reglements/", PayerPaymentListView.as_view(), name="payer_payment_list"),
    path("payeurs/<int:payer>/reglement/", PayerPaymentView.as_view(), name="payer_payment"),
]
