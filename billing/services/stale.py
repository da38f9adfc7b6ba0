"""« Brouillons à régénérer »: any change of the data the engine reads marks the open periods that have
drafts, of the section(s) concerned and covering the dates changed. Issuing refuses such drafts until
the period is generated again (generation clears the mark).

Model changes arrive through ``billing.signals``; bulk writers (imports, calendar generation) call
:func:`periods_mark_stale` themselves."""
from __future__ import annotations

from datetime import date

from django.db.models import Exists, OuterRef
from django.utils import timezone

from ..models import BillingPeriod, Invoice


def periods_mark_stale(*, section_ids, start: date | None, end: date | None = None) -> int:
    """Mark the open periods with drafts of ``section_ids`` overlapping [start, end] (``end`` None: from
    ``start`` on; ``start`` None: every period). Returns the number of periods marked."""
    section_ids = {pk for pk in section_ids if pk}
    if not section_ids:
        return 0
    periods = BillingPeriod.objects.filter(section_id__in=section_ids, status=BillingPeriod.Status.OPEN,
                                           drafts_stale_since__isnull=True)
    if start is not None:
        periods = periods.filter(end__gte=start)
    if end is not None:
        periods = periods.filter(start__lte=end)
    drafts = Invoice.objects.filter(period=OuterRef("pk"), status=Invoice.Status.DRAFT)
    return periods.filter(Exists(drafts)).update(drafts_stale_since=timezone.now())
