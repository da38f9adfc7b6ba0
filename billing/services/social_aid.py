"""Aide sociale à l'hébergement (billing-rules.md §8): pocket money, resident contribution, and the
"net" model (the département is invoiced the hébergement minus the resident's contribution)."""
from __future__ import annotations

import calendar as pycal
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from core.money import ZERO, round_money

TEN_PERCENT = Decimal("0.10")


def pocket_money(*, resources: Decimal, minimum: Decimal) -> Decimal:
    """Monthly pocket money = max(10 % of resources (housing allowance excluded), minimum)."""
    return max(round_money(resources * TEN_PERCENT), round_money(minimum))


def monthly_contribution(*, resources: Decimal, housing_allowance: Decimal, minimum: Decimal) -> Decimal:
    """What the resident pays each month: resources minus pocket money, plus the housing allowance in full
    (never below zero)."""
    kept = pocket_money(resources=resources, minimum=minimum)
    return max(ZERO, round_money(resources - kept)) + round_money(housing_allowance)


def quarter_pocket_money_refund(*, monthly_resources: list[Decimal], contributions: list[Decimal],
                                minimum: Decimal) -> Decimal:
    """Quarterly settlement: what the resident kept over the quarter (resources − contributions) must be
    at least 3 × the monthly minimum (and at least 10 % of the quarter's resources); returns the
    difference to give back (0 when nothing is owed)."""
    resources = sum(monthly_resources, ZERO)
    kept = resources - sum(contributions, ZERO)
    due = max(round_money(resources * TEN_PERCENT), round_money(minimum * len(monthly_resources)))
    return max(ZERO, round_money(due - kept))


@dataclass
class DecisionData:
    payer_id: int
    group_id: int | None
    valid_from: date
    valid_to: date | None
    resources: Decimal
    housing_allowance: Decimal
    minimum: Decimal | None  # the payer's particular minimum, else the legal one of the month
    label: str

    def covers(self, day: date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


def contribution_for_month(*, decision: DecisionData, year: int, month: int, billed_days: int,
                           legal_minimum: Decimal) -> Decimal:
    """The month's contribution, prorated on the days of the month billed under the decision."""
    days_in_month = pycal.monthrange(year, month)[1]
    full = monthly_contribution(resources=decision.resources, housing_allowance=decision.housing_allowance,
                                minimum=decision.minimum if decision.minimum is not None else legal_minimum)
    if billed_days >= days_in_month:
        return full
    return round_money(full * Decimal(billed_days) / Decimal(days_in_month))
