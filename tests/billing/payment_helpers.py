"""Small builders for payment tests: issued invoices with one line, through the real issuing service."""
from datetime import date
from decimal import Decimal

from billing.models import Invoice, InvoiceLine
from billing.services.issuing import invoices_issue
from tests.factories import RelativeFactory, ResidentFactory, StayFactory


def resident_in(section, **kwargs):
    resident = ResidentFactory(organisation=section.establishment.organisation, **kwargs)
    StayFactory(resident=resident, section=section)
    return resident


def paying_relative(resident, **kwargs):
    return RelativeFactory(resident=resident, is_payer=True, **kwargs)


def issued_invoice(section, resident, total, issued: date, *, relative=None, payer=None,
                   kind=Invoice.Kind.INVOICE) -> Invoice:
    """An issued invoice of ``total`` for the resident (or the paying ``relative``); due 15 days later."""
    invoice = Invoice.objects.create(
        section=section, establishment=section.establishment, kind=kind,
        debtor_kind=(Invoice.DebtorKind.PAYER if payer else
                     Invoice.DebtorKind.RELATIVE if relative else Invoice.DebtorKind.RESIDENT),
        resident=resident, relative=relative, payer=payer, date_from=issued.replace(day=1), date_to=issued,
        total=Decimal(total))
    InvoiceLine.objects.create(invoice=invoice, resident=resident, label="Hébergement", reason="manual",
                               date_from=invoice.date_from, date_to=issued, quantity=Decimal("1"),
                               unit_price=Decimal(total), amount=Decimal(total))
    invoices_issue(invoice_ids=[invoice.pk], issue_date=issued)
    invoice.refresh_from_db()
    return invoice
