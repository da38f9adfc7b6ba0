"""Scoped reads of billing data. ``section`` always comes from ``SectionMixin`` (already checked
against the user's grants in structures.access), so filtering by it is the scoping."""
from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from .models import BillingPeriod, Invoice


def periods_of(*, section) -> QuerySet[BillingPeriod]:
    return BillingPeriod.objects.filter(section=section).order_by("-start")


def period_get(*, section, pk: int) -> BillingPeriod:
    try:
        return BillingPeriod.objects.select_related("section__establishment").get(pk=pk, section=section)
    except BillingPeriod.DoesNotExist as exc:
        raise Http404("Période introuvable dans cette section.") from exc


def invoices_of(*, section) -> QuerySet[Invoice]:
    return Invoice.objects.filter(section=section).select_related(
        "resident", "relative", "payer", "payer_group", "period", "establishment")


def invoice_get(*, section, pk: int) -> Invoice:
    try:
        return invoices_of(section=section).get(pk=pk)
    except Invoice.DoesNotExist as exc:
        raise Http404("Facture introuvable dans cette section.") from exc


def debtor_label(invoice: Invoice) -> str:
    if invoice.debtor_name:
        return invoice.debtor_name
    if invoice.debtor_kind == Invoice.DebtorKind.PAYER and invoice.payer:
        return invoice.payer.name + (f" — {invoice.payer_group.label}" if invoice.payer_group else "")
    if invoice.debtor_kind == Invoice.DebtorKind.RELATIVE and invoice.relative:
        return str(invoice.relative)
    return invoice.resident.full_name if invoice.resident else ""
