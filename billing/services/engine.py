"""The day-by-day billing engine (billing-rules.md §1–5), pure computation on loaded data.

``compute_stay`` turns one stay into priced *day items* (product, quantity, unit price, reason)
and shares each item between debtors with the stay's coverage rules. ``aggregate`` then joins
consecutive days with the same debtor, product, unit price and reason into invoice lines.
No database access happens here: ``generation.py`` loads everything a period needs first.

Rounding: every unit price share is rounded to the cent (half up) when it is split; a line's
amount is ``round_money(quantity × unit price)``; invoice totals are sums of lines.
"""
from __future__ import annotations

import calendar as pycal
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from core.money import ZERO, round_money

from ..models.catalog import (ACCOMMODATION_SCOPE_KINDS, DEPENDENCY_KINDS, LODGING_KINDS, Product,
                              dependency_kind_for_gir)
from .dated import Dated

ONE = Decimal("1")
HALF = Decimal("0.5")
ABSENCE_RULES_WITH_EFFECT = ("HOSPITAL", "HOSPITAL_PSY", "CONVENIENCE")
# Enum members read once (a class attribute of a TextChoices costs a metaclass lookup on every access;
# the engine reads them hundreds of thousands of times per period).
UNIT_MONTH, UNIT_UNIT, UNIT_HALF_DAY = Product.Unit.MONTH, Product.Unit.UNIT, Product.Unit.HALF_DAY
KIND_DAY_CARE, KIND_DEPENDENCY_56 = Product.Kind.DAY_CARE, Product.Kind.DEPENDENCY_56
MONTHLY_PRORATA = Product.MonthlyMode.PRORATA
ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class Debtor:
    kind: str  # resident / relative / payer
    resident_id: int | None = None
    relative_id: int | None = None
    payer_id: int | None = None
    group_id: int | None = None


@dataclass
class DayItem:
    day: date
    product: Product
    quantity: Decimal
    unit_price: Decimal
    reason: str
    monthly: bool = False
    prorata: tuple[int, int] | None = None  # (days of presence, days in the month) for prorata monthly products


@dataclass
class Share:
    debtor: Debtor
    item: DayItem
    unit_price: Decimal
    invoiced: bool = True
    note: str = ""


@dataclass
class AbsenceInfo:
    first_day: date
    last_day: date
    rule: str


@dataclass
class StayData:
    """Everything the engine needs about one stay (loaded by generation.py)."""

    stay_id: int
    resident_id: int
    resident_name: str
    entry_date: date
    end_date: date | None
    end_reason: str
    room_emptied_on: date | None
    packages: Dated  # -> (package_id, dependency_by_gir, [Product])
    gir: Dated  # -> int
    absences: list[AbsenceInfo]
    convenience_days_by_year: dict[int, list[date]] = field(default_factory=dict)
    rules: list = field(default_factory=list)  # CoverageRuleData, in priority order
    paying_relative_id: int | None = None
    birth_date: date | None = None
    attendance: frozenset | None = None  # day care: weekdays of attendance (None = every open day)
    social_aid: list = field(default_factory=list)  # social_aid.DecisionData, ASH "net" model
    domicile_secours: str = ""  # département of domicile de secours ("" = the establishment's)
    aid_plans: list = field(default_factory=list)  # AidPlanData of the validated plans, by valid_from


@dataclass
class CoverageRuleData:
    rule_id: int
    payer_id: int
    group_id: int | None
    scope: str
    product_ids: frozenset
    mode: str
    value: Decimal
    monthly_cap_units: int | None
    valid_from: date
    valid_to: date | None
    invoiced: bool
    label: str
    default_apa: bool = False  # the implicit APA of a dotation-globale département (§3), never typed

    def applies(self, day: date, product: Product) -> bool:
        if day < self.valid_from or (self.valid_to and day > self.valid_to):
            return False
        if self.scope == "all":
            return True
        if self.scope == "dependency":
            return product.kind in DEPENDENCY_KINDS
        if self.scope == "accommodation":
            return product.kind in ACCOMMODATION_SCOPE_KINDS
        return product.id in self.product_ids


# Items an aid plan finances: days of presence (the first three days of an absence are billed as presence,
# §2) and monthly products; reduced absence days and days after a death are billed without the plan.
AID_PLAN_REASONS = frozenset({"presence", "monthly"})


@dataclass
class AidPlanData:
    """A validated aid plan (payers.AidPlan): the payer pays ``rate × percent`` per financed unit, up to
    ``monthly_cap`` units per calendar month; Sundays and public holidays have their own rate, percent and
    cap (``holiday_cap`` None: financed like the other days; 0: not financed; N: the first N units of the
    month at the holiday rate, then like the other days)."""

    plan_id: int
    payer_id: int
    group_id: int | None
    product_id: int
    valid_from: date
    valid_to: date | None
    rate: Decimal
    percent: Decimal
    monthly_cap: Decimal | None
    holiday_rate: Decimal | None
    holiday_percent: Decimal | None
    holiday_cap: Decimal | None
    plan_rate_billing: bool  # True: the unit is billed at the plan's rate while financed; False: product price
    label: str

    def in_force(self, day: date, product: Product) -> bool:
        return (product.id == self.product_id and self.valid_from <= day
                and (self.valid_to is None or day <= self.valid_to))


@dataclass
class Context:
    """Shared, period-wide data: tariffs, calendar, parameters."""

    tariffs: dict[int, Dated]  # product id -> Dated(price)
    calendar: dict[date, str]  # day -> open/closed/half
    products_by_kind: dict[str, Product]  # dependency products of the establishment by kind
    hospital_charge: Dated
    psychiatric_charge: Dated
    departement: Dated  # -> DepartementParameter-like object
    pocket_money_minimum: Dated = field(default_factory=lambda: Dated([]))
    establishment_departement: str = ""
    # département code -> (payer id, APA group id, label) of the départements paying APA under dotation globale
    apa_dotation: dict = field(default_factory=dict)
    holidays: frozenset = frozenset()  # public holidays of the establishment's département (aid plans)
    _prices: dict = field(default_factory=dict, repr=False)  # memo: (product id, day) -> price, ("dept", day)

    def price(self, product: Product, day: date) -> Decimal | None:
        key = (product.id, day)
        try:
            return self._prices[key]
        except KeyError:
            table = self.tariffs.get(product.id)
            price = self._prices[key] = table.on(day) if table else None
            return price

    def dept(self, day: date):
        key = ("dept", day)
        try:
            return self._prices[key]
        except KeyError:
            value = self._prices[key] = self.departement.on(day)
            return value


class EngineWarning(Exception):
    pass


def _absence_on(stay: StayData, day: date) -> tuple[AbsenceInfo, int] | None:
    for absence in stay.absences:
        if absence.first_day <= day <= absence.last_day:
            return absence, (day - absence.first_day).days + 1
    return None


def _convenience_days_before(stay: StayData, day: date) -> int:
    days = stay.convenience_days_by_year.get(day.year, [])
    return sum(1 for d in days if d < day)


def day_items(*, stay: StayData, ctx: Context, start: date, end: date, warnings: list[str]) -> list[DayItem]:
    """Priced items of one stay for every day of [start, end] (billing-rules.md §1–3, §5)."""
    items: list[DayItem] = []
    death = stay.end_reason == "death" and stay.end_date is not None
    last_presence = stay.end_date or end
    after_death_until = None
    if death and stay.room_emptied_on and stay.room_emptied_on > stay.end_date:
        dept = ctx.dept(stay.end_date)
        max_days = dept.death_max_days if dept else 6
        after_death_until = min(stay.room_emptied_on, stay.end_date + timedelta(days=max_days))
    first = max(start, stay.entry_date)
    last = min(end, after_death_until or last_presence)
    monthly_done: set[tuple[int, int, int]] = set()
    day = first
    while day <= last:
        state = ctx.calendar.get(day)
        if state is None:
            raise EngineWarning(f"calendar missing {day}")
        package = stay.packages.on(day)
        if package is None:
            warnings.append(f"{stay.resident_name} : aucun forfait d'hébergement le {day:%d/%m/%Y}")
            day += timedelta(days=1)
            continue
        _package_id, dependency_by_gir, products = package
        post_death = after_death_until is not None and day > stay.end_date
        if state == "closed":
            day += timedelta(days=1)
            continue
        absence = _absence_on(stay, day)
        dept = ctx.dept(day)
        for product in products:
            if product.unit == UNIT_MONTH:
                key = (product.id, day.year, day.month)
                if key in monthly_done or post_death:
                    continue
                monthly_done.add(key)
                price = ctx.price(product, day)
                if price is None:
                    warnings.append(f"{product.code} : aucun tarif le {day:%d/%m/%Y}")
                    continue
                qty, prorata = ONE, None
                if product.monthly_mode == MONTHLY_PRORATA:
                    # §1: presence days of the month (days after a death are not presence days);
                    # the fraction is kept exact, the amount is rounded once (Line.amount).
                    month_days = pycal.monthrange(day.year, day.month)[1]
                    span_end = min(date(day.year, day.month, month_days), end, last_presence)
                    presence = (span_end - day).days + 1
                    prorata = (presence, month_days)
                    qty = Decimal(presence) / Decimal(month_days)
                items.append(DayItem(day, product, qty, price, "monthly", monthly=True, prorata=prorata))
                continue
            if product.unit == UNIT_UNIT:
                continue  # unit products are billed by hand
            if product.is_dependency:
                continue  # handled below by GIR
            if product.kind == KIND_DAY_CARE and stay.attendance and day.weekday() not in stay.attendance:
                continue  # day care: billed on the person's attendance days only
            price = ctx.price(product, day)
            if price is None:
                warnings.append(f"{product.code} : aucun tarif le {day:%d/%m/%Y}")
                continue
            qty = HALF if (state == "half" and product.unit == UNIT_HALF_DAY) else ONE
            reason = "presence"
            if post_death:
                if product.kind not in LODGING_KINDS:
                    continue
                charges = dept.death_variable_charges if dept else ZERO
                price, reason = max(ZERO, price - charges), "after_death"
            elif absence:
                info, number = absence
                if info.rule in ABSENCE_RULES_WITH_EFFECT and number >= 4 and \
                        product.kind in LODGING_KINDS:
                    if info.rule == "HOSPITAL":
                        price, reason = max(ZERO, price - (ctx.hospital_charge.on(day) or ZERO)), "absence_hospital"
                    elif info.rule == "HOSPITAL_PSY":
                        price, reason = max(ZERO, price - (ctx.psychiatric_charge.on(day) or ZERO)), "absence_psy"
                    else:
                        cap = dept.convenience_cap_days if dept else 35
                        if _convenience_days_before(stay, day) < cap:
                            reduction = dept.convenience_reduction if (dept and dept.convenience_reduction is not None) \
                                else (ctx.hospital_charge.on(day) or ZERO)
                            price, reason = max(ZERO, price - reduction), "absence_convenience"
                        else:
                            reason = "absence_convenience_cap"
                elif info.rule in ABSENCE_RULES_WITH_EFFECT and product.kind == KIND_DAY_CARE:
                    continue  # day care is billed per day of attendance only
            items.append(DayItem(day, product, qty, price, reason))
        # Dependency: the GIR group's tariff of the day; none after death nor on absence days.
        if dependency_by_gir and not post_death:
            gir = stay.gir.on(day)
            if gir is None:
                warnings.append(f"{stay.resident_name} : GIR inconnu le {day:%d/%m/%Y}")
            else:
                dep_product = ctx.products_by_kind.get(dependency_kind_for_gir(gir))
                billed = True
                if absence and absence[0].rule in ABSENCE_RULES_WITH_EFFECT:
                    billed = bool(dept and dept.talon_on_first_day and absence[1] == 1)
                    if billed:
                        dep_product = ctx.products_by_kind.get(KIND_DEPENDENCY_56)
                if dep_product is not None and billed:
                    price = ctx.price(dep_product, day)
                    if price is None:
                        warnings.append(f"{dep_product.code} : aucun tarif le {day:%d/%m/%Y}")
                    else:
                        items.append(DayItem(day, dep_product, ONE, price, "presence"))
        day += timedelta(days=1)
    return items


def aid_plan_financing(*, plan: AidPlanData, item: DayItem, ctx: Context,
                       used: dict) -> tuple[Decimal, Decimal, bool] | None:
    """(rate, percent, holiday rate applied) of ``item`` under ``plan``, or None when the unit is not
    financed (not in force, not a presence day, cap reached, Sunday/holiday with a cap of 0). Consumes the
    month's caps in ``used`` (called in day order: the cap is reached mid-month on the right day)."""
    if item.reason not in AID_PLAN_REASONS or not plan.in_force(item.day, item.product):
        return None
    day, qty = item.day, item.quantity
    month = (plan.plan_id, day.year, day.month)
    special = not item.monthly and (day.weekday() == 6 or day in ctx.holidays)
    holiday_rate = plan.holiday_rate if plan.holiday_rate is not None else plan.rate
    holiday_percent = plan.holiday_percent if plan.holiday_percent is not None else plan.percent
    if special and plan.holiday_cap is not None:
        if plan.holiday_cap <= 0:
            return None  # cap 0: Sundays and public holidays are not financed
        key = month + ("holiday",)
        if used[key] + qty <= plan.holiday_cap:
            used[key] += qty
            return holiday_rate, holiday_percent, True
        special = False  # beyond the Sunday/holiday cap: financed like the other days
    key = month + ("month",)
    if plan.monthly_cap is not None and used[key] + qty > plan.monthly_cap:
        return None
    used[key] += qty
    if special:  # no cap of their own: Sundays and holidays share the month's cap, at their own rate
        return holiday_rate, holiday_percent, True
    return plan.rate, plan.percent, False


def share_items(*, stay: StayData, ctx: Context, items: list[DayItem]) -> list[Share]:
    """Split each item between payers (aid plans, then rules in order) and the resident / paying relative."""
    shares: list[Share] = []
    remainder_debtor = (Debtor("relative", resident_id=stay.resident_id, relative_id=stay.paying_relative_id)
                        if stay.paying_relative_id else Debtor("resident", resident_id=stay.resident_id))
    cap_used: dict[tuple[int, int, int], Decimal] = defaultdict(lambda: ZERO)
    plan_used: dict[tuple, Decimal] = defaultdict(lambda: ZERO)
    rules = list(stay.rules)
    default_rule = default_apa_rule(stay=stay, ctx=ctx)
    if default_rule is not None:
        rules.append(default_rule)
    plans = stay.aid_plans
    # Built once per stay, not per day (a section's month is ~100 items per stay).
    payer_debtors = {id(rule): Debtor("payer", resident_id=stay.resident_id, payer_id=rule.payer_id,
                                      group_id=rule.group_id) for rule in rules}
    for item in items:
        price = remaining = item.unit_price
        planned = False  # an aid plan in force on the day (for the default APA rule below)
        for plan in plans:
            if not plan.in_force(item.day, item.product):
                continue
            planned = True  # an aid plan on a dependency product is an individual decision (§3)
            financed = aid_plan_financing(plan=plan, item=item, ctx=ctx, used=plan_used)
            if financed is None:
                break  # beyond the cap: the product's price, shared by the rules below
            rate, percent, holiday = financed
            if plan.plan_rate_billing:
                price = remaining = rate
            part = min(round_money(rate * percent / Decimal(100)), remaining)
            if part > 0:
                note = f"{plan.label}, dimanche / jour férié" if holiday else plan.label
                shares.append(Share(Debtor("payer", resident_id=stay.resident_id, payer_id=plan.payer_id,
                                           group_id=plan.group_id), item, part, note=note))
                remaining -= part
            break
        for rule in rules:
            if remaining <= 0 or not rule.applies(item.day, item.product):
                continue
            if rule.default_apa and (planned or any(r.applies(item.day, item.product) for r in stay.rules)):
                continue  # an explicit coverage rule (or an aid plan) always wins over the default
            if rule.monthly_cap_units is not None:
                key = (rule.rule_id, item.day.year, item.day.month)
                if cap_used[key] + item.quantity > rule.monthly_cap_units:
                    continue
                cap_used[key] += item.quantity
            if rule.mode == "all":
                part = remaining
            elif rule.mode == "percent":
                part = round_money(price * rule.value / Decimal(100))
            elif rule.mode == "amount_per_unit":
                part = rule.value
            elif rule.mode == "above_resident_share":
                part = remaining - rule.value
            elif rule.mode == "above_talon":
                if not item.product.is_dependency:
                    continue
                talon_product = ctx.products_by_kind.get(KIND_DEPENDENCY_56)
                talon = ctx.price(talon_product, item.day) if talon_product else None
                part = remaining - (talon or ZERO)
            else:
                continue
            part = min(max(part, ZERO), remaining)
            if part <= 0:
                continue
            shares.append(Share(payer_debtors[id(rule)], item, part, invoiced=rule.invoiced, note=rule.label))
            remaining -= part
        if remaining > 0 or price == 0:
            note = "part résident" if remaining != price else ""
            shares.append(Share(remainder_debtor, item, remaining, note=note))
    return shares


@dataclass
class Line:
    debtor: Debtor
    resident_id: int
    stay_id: int
    product: Product
    reason: str
    unit_price: Decimal
    date_from: date
    date_to: date
    quantity: Decimal
    note: str = ""
    prorata: tuple[int, int] | None = None

    @property
    def amount(self) -> Decimal:
        if self.prorata:  # round_half_up(monthly price × presence days / days in month, 2)
            return round_money(self.unit_price * self.prorata[0] / Decimal(self.prorata[1]))
        return round_money(self.quantity * self.unit_price)


def aggregate(*, stay: StayData, shares: list[Share]) -> list[Line]:
    """Consecutive days with the same debtor, product, unit price and reason make one line."""
    lines: list[Line] = []
    open_lines: dict[tuple, Line] = {}
    for share in sorted(shares, key=lambda s: (s.item.product.code, s.item.day)):
        if not share.invoiced:
            continue
        item = share.item
        key = (share.debtor, item.product.id, share.unit_price, item.reason, share.note)
        current = open_lines.get(key)
        if current and not item.monthly and current.date_to + ONE_DAY == item.day:
            current.date_to = item.day
            current.quantity += item.quantity
            continue
        line = Line(share.debtor, stay.resident_id, stay.stay_id, item.product, item.reason, share.unit_price,
                    item.day, item.day, item.quantity, share.note, prorata=item.prorata)
        if item.monthly:
            month_last = date(item.day.year, item.day.month, pycal.monthrange(item.day.year, item.day.month)[1])
            line.date_to = min(month_last, stay.end_date or month_last)
        lines.append(line)
        open_lines[key] = line
    return lines


def social_aid_rules(stay: StayData) -> list[CoverageRuleData]:
    """An ASH decision makes its département pay all of the hébergement while it is in force."""
    return [CoverageRuleData(rule_id=-(i + 1), payer_id=d.payer_id, group_id=d.group_id, scope="accommodation",
                             product_ids=frozenset(), mode="all", value=Decimal("0"), monthly_cap_units=None,
                             valid_from=d.valid_from, valid_to=d.valid_to, invoiced=True, label=d.label)
            for i, d in enumerate(stay.social_aid)]


def social_aid_contributions(*, stay: StayData, ctx: Context, shares: list[Share]) -> list[Line]:
    """Net model: per month, the resident is invoiced the contribution (resources − pocket money +
    housing allowance, prorated on the days billed under the decision, capped at what the département
    pays), and the département's invoice deducts it."""
    from .social_aid import contribution_for_month

    lines: list[Line] = []
    resident = (Debtor("relative", resident_id=stay.resident_id, relative_id=stay.paying_relative_id)
                if stay.paying_relative_id else Debtor("resident", resident_id=stay.resident_id))
    for decision in stay.social_aid:
        by_month: dict[tuple[int, int], list[Share]] = defaultdict(list)
        for share in shares:
            if (share.debtor.kind == "payer" and share.debtor.payer_id == decision.payer_id
                    and share.debtor.group_id == decision.group_id and decision.covers(share.item.day)
                    and share.item.product.kind in LODGING_KINDS):
                by_month[(share.item.day.year, share.item.day.month)].append(share)
        for (year, month), month_shares in sorted(by_month.items()):
            paid = sum((round_money(s.unit_price * s.item.quantity) for s in month_shares), ZERO)
            days = len({s.item.day for s in month_shares})
            first = min(s.item.day for s in month_shares)
            last = max(s.item.day for s in month_shares)
            minimum = ctx.pocket_money_minimum.on(first) or ZERO
            contribution = min(paid, contribution_for_month(decision=decision, year=year, month=month,
                                                            billed_days=days, legal_minimum=minimum))
            if contribution <= 0:
                continue
            product = month_shares[0].item.product
            payer = Debtor("payer", resident_id=stay.resident_id, payer_id=decision.payer_id,
                           group_id=decision.group_id)
            lines.append(Line(resident, stay.resident_id, stay.stay_id, product, "ash_contribution", contribution,
                              first, last, Decimal("1")))
            lines.append(Line(payer, stay.resident_id, stay.stay_id, product, "ash_contribution", -contribution,
                              first, last, Decimal("1"), decision.label))
    return lines


def sixtieth_birthday(birth: date) -> date:
    try:
        return birth.replace(year=birth.year + 60)
    except ValueError:  # born on 29 February
        return date(birth.year + 60, 3, 1)


def domicile_of(stay: StayData, ctx: Context) -> str:
    return stay.domicile_secours or ctx.establishment_departement


def default_apa_rule(*, stay: StayData, ctx: Context) -> CoverageRuleData | None:
    """§3: a département paying APA under dotation globale needs no per-resident rule: from the
    resident's 60th birthday, the GIR 1-4 tariff above the talon is its share, not invoiced, and
    the resident pays the talon. GIR 5-6 items are untouched (nothing above the talon)."""
    payer = ctx.apa_dotation.get(domicile_of(stay, ctx))
    if payer is None or stay.birth_date is None:
        return None
    payer_id, group_id, label = payer
    return CoverageRuleData(rule_id=0, payer_id=payer_id, group_id=group_id, scope="dependency",
                            product_ids=frozenset(), mode="above_talon", value=Decimal("0"), monthly_cap_units=None,
                            valid_from=sixtieth_birthday(stay.birth_date), valid_to=None, invoiced=False,
                            label=label, default_apa=True)


def compute_stay(*, stay: StayData, ctx: Context, start: date, end: date, warnings: list[str]) -> list[Line]:
    items = day_items(stay=stay, ctx=ctx, start=start, end=end, warnings=warnings)
    if stay.social_aid:
        stay.rules = social_aid_rules(stay) + [r for r in stay.rules]
    shares = share_items(stay=stay, ctx=ctx, items=items)
    lines = aggregate(stay=stay, shares=shares)
    if stay.social_aid:
        lines.extend(social_aid_contributions(stay=stay, ctx=ctx, shares=shares))
    return lines
