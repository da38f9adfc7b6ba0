"""The SEPA block of PES ORMC titres (``billing.services.pes.register_sepa_provider``): the active
mandate of an invoice's debtor when the invoice is paid by direct debit. Registered in
``SepaConfig.ready`` so that billing (below sepa) never imports this app."""
from __future__ import annotations

from billing.models import Invoice
from residents.models import PaymentMode

from .models import Mandate


def pes_sepa_info(*, invoice: Invoice) -> dict | None:
    if invoice.payment_mode != PaymentMode.DIRECT_DEBIT or invoice.debtor_kind == Invoice.DebtorKind.PAYER:
        return None
    relative_id = invoice.relative_id if invoice.debtor_kind == Invoice.DebtorKind.RELATIVE else None
    mandate = (Mandate.objects.filter(establishment_id=invoice.establishment_id, resident_id=invoice.resident_id,
                                      relative_id=relative_id, status=Mandate.Status.ACTIVE)
               .order_by("-pk").first())
    if mandate is None or mandate.signature_date is None:
        return None
    sequence = "FRST" if (mandate.original_iban and invoice.establishment.sepa_frst_after_amendment) \
        else mandate.next_sequence_type
    return {"rum": mandate.rum, "signature_date": mandate.signature_date, "iban": mandate.iban, "bic": mandate.bic,
            "holder": mandate.account_holder, "sequence": sequence}
