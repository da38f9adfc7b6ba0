"""Statements over a date range (payers billed quarterly): totals = the invoice totals over the range,
one payer or all, an invoice is never on two statements (period ↔ range, range ↔ range), the same
simulate → create → validate → PDF → send flow in the browser, and the refusals."""
import io
from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db.models import Sum
from django.urls import reverse
from pypdf import PdfReader

from billing.models import Invoice, Statement, StatementLine
from billing.services.generation import period_generate
from billing.services.issuing import period_issue
from billing.services.statements import statements_create, statements_plan, statements_validate
from structures.models import SectionAccess
from tests.factories import UserFactory

D = Decimal
Q2 = (date(2026, 4, 1), date(2026, 6, 30))


@pytest.fixture
def quarter(billing_setup):
    for gir in (1, 3):
        stay = billing_setup.stay(gir=gir, domicile="01")
        billing_setup.apa(stay, "CD01")
    periods = []
    for month, end, issued in [(4, 30, date(2026, 5, 2)), (5, 31, date(2026, 6, 2)), (6, 30, date(2026, 7, 2))]:
        period = billing_setup.period(date(2026, month, 1), date(2026, month, end), label=f"2026-{month:02d}")
        period_generate(period=period)
        period_issue(period=period, issue_date=issued)
        periods.append(period)
    return periods


def range_total(code, start, end):
    return Invoice.objects.filter(payer__code=code, date_from__gte=start, date_to__lte=end).exclude(
        status="draft").aggregate(s=Sum("total"))["s"]


def test_range_statement_sums_the_payers_invoices_of_the_quarter(billing_setup, quarter):
    cd01 = billing_setup.payers["CD01"]
    plans = statements_plan(section=billing_setup.section, date_from=Q2[0], date_to=Q2[1], payer=cd01)
    assert len(plans) == 1 and plans[0].payer == cd01
    assert plans[0].total == range_total("CD01", *Q2) and plans[0].total > 0
    assert len({ln.invoice.pk for ln in plans[0].lines}) == 3  # one payer invoice per month
    statement, = statements_create(section=billing_setup.section, date_from=Q2[0], date_to=Q2[1], payer=cd01,
                                   statement_date=date(2026, 7, 3))
    assert statement.period is None and (statement.date_from, statement.date_to) == Q2
    assert statement.total == range_total("CD01", *Q2) == sum(ln.amount for ln in statement.lines.all())
    assert statement.period_label == "du 01/04/2026 au 30/06/2026"
    # a shorter range inside: only the months it contains
    may = statements_plan(section=billing_setup.section, date_from=date(2026, 5, 1), date_to=date(2026, 5, 31))
    assert may == []  # already on the quarter's statement
    # creating again replaces the draft, never doubles it
    statements_create(section=billing_setup.section, date_from=Q2[0], date_to=Q2[1], payer=cd01,
                      statement_date=date(2026, 7, 3))
    assert Statement.objects.count() == 1
    statements_validate(statements=Statement.objects.all(), today=date(2026, 7, 3))
    assert Statement.objects.get().number == "EXA-BX-2026-000001"


def test_an_invoice_is_never_on_two_statements(billing_setup, quarter):
    april, may, june = quarter
    cd01 = billing_setup.payers["CD01"]
    april_statement, = statements_create(period=april, statement_date=date(2026, 5, 3))
    # the range leaves April's invoice to the period's (draft) statement
    range_statement, = statements_create(section=billing_setup.section, date_from=Q2[0], date_to=Q2[1],
                                         payer=cd01, statement_date=date(2026, 7, 3))
    assert range_statement.total == range_total("CD01", date(2026, 5, 1), Q2[1])
    # and the period's statements, created again, do not take what the range statement holds
    assert statements_create(period=may, statement_date=date(2026, 6, 3)) == []
    statements_create(period=april, statement_date=date(2026, 5, 3))
    lines = StatementLine.objects.values_list("invoice_id", "resident_id")
    assert len(lines) == len(set(lines))
    invoice_statements = {}
    for invoice_id, statement_id in StatementLine.objects.values_list("invoice_id", "statement_id"):
        invoice_statements.setdefault(invoice_id, set()).add(statement_id)
    assert all(len(ids) == 1 for ids in invoice_statements.values())
    assert sum(Statement.objects.values_list("total", flat=True)) == range_total("CD01", *Q2)


def test_a_range_statement_of_one_payer_leaves_the_others(billing_setup, quarter):
    cd01 = billing_setup.payers["CD01"]
    other = billing_setup.payers["CD69"]
    assert statements_create(section=billing_setup.section, date_from=Q2[0], date_to=Q2[1], payer=other,
                             statement_date=date(2026, 7, 3)) == []
    statement, = statements_create(section=billing_setup.section, date_from=Q2[0], date_to=Q2[1], payer=None,
                                   statement_date=date(2026, 7, 3))
    assert statement.payer == cd01


def test_an_inverted_range_is_refused_in_french(billing_setup):
    with pytest.raises(ValidationError, match="Plage de dates invalide : le 01/04/2026 est avant le 30/06/2026"):
        statements_plan(section=billing_setup.section, date_from=Q2[1], date_to=Q2[0])


@pytest.fixture
def users(billing_setup):
    made = {}
    for login, role in [("clerk", "clerk"), ("reader", "reader")]:
        made[login] = UserFactory(username=login)
        SectionAccess.objects.create(user=made[login], section=billing_setup.section, role=role)
    return made


def test_range_statements_in_the_browser(client, billing_setup, quarter, users):
    cd01 = billing_setup.payers["CD01"]
    url = reverse("billing:range-statements", kwargs={"alias": "EXA-HP"})
    query = {"payeur": cd01.pk, "du": "2026-04-01", "au": "2026-06-30"}
    client.force_login(users["reader"])
    page = client.get(url, {**query, "simuler": "1"}).content.decode()
    assert "Simulation" in page and "CD01" in page
    assert client.post(url, {**query, "statement_date": "2026-07-03", "action": "create"}).status_code == 403
    client.force_login(users["clerk"])
    bad = client.post(url, {**query, "au": "2026-03-01", "statement_date": "2026-07-03", "action": "create"})
    assert "La date de fin (01/03/2026) est avant la date de début (01/04/2026)" in bad.content.decode()
    response = client.post(url, {**query, "statement_date": "2026-07-03", "action": "create"})
    assert response.status_code == 302 and "du=2026-04-01" in response["Location"]
    statement = Statement.objects.get()
    page = client.get(response["Location"]).content.decode()
    assert "du 01/04/2026 au 30/06/2026" in page
    client.post(url, {"statement": statement.pk, "action": "validate", "query": "du=2026-04-01&au=2026-06-30"})
    statement.refresh_from_db()
    assert statement.status == "validated"
    pdf = client.get(reverse("billing:statement-pdf", kwargs={"alias": "EXA-HP", "pk": statement.pk}))
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert statement.number in text and "du 01/04/2026 au 30/06/2026" in text
    export = client.get(reverse("billing:range-statements-export", kwargs={"alias": "EXA-HP"}), query)
    from openpyxl import load_workbook

    rows = list(load_workbook(io.BytesIO(export.content)).active.iter_rows(values_only=True))
    assert rows[0][0] == "BORDEREAU" and {r[0] for r in rows[1:]} == {statement.number}
    assert D(str(rows[1][11])) == statement.total
    bad = client.get(reverse("billing:range-statements-export", kwargs={"alias": "EXA-HP"}), {**query, "du": "x"})
    assert bad.status_code == 302
    # the payer's Bordereaux tab links the range statement
    tab = client.get(reverse("billing:payer-statements", kwargs={"alias": "EXA-HP", "pk": cd01.pk})).content.decode()
    assert "du 01/04/2026 au 30/06/2026" in tab
