"""Demo payments (``seed_demo --payments``, what ``./dev run`` loads): October to December 2025 of
VER-HP generated and issued (series VER 2025, so the 2026 numbers the demo walk-through issues are
unchanged), then payments on the residents' and paying relatives' invoices, deterministic by
position: paid on time, paid in part, paid late (40 days after the due date), unpaid, and one
resident who paid 25,00 € too much (a credit on the account). Idempotent: nothing is done when
VER-HP already has an issued invoice of 2025."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from django.db import transaction

from billing.models import Invoice
from billing.services import checks as check_services
from billing.services import issuing, periods
from billing.services.generation import period_generate
from billing.services.payments import PAYABLE_KINDS, payment_record
from core.money import round_money
from residents.models import PaymentMode
from structures.models import Section

ALIAS = "VER-HP"
MONTHS = [(2025, 10), (2025, 11), (2025, 12)]
LAST_PAYMENT_DAY = date(2026, 1, 31)


@transaction.atomic
def demo_payments(*, organisation) -> dict:
    section = Section.objects.filter(alias=ALIAS, establishment__organisation=organisation).first()
    if section is None or Invoice.objects.filter(section=section, issue_date__year=2025).exists():
        return {"issued": 0, "payments": 0}
    issued = 0
    for year, month in MONTHS:
        period = periods.period_for_month(section=section, year=year, month=month) or periods.period_create(
            section=section, start=date(year, month, 1))
        if check_services.period_blocking(check_services.period_checks(period=period)):
            continue
        period_generate(period=period)
        # Issued on the period's last day: December stays in the 2025 series.
        issued += len(issuing.period_issue(period=period, issue_date=period.end))
    invoices = list(Invoice.objects.filter(section=section, kind__in=PAYABLE_KINDS, status=Invoice.Status.ISSUED,
                                           issue_date__year=2025)
                    .exclude(debtor_kind=Invoice.DebtorKind.PAYER).order_by("issue_date", "number"))
    payments, credit_given = 0, False
    for index, invoice in enumerate(invoices):
        kind = index % 4
        if kind == 3 or invoice.payment_mode == PaymentMode.DIRECT_DEBIT:  # unpaid, or collected by the debit batches
            continue
        mode = "cheque" if index % 2 == 0 else "transfer"
        amount = invoice.total
        on = invoice.due_date - timedelta(days=3)
        if kind == 1:  # paid in part
            amount = round_money(invoice.total / 2)
        elif kind == 2:  # paid late
            on = invoice.due_date + timedelta(days=40)
        if not credit_given and kind == 0:  # one family paid too much: a credit on the account
            amount, credit_given = invoice.total + Decimal("25.00"), True
        if on > LAST_PAYMENT_DAY or amount <= 0:
            continue
        payment_record(section=section, invoice=invoice, on=on, amount=amount, mode=mode,
                       reference=f"DEMO-{invoice.number[-4:]}" if mode == "cheque" else f"VIR {invoice.number}",
                       drawer=invoice.debtor_name if mode == "cheque" else "", comment="Démonstration")
        payments += 1
    from .sepa_seed import demo_debit_batches  # the direct-debit invoices are collected

    debits = demo_debit_batches(organisation=organisation)
    return {"issued": issued, "payments": payments, **debits}
