"""Builders for SEPA tests: a creditor, a period and issued direct-debit invoices."""
from datetime import date
from decimal import Decimal

from billing.models import BillingPeriod, Invoice, InvoiceLine
from billing.services.issuing import invoices_issue
from residents.models import PaymentMode
from sepa.services.mandates import mandate_create

# Valid French IBANs (RIB key checked): two banks.
IBAN_A = "FR7630006000011234567890189"
IBAN_A2 = "FR7630006000019876543210173"  # same bank (30006) as IBAN_A
IBAN_B = "FR1420041010050500013M02606"  # another bank (20041)
ICS = "FR72ZZZ123456"


def creditor_for(section, **kwargs):
    """The section's establishment with its SEPA creditor identity."""
    establishment = section.establishment
    fields = {"city": "Lyon", "postal_code": "69003", "address": "12 rue des Tilleuls", "creditor_id": ICS,
              "sepa_creditor_name": "EHPAD Les Tilleuls", "iban": "FR7610107001011234567890129", "bic": "BREDFRPPXXX",
              **kwargs}
    for name, value in fields.items():
        setattr(establishment, name, value)
    establishment.full_clean()
    establishment.save()
    return establishment


def period_for(section, start=date(2026, 1, 1), end=date(2026, 1, 31)) -> BillingPeriod:
    return BillingPeriod.objects.create(section=section, start=start, end=end, accounting_date=end,
                                        label=f"{start:%m/%Y}")


def debit_invoice(period, resident, total, issued=date(2026, 1, 31), *, relative=None,
                  mode=PaymentMode.DIRECT_DEBIT, kind=Invoice.Kind.INVOICE) -> Invoice:
    section = period.section
    if resident.payment_mode != mode:  # issuing snapshots the resident's payment mode
        resident.payment_mode = mode
        resident.save(update_fields=["payment_mode"])
    invoice = Invoice.objects.create(
        section=section, establishment=section.establishment, period=period, kind=kind, payment_mode=mode,
        debtor_kind=Invoice.DebtorKind.RELATIVE if relative else Invoice.DebtorKind.RESIDENT,
        resident=resident, relative=relative, date_from=period.start, date_to=period.end, total=Decimal(total))
    InvoiceLine.objects.create(invoice=invoice, resident=resident, label="Hébergement", reason="manual",
                               date_from=period.start, date_to=period.end, quantity=Decimal("1"),
                               unit_price=Decimal(total), amount=Decimal(total))
    invoices_issue(invoice_ids=[invoice.pk], issue_date=issued)
    invoice.refresh_from_db()
    return invoice


def active_mandate(section, resident, iban=IBAN_A, *, relative=None, **kwargs):
    return mandate_create(establishment=section.establishment, resident=resident, relative=relative, iban=iban,
                          account_holder=(relative or resident).last_name, signature_date=date(2025, 12, 1), **kwargs)
