"""Demo payer statements and social aid (``seed_demo --payments``, what ``./dev run`` loads).

Before the demo payments (``demo_payer_setup``): MUTSAN (mutual insurer) pays 5,00 € a day of
hébergement for two VER-HP residents, and two TIL-HP residents are under social aid of the CD69
(group ASH). After them (``demo_statements``): TIL-HP October–December 2025 issued (series TIL 2025);
the CD69 pocket-money settlement of 2025-T4 (one resident's resources revised downward after
billing: a credit note and an invoice to the département; the other confirmed at zero); the
statements of both sections for October–December 2025 — CD01 individual APA statements, MUTSAN and
CD69 global ones — validated for October and November, December's left « créé »; MUTSAN paid its
October statement, CD01 part of one (« reste à régler » in red). Idempotent: nothing is done when the
association already has a statement.
"""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Q

from billing.models import Invoice, Statement
from billing.services import checks as check_services
from billing.services import issuing, periods
from billing.services.generation import period_generate
from billing.services.payments import payment_record
from billing.services.pocket_money import quarter_pocket_money_issue
from billing.services.statements import statements_create, statements_validate
from payers.models import CoverageRule, Payer, SocialAidDecision
from residents.models import Stay
from structures.models import Section

MONTHS = [(2025, 10), (2025, 11), (2025, 12)]
Q4 = (date(2025, 10, 1), date(2025, 12, 31))


def _stays(organisation, alias: str, count: int, exclude_payer: str | None = None):
    stays = (Stay.objects.filter(section__alias=alias, section__establishment__organisation=organisation,
                                 resident__external_ref__startswith="DEMO-", entry_date__lte=Q4[0])
             .filter(Q(end_date__isnull=True) | Q(end_date__gte=Q4[1])).order_by("resident__external_ref"))
    if exclude_payer:
        stays = stays.exclude(coverage_rules__payer__code=exclude_payer)
    return list(stays[:count])


@transaction.atomic
def demo_payer_setup(*, organisation) -> None:
    """MUTSAN coverage in VER-HP and CD69 social aid in TIL-HP, only while those months are not issued."""
    payers = {p.code: p for p in Payer.objects.filter(organisation=organisation)}
    if "MUTSAN" in payers and not Invoice.objects.filter(section__alias="VER-HP", issue_date__year=2025).exists():
        for stay in _stays(organisation, "VER-HP", 2):
            CoverageRule.objects.get_or_create(
                stay=stay, payer=payers["MUTSAN"], decision_reference=f"MUT-{stay.resident.external_ref}",
                defaults={"scope": CoverageRule.Scope.ACCOMMODATION, "mode": CoverageRule.Mode.AMOUNT_PER_UNIT,
                          "value": Decimal("5.00"), "valid_from": Q4[0], "priority": 20})
    cd01_apa = payers["CD01"].groups.filter(code="APA").first() if "CD01" in payers else None
    for alias in ("VER-HP", "TIL-HP"):
        # one resident of each section has the Ain as domicile de secours: APA paid by the CD01
        if cd01_apa is None or Invoice.objects.filter(section__alias=alias, issue_date__year=2025).exists():
            continue
        rules = CoverageRule.objects.filter(stay__section__alias=alias, stay__section__establishment__organisation=(
            organisation), mode=CoverageRule.Mode.ABOVE_TALON, stay__in=_stays(organisation, alias, 30))
        if not rules.filter(payer=cd01_apa.payer).exists():
            rule = rules.order_by("stay__resident__external_ref").first()
            if rule is not None:
                CoverageRule.objects.filter(pk=rule.pk).update(payer=cd01_apa.payer, group=cd01_apa)
    if "CD69" in payers and not Invoice.objects.filter(section__alias="TIL-HP", issue_date__year=2025).exists():
        group = payers["CD69"].groups.filter(code="ASH").first()
        for index, stay in enumerate(_stays(organisation, "TIL-HP", 2, exclude_payer="CD01")):
            SocialAidDecision.objects.get_or_create(
                stay=stay, payer=payers["CD69"], decision_reference=f"ASH-69-2025-{index + 1:03d}",
                defaults={"group": group, "valid_from": Q4[0], "monthly_resources": Decimal("1300.00"),
                          "housing_allowance": Decimal("120.00")})


def _issue_quarter(section) -> list:
    issued = []
    for year, month in MONTHS:
        period = periods.period_for_month(section=section, year=year, month=month) or periods.period_create(
            section=section, start=date(year, month, 1))
        if not period.invoices.exclude(status=Invoice.Status.DRAFT).exists():
            if check_services.period_blocking(check_services.period_checks(period=period)):
                continue
            period_generate(period=period)
            # issued on the period's last day: December stays in the 2025 series
            issuing.period_issue(period=period, issue_date=period.end)
        issued.append(period)
    return issued


@transaction.atomic
def demo_statements(*, organisation) -> dict:
    if Statement.objects.filter(section__establishment__organisation=organisation).exists():
        return {"statements": 0, "settlements": 0}
    sections = {s.alias: s for s in Section.objects.filter(alias__in=["TIL-HP", "VER-HP"],
                                                           establishment__organisation=organisation)}
    settlements = 0
    til = sections.get("TIL-HP")
    if til is not None:
        _issue_quarter(til)
        # the first resident's resources were revised downward after billing: pocket money is owed back
        decision = (SocialAidDecision.objects.filter(stay__section=til).order_by("decision_reference").first())
        if decision is not None:
            SocialAidDecision.objects.filter(pk=decision.pk).update(monthly_resources=Decimal("1150.00"))
            result = quarter_pocket_money_issue(section=til, quarter="2025-T4", issue_date=Q4[1])
            settlements = result["issued"] + result["zero"]
    made = 0
    for alias in ("VER-HP", "TIL-HP"):
        section = sections.get(alias)
        if section is None:
            continue
        for year, month in MONTHS:
            period = periods.period_for_month(section=section, year=year, month=month)
            if period is None:
                continue
            statement_date = period.end + timedelta(days=5)
            created = statements_create(period=period, statement_date=statement_date)
            made += len(created)
            if month < 12:
                statements_validate(statements=created, today=statement_date)
    # payers' payments: MUTSAN pays its October statement, CD01 part of one of its October statements
    october = Statement.objects.filter(section__establishment__organisation=organisation,
                                       status=Statement.Status.VALIDATED, period__start=date(2025, 10, 1))
    for code in ("MUTSAN", "CD01"):
        statement = october.filter(payer__code=code).order_by("number").first()
        if statement is None:
            continue
        invoice = statement.lines.order_by("pk").first().invoice
        amount = statement.total if statement.payer.code == "MUTSAN" else (statement.total / 2).quantize(
            Decimal("0.01"))
        if amount > 0:
            payment_record(section=statement.section, invoice=invoice, on=date(2025, 12, 15), amount=amount,
                           mode="payer", reference=f"VIR {statement.payer.code} {statement.number}",
                           comment="Démonstration")
    return {"statements": made, "settlements": settlements}
