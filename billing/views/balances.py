"""*Restes à recouvrer* of a section — and of the association (every section the user may read):
aged open invoices and unallocated credits on a date, with filters (debtor kind, payment mode) and
the XLSX / CSV export. Readers may see and export."""
from __future__ import annotations

from django import forms
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.urls import path
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import TemplateView

from structures import access
from structures.access import Role
from structures.views_mixins import SectionMixin

from ..models import Invoice, Payment
from ..services import balances as services

EXPORT_TYPES = {"csv": "text/csv; charset=utf-8",
                "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


class BalancesFilterForm(forms.Form):
    on = forms.DateField(label=gettext_lazy("Au"), required=False,
                         widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}))
    debtor_kind = forms.ChoiceField(label=gettext_lazy("Débiteur"), required=False,
                                    choices=[("", gettext_lazy("Tous"))] + list(Invoice.DebtorKind.choices))
    payment_mode = forms.ChoiceField(label=gettext_lazy("Mode de règlement"), required=False,
                                     choices=[("", gettext_lazy("Tous"))] + list(Payment.Mode.choices))

    def filters(self) -> dict:
        self.is_valid()
        data = getattr(self, "cleaned_data", {})
        return {"on": data.get("on") or timezone.localdate(), "debtor_kind": data.get("debtor_kind") or None,
                "payment_mode": data.get("payment_mode") or None}


FILTERS = ("on", "debtor_kind", "payment_mode")


class BalancesFilterMixin:
    @cached_property
    def filter_form(self) -> BalancesFilterForm:
        return BalancesFilterForm(data={k: self.request.GET.get(k, "") for k in FILTERS})

    @property
    def query(self) -> str:
        """The filters, to carry over to the export links."""
        return urlencode({k: v for k, v in self.request.GET.items() if k in FILTERS})

    def export_response(self, fmt: str, *, section=None, sections=None) -> HttpResponse:
        if fmt not in EXPORT_TYPES:
            raise Http404("Format d'export inconnu.")
        filters = self.filter_form.filters()
        response = HttpResponse(services.balances_export(section=section, sections=sections, fmt=fmt, **filters),
                                content_type=EXPORT_TYPES[fmt])
        response["Content-Disposition"] = (
            f'attachment; filename="{services.balances_filename(section, filters["on"], fmt)}"')
        return response


class BalancesMixin(BalancesFilterMixin, SectionMixin):
    required_role = Role.READER


class BalancesView(BalancesMixin, TemplateView):
    template_name = "billing/balances.html"

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        filters = self.filter_form.filters()
        rows = services.balances_rows(section=self.section, **filters)
        ctx.update(form=self.filter_form, rows=rows, summary=services.balances_summary(rows), on=filters["on"],
                   query=self.query)
        return ctx


class BalancesExportView(BalancesMixin, View):
    def get(self, request, alias, fmt):
        return self.export_response(fmt, section=self.section)


class AssociationBalancesMixin(BalancesFilterMixin, LoginRequiredMixin):
    """The *restes à recouvrer* of every section the user may read (``access.sections_for``, the one
    scoping path): another section's debtors never appear."""

    @cached_property
    def sections(self) -> list:
        return list(access.sections_for(self.request.user).order_by("alias"))


class AssociationBalancesView(AssociationBalancesMixin, TemplateView):
    """Totals per age bucket for the association and per section, and one line per debtor with a
    balance (paginated); the export gives every open invoice and credit with its section."""

    template_name = "billing/balances_association.html"
    per_page = 100

    def get_context_data(self, **kwargs):
        ctx = super().get_context_data(**kwargs)
        filters = self.filter_form.filters()
        rows = services.balances_rows_for_sections(sections=self.sections, **filters)
        debtors = Paginator(services.balances_by_debtor(rows), self.per_page).get_page(self.request.GET.get("page"))
        ctx.update(form=self.filter_form, sections=self.sections, summary=services.balances_summary(rows),
                   by_section=services.balances_by_section(rows), debtors=debtors, buckets=services.BUCKETS,
                   on=filters["on"], query=self.query)
        return ctx


class AssociationBalancesExportView(AssociationBalancesMixin, View):
    def get(self, request, fmt):
        return self.export_response(fmt, sections=self.sections)


# Not under a section: included by config/urls.py at « toutes-sections/restes-a-recouvrer/ ».
association_urlpatterns = [
    path("", AssociationBalancesView.as_view(), name="association-balances"),
    path("export.<str:fmt>", AssociationBalancesExportView.as_view(), name="association-balances-export"),
]

urlpatterns = [
    path("restes-a-recouvrer/", BalancesView.as_view(), name="balances"),
    path("restes-a-recouvrer/export.<str:fmt>", BalancesExportView.as_view(), name="balances-export"),
]
