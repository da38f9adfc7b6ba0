"""Scoped reads of billing data. ``section`` always comes from ``SectionMixin`` (already checked
against the user's grants in structures.access), so filtering by it is the scoping."""
from __future__ import annotations

from decimal import Decimal

from django.db.models import QuerySet
from django.http import Http404
from django.utils.translation import gettext as _

from .models import BillingPeriod, Invoice, Payment, PaymentBatch


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


# ---------------------------------------------------------------- payments and accounts

def payment_get(*, section, pk: int):
    try:
        return Payment.objects.select_related("resident", "relative", "payer", "invoice", "entered_by",
                                              "cancelled_by").get(pk=pk, section=section)
    except Payment.DoesNotExist as exc:
        raise Http404("Règlement introuvable dans cette section.") from exc


def invoice_allocations(invoice: Invoice):
    """The entries on an invoice (payments and credit notes, reversals included), oldest first."""
    return invoice.allocations.select_related("payment", "credit_note").order_by("created_at", "pk")


def payment_debtor_label(payment) -> str:
    if payment.debtor_kind == Invoice.DebtorKind.PAYER and payment.payer:
        return payment.payer.name
    if payment.debtor_kind == Invoice.DebtorKind.RELATIVE and payment.relative:
        return str(payment.relative)
    return payment.resident.full_name if payment.resident else ""


ACCOUNT_DOCUMENT_FIELDS = ("pk", "number", "kind", "issue_date", "total", "status", "section_id", "debtor_kind",
                           "resident_id", "relative_id", "payer_id")


def account_entries(debtor) -> list[dict]:
    """The debtor's account in date order with a running balance (positive: owed; negative: credit):
    invoices, credit notes, payments, refunds, and the cancellation of a payment as its own line.
    Two queries whatever the size of the account."""
    documents = (Invoice.objects.filter(debtor.q()).exclude(status=Invoice.Status.DRAFT)
                 .only(*ACCOUNT_DOCUMENT_FIELDS))
    return _account_rows(documents, Payment.objects.filter(debtor.q()))


def resident_accounts(*, section, resident) -> dict:
    """The entries of every account of ``resident`` in ``section`` — their own and each paying
    relative's — keyed by ``Debtor``, in two queries whatever the number of accounts and entries
    (the *Compte* tab)."""
    from .services.payments import Debtor

    debtor_kinds = (Invoice.DebtorKind.RESIDENT, Invoice.DebtorKind.RELATIVE)
    documents, payments = {}, {}
    for doc in (Invoice.objects.filter(section=section, resident=resident, debtor_kind__in=debtor_kinds)
                .exclude(status=Invoice.Status.DRAFT).only(*ACCOUNT_DOCUMENT_FIELDS)):
        documents.setdefault(Debtor.of(doc), []).append(doc)
    for p in Payment.objects.filter(section=section, resident=resident, debtor_kind__in=debtor_kinds):
        payments.setdefault(Debtor.of(p), []).append(p)
    return {debtor: _account_rows(documents.get(debtor, []), payments.get(debtor, []))
            for debtor in documents.keys() | payments.keys()}


def _account_rows(documents, payments) -> list[dict]:
    rows = []
    for doc in documents:
        is_credit = doc.kind == Invoice.Kind.CREDIT_NOTE
        rows.append({"date": doc.issue_date, "order": (0, doc.pk), "kind": "credit_note" if is_credit else "invoice",
                     "label": doc.get_kind_display(), "document": doc, "reference": doc.number,
                     "debit": doc.total if not is_credit else None, "credit": -doc.total if is_credit else None})
    for p in payments:
        is_refund = p.kind == Payment.Kind.REFUND
        label = f"{p.get_kind_display()} {p.get_mode_display().lower()}"
        rows.append({"date": p.date, "order": (1, p.pk), "kind": p.kind, "label": label, "payment": p,
                     "reference": p.reference, "debit": p.amount if is_refund else None,
                     "credit": None if is_refund else p.amount, "cancelled": p.is_cancelled})
        if p.cancelled_at:
            rows.append({"date": p.cancelled_at.date(), "order": (2, p.pk), "kind": "cancellation",
                         "label": _("Annulation : %(reason)s") % {"reason": p.cancel_reason}, "payment": p, "reference": p.reference,
                         "debit": None if is_refund else p.amount, "credit": p.amount if is_refund else None})
    rows.sort(key=lambda r: (r["date"], r["order"]))
    balance = Decimal("0.00")
    for row in rows:
        balance += (row["debit"] or 0) - (row["credit"] or 0)
        row["balance"] = balance
    return rows


def payment_batch_get(*, section, pk: int):
    try:
        return PaymentBatch.objects.select_related("section__establishment").get(pk=pk, section=section)
    except PaymentBatch.DoesNotExist as exc:
        raise Http404("Remise introuvable dans cette section.") from exc
