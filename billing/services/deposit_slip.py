"""The *bordereau de remise de chèques* of a payment batch: cheque numbers, banks, drawers, total
(PDF with WeasyPrint, like the invoices)."""
from __future__ import annotations

from django.template.loader import get_template
from django.utils import timezone
from django.utils.translation import gettext as _

from core.formats import fr_date
from core.money import format_euros

from ..models import Payment
from .issuing import establishment_snapshot
from .payments import batch_deposit_rows
from .pdf import html_to_pdf


def deposit_slip_html(batch) -> str:
    payments, total = batch_deposit_rows(batch)
    establishment = batch.section.establishment
    rows = [{"position": i, "reference": p.reference, "bank": p.bank, "drawer": p.drawer,
             "invoice": p.invoice.number if p.invoice else "", "amount": format_euros(p.amount)}
            for i, p in enumerate(payments, start=1)]
    return get_template("billing/pdf/deposit_slip.html").render({
        "batch": batch, "est": establishment_snapshot(establishment), "section": batch.section,
        "title": _("Bordereau de remise de chèques") if batch.mode == Payment.Mode.CHEQUE else
        _("Remise de règlements (%(mode)s)") % {"mode": Payment.Mode(batch.mode).label.lower()},
        "date": fr_date(batch.date), "printed": fr_date(timezone.localdate()), "rows": rows,
        "count": len(rows), "total": format_euros(total)})


def deposit_slip_pdf(batch) -> bytes:
    return html_to_pdf(deposit_slip_html(batch))
