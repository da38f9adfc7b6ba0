"""Payments by payers (a département, a pension fund…): one payment spread over the open invoices of
that payer in a section — its statements for many beneficiaries.

« Associer automatiquement » (``payer_auto_match``) proposes the allocation, the clerk confirms or
unticks before saving (``billing.services.payments.payment_record_allocated``):

1. among the payer's open invoices of the period (invoices overlapping the dates given, all when
   none), an invoice whose balance **equals the amount** exactly takes it all (the oldest due if
   several);
2. otherwise, when the balances of the period's invoices add up exactly to the amount, all of them;
3. otherwise oldest due first, each invoice paid in full while the amount lasts, the last one in
   part; what is left stays as the payer's credit.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal


from core.money import ZERO

from ..models import Invoice, InvoiceLine
from .payments import Debtor, unpaid_q


@dataclass
class OpenInvoice:
    invoice: Invoice
    balance: Decimal
    beneficiaries: list[str]


def payer_debtor(*, section, payer) -> Debtor:
    return Debtor(section.pk, Invoice.DebtorKind.PAYER, payer_id=payer.pk)


def payer_open_invoices(*, section, payer, period_from: date | None = None,
                        period_to: date | None = None, statement=None) -> list[OpenInvoice]:
    """The payer's issued invoices of the section with a balance, oldest due first, with the names of
    their beneficiaries (two queries); only those of ``statement`` when one is given (a payment that
    names its statement is allocated to the statement's invoices)."""
    qs = Invoice.objects.filter(payer_debtor(section=section, payer=payer).q() & unpaid_q())
    if statement is not None:
        qs = qs.filter(statement_lines__statement=statement).distinct()
    if period_from:
        qs = qs.filter(date_to__gte=period_from)
    if period_to:
        qs = qs.filter(date_from__lte=period_to)
    invoices = list(qs.order_by("due_date", "issue_date", "number", "pk"))
    names: dict[int, list[str]] = {}
    for invoice_id, last, first in (InvoiceLine.objects.filter(invoice__in=[i.pk for i in invoices])
                                    .values_list("invoice_id", "resident__last_name", "resident__first_name")
                                    .order_by("invoice_id", "resident__last_name", "resident__first_name")
                                    .distinct()):
        label = f"{last} {first}".strip()
        if label and label not in names.setdefault(invoice_id, []):
            names[invoice_id].append(label)
    return [OpenInvoice(i, i.total - i.paid_amount, names.get(i.pk) or ([i.resident_name] if i.resident_name else []))
            for i in invoices]


def payer_auto_match(open_invoices: list[OpenInvoice], amount: Decimal) -> dict[int, Decimal]:
    """Proposed allocation ``{invoice id: amount}`` (see the module's rules); pure, no query."""
    if amount <= 0 or not open_invoices:
        return {}
    exact = [o for o in open_invoices if o.balance == amount]
    if exact:
        return {exact[0].invoice.pk: amount}
    if sum((o.balance for o in open_invoices), ZERO) == amount:
        return {o.invoice.pk: o.balance for o in open_invoices}
    left, proposal = amount, {}
    for o in sorted(open_invoices, key=lambda o: (o.invoice.due_date or date.max, o.invoice.issue_date or date.max,
                                                  o.invoice.number, o.invoice.pk)):
        if left <= 0:
            break
        part = min(left, o.balance)
        proposal[o.invoice.pk] = part
        left -= part
    return proposal
