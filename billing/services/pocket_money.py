"""Quarterly pocket-money settlement (billing-rules §8), computed for every resident under social aid
of a section: what the resident kept over the quarter (resources − contributions billed) must reach
max(10 % of the quarter's resources, 3 × the monthly minimum); the difference is owed back to the
resident. This module computes and lists it per payer (``quarter_pocket_money``); issuing the
pocket-money lines is not done yet.

Contributions are the issued *participation du résident* lines of the quarter, less what credit notes
took back from them. The resources of a month count when the decision covers at least one of its days.
The minimum is the decision's own, else its payer's, else the legal one of the quarter's first month.
"""
from __future__ import annotations

import calendar as pycal
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db.models import Q, Sum
from django.utils.translation import gettext as _

from core.money import ZERO, round_money
from payers.models import SocialAidDecision

from ..models import Invoice, InvoiceLine, NationalParameter
from .social_aid import quarter_pocket_money_refund


@dataclass
class QuarterRow:
    payer_code: str
    payer_name: str
    resident_name: str
    decision_reference: str
    months: int
    resources: Decimal
    contributions: Decimal
    minimum: Decimal
    refund: Decimal


def quarter_bounds(quarter: str) -> tuple[date, date]:
    """« 2026-T2 » / « 2026-Q2 » → (1 April 2026, 30 June 2026); French error otherwise."""
    text = quarter.strip().upper().replace("Q", "T")
    try:
        year_text, number_text = text.split("-T")
        year, number = int(year_text), int(number_text)
        if not 1 <= number <= 4:
            raise ValueError
    except ValueError as exc:
        raise ValidationError(_("Trimestre invalide : « %(value)s » (attendu : AAAA-T1 à AAAA-T4).") % {
            "value": quarter}) from exc
    first_month = 3 * (number - 1) + 1
    return date(year, first_month, 1), date(year, first_month + 2, pycal.monthrange(year, first_month + 2)[1])


def _legal_minimum(on: date) -> Decimal:
    row = (NationalParameter.objects.filter(kind=NationalParameter.Kind.POCKET_MONEY_MINIMUM, valid_from__lte=on)
           .order_by("-valid_from").first())
    return row.amount if row else ZERO


def quarter_pocket_money(*, section, quarter: str) -> list[QuarterRow]:
    start, end = quarter_bounds(quarter)
    legal = _legal_minimum(start)
    decisions = (SocialAidDecision.objects.filter(stay__section=section, valid_from__lte=end)
                 .filter(Q(valid_to__isnull=True) | Q(valid_to__gte=start))
                 .select_related("payer", "stay__resident").order_by("payer__code", "stay__resident__sort_key"))
    contribution_q = Q(reason=InvoiceLine.Reason.SOCIAL_AID_CONTRIBUTION) | Q(
        reason=InvoiceLine.Reason.CREDIT, credited_line__reason=InvoiceLine.Reason.SOCIAL_AID_CONTRIBUTION)
    contributions = defaultdict(lambda: ZERO)
    for row in (InvoiceLine.objects.filter(contribution_q, invoice__section=section,
                                           invoice__debtor_kind__in=[Invoice.DebtorKind.RESIDENT,
                                                                     Invoice.DebtorKind.RELATIVE],
                                           date_from__lte=end, date_to__gte=start)
                .exclude(invoice__status=Invoice.Status.DRAFT)
                .values("stay_id").annotate(total=Sum("amount"))):
        contributions[row["stay_id"]] += row["total"]
    rows = []
    for decision in decisions:
        months = [m for m in range(start.month, start.month + 3)
                  if decision.valid_from <= date(start.year, m, pycal.monthrange(start.year, m)[1])
                  and (decision.valid_to is None or decision.valid_to >= date(start.year, m, 1))]
        minimum = (decision.pocket_money_minimum if decision.pocket_money_minimum is not None
                   else decision.payer.pocket_money_minimum if decision.payer.pocket_money_minimum is not None
                   else legal)
        paid = round_money(contributions[decision.stay_id])
        # the housing allowance is handed over in full: it is not part of what the resident keeps
        housing = round_money(decision.housing_allowance * len(months))
        refund = quarter_pocket_money_refund(monthly_resources=[decision.monthly_resources] * len(months),
                                             contributions=[paid - housing], minimum=minimum)
        rows.append(QuarterRow(
            payer_code=decision.payer.code, payer_name=decision.payer.name,
            resident_name=decision.stay.resident.full_name, decision_reference=decision.decision_reference,
            months=len(months), resources=round_money(decision.monthly_resources * len(months)),
            contributions=paid, minimum=round_money(minimum), refund=refund))
    return rows
