"""Review of a period before issue: totals per debtor, and what moved since the previous period."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Count, Sum
from django.utils.translation import gettext as _

from residents.models import Resident, Stay

from ..models import BillingPeriod, Invoice, InvoiceLine

THRESHOLD = Decimal("0.10")


@dataclass
class Movement:
    resident: Resident
    previous: Decimal
    current: Decimal
    reason: str

    @property
    def change_percent(self) -> Decimal | None:
        if not self.previous:
            return None
        return ((self.current - self.previous) * 100 / self.previous).quantize(Decimal("0.1"))


def previous_period(period: BillingPeriod) -> BillingPeriod | None:
    return (BillingPeriod.objects.filter(section=period.section, start__lt=period.start)
            .order_by("-start").first())


def _totals_by_resident(period: BillingPeriod) -> dict[int, Decimal]:
    rows = (InvoiceLine.objects.filter(invoice__period=period, invoice__kind=Invoice.Kind.INVOICE)
            .exclude(invoice__status=Invoice.Status.CANCELLED)
            .values("resident_id").annotate(total=Sum("amount")))
    return {r["resident_id"]: r["total"] for r in rows if r["resident_id"]}


def period_summary(period: BillingPeriod) -> dict:
    """Counts and totals of the period — the same figures as the journal and its exports
    (``journal.TOTALS_CAPTION`` says what they include)."""
    from .journal import journal_totals

    totals = journal_totals(Invoice.objects.filter(period=period))
    qs = Invoice.objects.filter(period=period)
    by_kind = {r["debtor_kind"]: r for r in qs.values("debtor_kind").annotate(n=Count("pk"), total=Sum("total"))}
    by_status = {row["status"]: {"n": row["count"], "total": row["total"], "label": row["label"]}
                 for row in totals["by_status"] if row["count"]}
    return {"by_kind": by_kind, "by_status": by_status, "count": totals["count"], "total": totals["total"]}


def _cancelled_residents(period: BillingPeriod) -> set[int]:
    return set(Invoice.objects.filter(period=period, kind=Invoice.Kind.INVOICE, status=Invoice.Status.CANCELLED,
                                      resident_id__isnull=False).values_list("resident_id", flat=True))


def period_movements(period: BillingPeriod) -> list[Movement]:
    """Residents whose total moved by more than 10 %, and those billed last period but not now."""
    before = previous_period(period)
    if before is None:
        return []
    old, new = _totals_by_resident(before), _totals_by_resident(period)
    cancelled_now = _cancelled_residents(period)
    residents = Resident.objects.in_bulk(set(old) | set(new))
    stays = {}
    for stay in Stay.objects.filter(resident_id__in=set(old) - set(new), section=period.section).order_by("entry_date"):
        stays[stay.resident_id] = stay
    moves: list[Movement] = []
    for resident_id, previous in old.items():
        current = new.get(resident_id)
        if current is None:
            stay = stays.get(resident_id)
            if resident_id in cancelled_now:
                reason = _("facture annulée par un avoir")
            elif stay and stay.end_date and stay.end_date < period.start:
                reason = _("séjour terminé le %(day)s (%(why)s)") % {"day": stay.end_date.strftime("%d/%m/%Y"),
                                                                     "why": stay.get_end_reason_display().lower()}
            else:
                reason = _("aucune facture générée : vérifier le forfait, le calendrier et les absences")
            moves.append(Movement(residents[resident_id], previous, Decimal("0.00"), reason))
        elif previous and abs(current - previous) > previous * THRESHOLD:
            moves.append(Movement(residents[resident_id], previous, current,
                                  _("variation de plus de 10 %")))
    cancelled_before = _cancelled_residents(before)
    for resident_id in set(new) - set(old):
        reason = (_("facture de la période précédente annulée par un avoir") if resident_id in cancelled_before
                  else _("nouveau ce mois-ci"))
        moves.append(Movement(residents[resident_id], Decimal("0.00"), new[resident_id], reason))
    return sorted(moves, key=lambda m: (m.resident.last_name, m.resident.first_name))
