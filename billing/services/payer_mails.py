"""What billing mails a payer — its invoices (and credit notes) and its statements — for the *Envois* tab
of the payer file (``payers.sendings``)."""
from __future__ import annotations

from payers.sendings import register_payer_mail_keys

from ..models import Invoice, Statement
from .mailing import invoice_key
from .statement_documents import statement_key


@register_payer_mail_keys
def billing_payer_mail_keys(*, payer, section) -> list[str]:
    invoices = Invoice.objects.filter(section=section, payer=payer, debtor_kind=Invoice.DebtorKind.PAYER).exclude(
        status=Invoice.Status.DRAFT).values_list("pk", flat=True)
    statements = Statement.objects.filter(section=section, payer=payer).values_list("pk", flat=True)
    return [invoice_key(pk) for pk in invoices] + [statement_key(pk) for pk in statements]
