"""The *Bordereaux* tab of a payer file (billing's view, layer 3): the payer's statements and invoices in
the section of the URL with « montant réglé » / « reste à régler » computed from the allocations."""
from __future__ import annotations

from django.urls import path
from django.views.generic import TemplateView

from payers import selectors as payer_selectors
from payers.views import TABS as PAYER_TABS
from structures.views_mixins import SectionMixin

from ..models import Invoice


class PayerStatementsView(SectionMixin, TemplateView):
    template_name = "billing/payer_statements.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        payer = payer_selectors.payer_get(section=self.section, pk=self.kwargs["pk"])
        invoices = list(Invoice.objects.filter(section=self.section, payer=payer)
                        .exclude(status=Invoice.Status.DRAFT).order_by("-issue_date", "-number"))
        for invoice in invoices:
            invoice.left = invoice.total - invoice.paid_amount if invoice.kind != Invoice.Kind.CREDIT_NOTE else None
        ctx.update(payer=payer, tabs=PAYER_TABS, tab="statements", invoices=invoices)
        return ctx


urlpatterns = [
    path("payeurs/<int:pk>/bordereaux/", PayerStatementsView.as_view(), name="payer-statements"),
]
