"""Reads of the SEPA app used by other apps (reminders, billing screens)."""
from __future__ import annotations

from collections.abc import Iterable

from django.db.models import QuerySet

from .models import DebitBatch, DebitLine

UNSETTLED = (DebitBatch.Status.DRAFT, DebitBatch.Status.GENERATED, DebitBatch.Status.SENT)


def invoices_in_unsettled_batches(invoice_ids: Iterable[int]) -> set[int]:
    """The ids among ``invoice_ids`` that are in a debit batch not yet settled (draft, generated or
    sent to the bank): a reminder must not be sent for them. ``invoice_ids`` may be an id queryset
    (sent as a subquery: no list of ids travels back and forth)."""
    ids = invoice_ids if isinstance(invoice_ids, QuerySet) else list(invoice_ids)
    if not isinstance(ids, QuerySet) and not ids:
        return set()
    return set(DebitLine.objects.filter(invoice_id__in=ids, active=True, batch__status__in=UNSETTLED)
               .values_list("invoice_id", flat=True))
