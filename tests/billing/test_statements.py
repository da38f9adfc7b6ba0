"""Payer statements (bordereaux): totals = invoice totals, global / individual, no statement for aid
paid to the beneficiary, gapless numbering at validation (today or earlier only), the deduction of a
credit note on an invoice of a validated statement, « montant réglé » / « reste à régler »."""
from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db.models import Sum

from billing.models import Invoice, Statement
from billing.services.generation import period_generate
from billing.services.issuing import credit_note_create, period_issue
from billing.services.payments import payment_record
from billing.services.statements import (statement_settlement, statements_create, statements_plan,
                                         statements_validate)

D = Decimal
APRIL = (date(2026, 4, 1), date(2026, 4, 30))
MAY = (date(2026, 5, 1), date(2026, 5, 31))


@pytest.fixture
def april(billing_setup):
    stays = []
    for gir in (1, 2, 3):
        stay = billing_setup.stay(gir=gir, domicile="01")
        billing_setup.apa(stay, "CD01")
        stays.append(stay)
    period = billing_setup.period(*APRIL, label="avril 2026")
    period_generate(period=period)
    period_issue(period=period, issue_date=date(2026, 5, 2))
    return period


def payer_total(period, code):
    return Invoice.objects.filter(period=period, payer__code=code).exclude(status="draft").aggregate(
        s=Sum("total"))["s"]


def test_global_statement_sums_the_payers_invoices(billing_setup, april):
    plans = statements_plan(period=april)
    assert [(p.payer.code, p.payer_group.code, p.resident) for p in plans] == [("CD01", "APA", None)]
    plan = plans[0]
    assert plan.beneficiaries == 3 and len(plan.lines) == 3  # one payer invoice, three beneficiaries
    assert plan.total == payer_total(april, "CD01") == D("1200.00")  # GIR 1-2: 16 € × 30 ; GIR 3-4: 8 € × 30
    assert plan.days == D("90")
    assert not Statement.objects.exists()  # simulating writes nothing
    statement, = statements_create(period=april, statement_date=date(2026, 5, 3))
    assert statement.total == D("1200.00") and statement.status == "draft" and statement.number == ""
    assert sum(line.amount for line in statement.lines.all()) == statement.total


def test_individual_statements_one_per_beneficiary(billing_setup, april):
    billing_setup.payers["CD01"].__class__.objects.filter(code="CD01").update(statement_mode="individual")
    created = statements_create(period=april, statement_date=date(2026, 5, 3))
    assert len(created) == 3 and all(s.resident_id for s in created)
    assert sum(s.total for s in created) == payer_total(april, "CD01")
    # creating again replaces the drafts, never doubles them
    statements_create(period=april, statement_date=date(2026, 5, 3))
    assert Statement.objects.count() == 3


def test_aid_paid_to_the_beneficiary_has_no_statement(billing_setup, april):
    billing_setup.payers["CD01"].__class__.objects.filter(code="CD01").update(paid_to_beneficiary=True)
    assert statements_plan(period=april) == []


def test_validation_numbers_gaplessly_and_refuses_future_dates(billing_setup, april):
    billing_setup.payers["CD01"].__class__.objects.filter(code="CD01").update(statement_mode="individual")
    created = statements_create(period=april, statement_date=date(2026, 5, 3))
    with pytest.raises(ValidationError, match="aujourd'hui ou avant"):
        statements_validate(statements=created, today=date(2026, 5, 2))
    assert not Statement.objects.exclude(number="").exists()
    statements_validate(statements=created[:2], today=date(2026, 5, 3))
    statements_validate(statements=created[2:], today=date(2026, 5, 3))
    numbers = sorted(Statement.objects.values_list("number", flat=True))
    assert numbers == ["EXA-BX-2026-000001", "EXA-BX-2026-000002", "EXA-BX-2026-000003"]
    with pytest.raises(ValidationError, match="déjà validé"):
        statements_validate(statements=created[:1], today=date(2026, 5, 3))
    # validated statements are kept when the period's statements are created again
    assert statements_create(period=april, statement_date=date(2026, 5, 3)) == []


def test_credit_note_on_a_validated_statement_is_deducted_on_the_next(billing_setup, april):
    first, = statements_create(period=april, statement_date=date(2026, 5, 3))
    statements_validate(statements=[first], today=date(2026, 5, 3))
    invoice = Invoice.objects.filter(period=april, payer__code="CD01").order_by("number").first()
    line = invoice.lines.first()
    credit = credit_note_create(invoice=invoice, lines={line.pk: D("48.00")}, reason="3 jours",
                                issue_date=date(2026, 5, 4))
    may = billing_setup.period(*MAY, label="mai 2026")
    period_generate(period=may)
    period_issue(period=may, issue_date=date(2026, 6, 1))
    second, = statements_create(period=may, statement_date=date(2026, 6, 2))
    deduction = second.lines.get(invoice=credit)
    assert deduction.is_deduction and deduction.amount == D("-48.00")
    assert second.total == payer_total(may, "CD01") + D("-48.00")
    assert first.total == D("1200.00")  # the validated statement is unchanged


def test_credit_note_before_any_statement_nets_on_the_same_statement(billing_setup, april):
    invoice = Invoice.objects.filter(period=april, payer__code="CD01").order_by("number").first()
    credit_note_create(invoice=invoice, issue_date=date(2026, 5, 4))  # full: the invoice is cancelled
    statement, = statements_create(period=april, statement_date=date(2026, 5, 5))
    assert statement.lines.count() == 6 and not statement.lines.filter(is_deduction=True).exists()
    assert statement.total == D("1200.00") - invoice.total


def test_paid_and_left_come_from_the_allocations(billing_setup, april):
    statement, = statements_create(period=april, statement_date=date(2026, 5, 3))
    assert statement_settlement([statement]) == {statement.pk: (D("0.00"), D("1200.00"))}
    invoice = Invoice.objects.filter(period=april, payer__code="CD01").order_by("number").first()
    payment_record(section=billing_setup.section, amount=D("100.00"),
                   on=date(2026, 5, 20), mode="payer", invoice=invoice)
    assert statement_settlement([statement]) == {statement.pk: (D("100.00"), D("1100.00"))}


def test_a_validated_statement_cannot_be_deleted(billing_setup, april):
    statement, = statements_create(period=april, statement_date=date(2026, 5, 3))
    statements_validate(statements=[statement], today=date(2026, 5, 3))
    statement.refresh_from_db()
    with pytest.raises(ValidationError, match="ne se supprime pas"):
        statement.delete()
    with pytest.raises(ValidationError, match="ne se supprime pas"):
        Statement.objects.all().delete()
    assert Statement.objects.filter(pk=statement.pk).exists()
