"""*Soldes à rembourser* (readers) and the refund of a credit (*facturation* role). The resident
comes through the section of the URL (another section's: 404); a relative must be theirs (404)."""
from __future__ import annotations

from decimal import Decimal

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect
from django.urls import path
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.generic import TemplateView

from core.forms import attach_errors
from residents import selectors as resident_selectors
from structures.access import Role
from structures.views_mixins import SectionMixin

from ..models import Payment
from ..services import payments as payment_services
from ..services import refunds as services


class RefundsDueView(SectionMixin, TemplateView):
    template_name = "billing/refunds_due.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        rows = services.refunds_due(section=self.section)
        ctx.update(rows=rows, total=sum((r.credit for r in rows), payment_services.ZERO))
        return ctx


class RefundForm(forms.Form):
    on = forms.DateField(label=gettext_lazy("Date"), widget=forms.DateInput(attrs={"type": "date"}))
    amount = forms.DecimalField(label=gettext_lazy("Montant"), max_digits=12, decimal_places=2,
                                min_value=Decimal("0.01"), localize=True)
    mode = forms.ChoiceField(label=gettext_lazy("Mode"), choices=[(m, Payment.Mode(m).label)
                                                                  for m in services.REFUND_MODES])
    reference = forms.CharField(label=gettext_lazy("N° de chèque ou libellé du virement"), required=False,
                                max_length=80)
    comment = forms.CharField(label=gettext_lazy("Commentaire"), required=False, max_length=250)


class RefundView(SectionMixin, TemplateView):
    template_name = "billing/refund.html"
    required_role = Role.CLERK
    write_view = True

    @cached_property
    def resident(self):
        return resident_selectors.resident_get(self.request.user, section=self.section, pk=self.kwargs["pk"])

    @cached_property
    def debtor(self):
        raw = self.request.GET.get("proche") or self.request.POST.get("proche") or ""
        if raw and not raw.isdigit():
            raise Http404("Proche introuvable.")
        try:
            return services.account_debtor(section=self.section, resident=self.resident,
                                           relative_id=int(raw) if raw else None)
        except ValidationError as exc:
            raise Http404("Proche introuvable.") from exc

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        credit = payment_services.debtor_credit(self.debtor)
        relative = self.resident.relatives.filter(pk=self.debtor.relative_id).first() if self.debtor.relative_id \
            else None
        ctx.update(resident=self.resident, relative=relative, credit=credit,
                   form=kwargs.get("form") or RefundForm(initial={"on": timezone.localdate(), "amount": credit,
                                                                  "mode": Payment.Mode.CHEQUE}))
        return ctx

    def post(self, request, *args, **kwargs):
        form = RefundForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.credit_refund(debtor=self.debtor, on=data["on"], amount=data["amount"], mode=data["mode"],
                                       reference=data["reference"], comment=data["comment"], user=request.user)
            except ValidationError as exc:
                attach_errors(exc, form)
            else:
                messages.success(request, _("Remboursement de %(amount)s € enregistré.") % {"amount": data["amount"]})
                return redirect("billing:resident-account", alias=self.section.alias, pk=self.resident.pk)
        return self.render_to_response(self.get_context_data(form=form), status=400)


urlpatterns = [
    path("soldes-a-rembourser/", RefundsDueView.as_view(), name="refunds-due"),
    path("residents/<int:pk>/compte/rembourser/", RefundView.as_view(), name="refund"),
]
