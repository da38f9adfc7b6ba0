"""The proposal reads a constant number of queries whatever the number of invoices, debtors and
sections; over several sections it never shows another section's invoices."""
from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from billing.services import payments as pay
from reminders.models import InvoiceDispute
from reminders.services import proposal as prop
from reminders.services.runs import run_create, run_validate
from tests.billing.payment_helpers import issued_invoice, resident_in
from tests.factories import SectionFactory

pytestmark = pytest.mark.django_db


def _count(**kwargs):
    prop.proposal_rows(**kwargs)  # the delays are created on first use: not what is counted
    with CaptureQueriesContext(connection) as ctx:
        rows = prop.proposal_rows(**kwargs)
    return len(ctx.captured_queries), rows


def test_query_count_does_not_grow_with_invoices_debtors_or_history():
    section = SectionFactory()
    first = resident_in(section)
    issued_invoice(section, first, "100.00", date(2026, 1, 5))
    small, rows = _count(section=section, limit_date=date(2026, 2, 5), print_date=date(2026, 2, 5))
    assert len(rows) == 1
    # Ten more debtors, thirty more invoices, a history, a dispute, a partial payment, a credit.
    for k in range(10):
        resident = resident_in(section)
        invoices = [issued_invoice(section, resident, "80.00", date(2026, 1, 5)) for _day in range(3)]
        if k == 0:
            InvoiceDispute.objects.create(invoice=invoices[0], comment="Conteste")
        if k == 1:
            pay.payment_record(section=section, invoice=invoices[0], amount="30.00", on=date(2026, 1, 20),
                               mode="cheque")
        if k == 2:
            pay.payment_record_allocated(section=section, debtor=pay.Debtor.of(invoices[0]), amount="500.00",
                                         on=date(2026, 1, 20), mode="cheque", amounts={})
    run_validate(run=run_create(section=section, print_date=date(2026, 2, 5)))
    large, rows = _count(section=section, limit_date=date(2026, 3, 31), print_date=date(2026, 3, 31))
    assert len(rows) > 30 and {r.level for r in rows} == {1, 2}
    assert {r.exclusion for r in rows} >= {"", prop.DISPUTED, prop.CREDIT}
    assert large == small


def test_all_sections_never_show_another_sections_invoices():
    til = SectionFactory(alias="TIL-HP")
    pav = SectionFactory(alias="PAV-HP", establishment=til.establishment)
    other = SectionFactory(alias="AUT-HP")  # another association
    mine = [issued_invoice(s, resident_in(s), "100.00", date(2026, 1, 5)) for s in (til, pav)]
    foreign = issued_invoice(other, resident_in(other), "100.00", date(2026, 1, 5))
    one, rows_one = _count(sections=[til], limit_date=date(2026, 2, 5), print_date=date(2026, 2, 5))
    both, rows = _count(sections=[til, pav], limit_date=date(2026, 2, 5), print_date=date(2026, 2, 5))
    assert sorted(r.invoice.pk for r in rows) == sorted(i.pk for i in mine)
    assert foreign.pk not in {r.invoice.pk for r in rows}
    assert [r.invoice.pk for r in rows_one] == [mine[0].pk]
    assert both == one  # constant whatever the number of sections
