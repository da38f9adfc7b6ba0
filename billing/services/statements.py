"""Payer statements (*bordereaux*, seed 003, billing-rules §4 and §9).

From a period, or a date range for payers billed quarterly (one payer or all): for each payer of the section's association (except those whose aid is paid directly
to the beneficiary), the statement summing its issued invoices of the period not yet on a statement —
one per payer group (*global*) or one per payer group and beneficiary (*individuel*) — plus, as
*déductions*, its credit notes on invoices already on a validated statement. « Simuler » computes
them without writing (``statements_plan``); « Créer » writes them (``statements_create``, replacing
the period's statements not yet validated); « Valider » numbers them in their own gapless series
(``statements_validate``, row-locked counter of ``issuing.next_numbers``), only those dated today or
earlier. Totals are the invoices' totals: a statement never computes an amount of its own.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from core.formats import fr_date
from core.money import ZERO, round_money
from payers.models import Payer
from residents.models import Resident

from ..models import BillingPeriod, Invoice, InvoiceLine, PaymentAllocation, Statement, StatementLine
from .issuing import next_numbers

SERIES = "statement"
DAY_UNITS = ("day", "half_day")


def format_statement_number(*, code: str, year: int, number: int) -> str:
    return f"{code}-BX-{year}-{number:06d}"


@dataclass
class PlannedLine:
    invoice: Invoice
    resident: object | None
    resident_name: str
    days: Decimal
    amount: Decimal
    is_deduction: bool = False


@dataclass
class PlannedStatement:
    payer: Payer
    payer_group: object | None
    resident: object | None
    lines: list[PlannedLine] = field(default_factory=list)

    @property
    def total(self) -> Decimal:
        return round_money(sum((line.amount for line in self.lines), ZERO))

    @property
    def beneficiaries(self) -> int:
        return len({line.resident_name for line in self.lines})

    @property
    def days(self) -> Decimal:
        return sum((line.days for line in self.lines), ZERO)

    @property
    def label(self) -> str:
        name = self.payer_group.label if self.payer_group else self.payer.name
        return f"{self.payer.code} — {name}" + (f" — {self.resident.full_name}" if self.resident else "")


def _beneficiary_rows(invoice_ids: list[int]) -> dict[int, list[tuple]]:
    """Per invoice, its beneficiaries: ``(resident_id, amount, days)``. Days are the largest number of
    day units of one product (hébergement and dependency of the same days are not added up)."""
    amounts: dict[tuple, Decimal] = defaultdict(Decimal)
    per_product: dict[tuple, Decimal] = defaultdict(Decimal)
    for row in (InvoiceLine.objects.filter(invoice_id__in=invoice_ids)
                .values("invoice_id", "resident_id", "product_id", "product__unit")
                .annotate(a=Sum("amount"), q=Sum("quantity"))):
        key = (row["invoice_id"], row["resident_id"])
        amounts[key] += row["a"]
        if row["product__unit"] in DAY_UNITS and row["a"] > 0:
            per_product[(*key, row["product_id"])] += row["q"]
    days: dict[tuple, Decimal] = defaultdict(Decimal)
    for (invoice_id, resident_id, _product), quantity in per_product.items():
        days[(invoice_id, resident_id)] = max(days[(invoice_id, resident_id)], quantity)
    rows: dict[int, list[tuple]] = defaultdict(list)
    for (invoice_id, resident_id), amount in amounts.items():
        rows[invoice_id].append((resident_id, round_money(amount), days.get((invoice_id, resident_id), ZERO)))
    return rows


def _scope(*, period: BillingPeriod | None, section, date_from: date | None, date_to: date | None, payer):
    """What a statement run covers: (section, invoice filter, the draft statements it replaces)."""
    if period is not None:
        return period.section, Q(period=period), Statement.objects.filter(period=period, status=Statement.Status.DRAFT)
    if section is None or date_from is None or date_to is None:
        raise ValidationError(_("Choisissez une période, ou une section et une plage de dates."))
    if date_to < date_from:
        raise ValidationError(_("Plage de dates invalide : le %(end)s est avant le %(start)s.") % {
            "start": fr_date(date_from), "end": fr_date(date_to)})
    drafts = Statement.objects.filter(section=section, period__isnull=True, date_from=date_from, date_to=date_to,
                                      status=Statement.Status.DRAFT)
    if payer is not None:
        drafts = drafts.filter(payer=payer)
    return section, Q(date_from__gte=date_from, date_to__lte=date_to), drafts


def statements_plan(*, period: BillingPeriod | None = None, section=None, date_from: date | None = None,
                    date_to: date | None = None, payer: Payer | None = None) -> list[PlannedStatement]:
    """The statements of the period — or of a date range (payers billed quarterly: the invoices whose
    dates lie inside it), for one payer or all — computed without writing anything (« Simuler »).
    An invoice already on a statement (other than the drafts this run replaces) is never taken again."""
    section, invoice_scope, replaced = _scope(period=period, section=section, date_from=date_from, date_to=date_to,
                                              payer=payer)
    on_statement = StatementLine.objects.exclude(statement__in=replaced)
    taken = set(on_statement.values_list("invoice_id", flat=True))
    validated = set(StatementLine.objects.filter(statement__status=Statement.Status.VALIDATED)
                    .values_list("invoice_id", flat=True))
    base = (Invoice.objects.filter(section=section, debtor_kind=Invoice.DebtorKind.PAYER,
                                   payer__paid_to_beneficiary=False)
            .exclude(status=Invoice.Status.DRAFT).exclude(pk__in=taken)
            .select_related("payer", "payer_group"))
    if payer is not None:
        base = base.filter(payer=payer)
    invoices = list(base.filter(invoice_scope, kind__in=[Invoice.Kind.INVOICE, Invoice.Kind.RAPPEL]))
    selected = {i.pk for i in invoices}
    credit_notes = [cn for cn in base.filter(kind=Invoice.Kind.CREDIT_NOTE, status=Invoice.Status.ISSUED)
                    if cn.credited_invoice_id in selected or cn.credited_invoice_id in validated]
    documents = invoices + credit_notes
    rows = _beneficiary_rows([i.pk for i in documents])
    residents = {r.pk: r for r in Resident.objects.filter(
        pk__in={resident_id for lines in rows.values() for resident_id, _a, _d in lines if resident_id})}
    plans: dict[tuple, PlannedStatement] = {}
    for invoice in sorted(documents, key=lambda i: i.number):
        individual = invoice.payer.statement_mode == Payer.StatementMode.INDIVIDUAL
        is_deduction = invoice.kind == Invoice.Kind.CREDIT_NOTE and invoice.credited_invoice_id in validated
        for resident_id, amount, days in rows.get(invoice.pk, [(None, invoice.total, ZERO)]):
            resident = residents.get(resident_id)
            key = (invoice.payer_id, invoice.payer_group_id, resident_id if individual else None)
            plan = plans.get(key)
            if plan is None:
                plan = plans[key] = PlannedStatement(payer=invoice.payer, payer_group=invoice.payer_group,
                                                     resident=resident if individual else None)
            plan.lines.append(PlannedLine(invoice=invoice, resident=resident,
                                          resident_name=resident.full_name if resident else invoice.resident_name,
                                          days=days, amount=amount, is_deduction=is_deduction))
    for plan in plans.values():
        plan.lines.sort(key=lambda ln: (ln.resident.sort_key if ln.resident else "", ln.invoice.number))
    return sorted(plans.values(), key=lambda p: (p.payer.code, p.payer_group.code if p.payer_group else "",
                                                 p.resident.sort_key if p.resident else ""))


@transaction.atomic
def statements_create(*, statement_date: date, period: BillingPeriod | None = None, section=None,
                      date_from: date | None = None, date_to: date | None = None, payer: Payer | None = None,
                      user=None) -> list[Statement]:
    """Write the statements of the period or of the date range (« Créer »), replacing the drafts of the
    same run (same period, or same range and payer)."""
    from structures.models import Section

    if period is not None:
        period = BillingPeriod.objects.select_for_update().get(pk=period.pk)
        date_from, date_to = period.start, period.end
        section = period.section
    # one statement run at a time per section (the section's row lock): a period run and a range run
    # never both take the same invoice
    Section.objects.select_for_update().filter(pk=section.pk).first()
    section, _scope_q, replaced = _scope(period=period, section=section, date_from=date_from, date_to=date_to,
                                         payer=payer)
    replaced.delete()
    created = []
    for plan in statements_plan(period=period, section=section, date_from=date_from, date_to=date_to, payer=payer):
        statement = Statement.objects.create(
            section=section, establishment=section.establishment, period=period, date_from=date_from,
            date_to=date_to, payer=plan.payer, payer_group=plan.payer_group, resident=plan.resident,
            statement_date=statement_date, total=plan.total, created_by=user)
        StatementLine.objects.bulk_create([
            StatementLine(statement=statement, invoice=line.invoice, resident=line.resident,
                          resident_name=line.resident_name[:250],
                          days=line.days, amount=line.amount, is_deduction=line.is_deduction)
            for line in plan.lines])
        created.append(statement)
    return created


@transaction.atomic
def statements_validate(*, statements, user=None, today: date | None = None) -> list[Statement]:
    """Number and validate statements (« Valider »): only statements created and dated today or
    earlier; numbers in the order of the payers' codes, one gapless series per establishment and year."""
    today = today or timezone.localdate()
    ids = [s.pk for s in statements]
    rows = list(Statement.objects.select_for_update(of=("self",)).filter(pk__in=ids)
                .select_related("payer", "establishment").order_by("statement_date", "payer__code", "pk"))
    for statement in rows:
        if statement.status != Statement.Status.DRAFT:
            raise ValidationError(_("Le bordereau %(number)s est déjà validé.") % {"number": statement.number})
        if statement.statement_date > today:
            raise ValidationError(_("Le bordereau de %(payer)s est daté du %(date)s : seuls les bordereaux datés "
                                    "d'aujourd'hui ou avant peuvent être validés.") % {
                "payer": statement.payer.code, "date": fr_date(statement.statement_date)})
    by_series = defaultdict(list)
    for statement in rows:
        by_series[(statement.establishment_id, statement.statement_date.year)].append(statement)
    now = timezone.now()
    for (_est, year), group in by_series.items():
        establishment = group[0].establishment
        numbers = next_numbers(establishment=establishment, series=SERIES, year=year, count=len(group))
        for statement, raw in zip(group, numbers):
            sequence = int(raw.rsplit("-", 1)[-1])
            statement.number = format_statement_number(code=establishment.code, year=year, number=sequence)
            statement.status = Statement.Status.VALIDATED
            statement.validated_by, statement.validated_at = user, now
            statement.save(update_fields=["number", "status", "validated_by", "validated_at"])
    return rows


def statement_settlement(statements) -> dict[int, tuple[Decimal, Decimal]]:
    """« Montant réglé » and « reste à régler » of each statement, from the allocations (§9): what
    payments put on its invoices (an invoice shared by individual statements fills its beneficiaries'
    lines in alphabetical order); a deduction counts as settled by its credit note."""
    statements = list(statements)
    lines = list(StatementLine.objects.filter(invoice__statement_lines__statement__in=statements).distinct()
                 .values("pk", "statement_id", "invoice_id", "amount", "is_deduction", "invoice__kind",
                         "resident_name").order_by("invoice_id", "resident_name", "pk"))
    invoice_ids = {ln["invoice_id"] for ln in lines if ln["invoice__kind"] != Invoice.Kind.CREDIT_NOTE}
    paid = dict(PaymentAllocation.objects.filter(invoice_id__in=invoice_ids, payment__isnull=False)
                .values("invoice_id").annotate(s=Coalesce(Sum("amount"), ZERO)).values_list("invoice_id", "s"))
    settled = defaultdict(lambda: ZERO)
    for ln in lines:
        if ln["invoice__kind"] == Invoice.Kind.CREDIT_NOTE:
            settled[ln["statement_id"]] += ln["amount"] if ln["is_deduction"] else ZERO
            continue
        available = paid.get(ln["invoice_id"], ZERO)
        share = min(available, ln["amount"]) if ln["amount"] > 0 else ZERO
        paid[ln["invoice_id"]] = available - share
        settled[ln["statement_id"]] += share
    return {s.pk: (round_money(settled[s.pk]), round_money(s.total - settled[s.pk])) for s in statements}


def statement_draft_delete(*, statement: Statement) -> None:
    if statement.status != Statement.Status.DRAFT:
        raise ValidationError(_("Un bordereau validé ne se supprime pas."))
    statement.delete()
