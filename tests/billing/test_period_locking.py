"""Generating while issuing: issuing takes the period's row lock as generation does."""
import threading
from datetime import date

import pytest
from django.db import connection, connections

from billing.models import Invoice, NumberSequence
from billing.services import issuing
from billing.services.generation import period_generate

APRIL = (date(2026, 4, 1), date(2026, 4, 30))


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks are only meaningful on PostgreSQL")
def test_generate_while_issuing_deletes_no_issued_invoice_and_leaves_no_gap(billing_setup, monkeypatch):
    for _ in range(5):
        billing_setup.stay(gir=6)
    period = billing_setup.period(*APRIL)
    period_generate(period=period)
    written = threading.Event()
    original = issuing._write_issued

    def slow_write(invoices):
        # The issue has numbered and written its invoices but not committed yet: let generation run now.
        original(invoices)
        written.set()
        threading.Event().wait(1.5)

    monkeypatch.setattr(issuing, "_write_issued", slow_write)
    errors = []

    def issue():
        try:
            issuing.period_issue(period=period, issue_date=date(2026, 5, 2))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    def generate():
        try:
            written.wait(10)
            period_generate(period=period)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=issue), threading.Thread(target=generate)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    issued = Invoice.objects.filter(period=period, status="issued")
    assert issued.count() == 5  # nothing the issue numbered was deleted by the generation
    numbers = sorted(issued.values_list("number", flat=True))
    assert numbers == [f"EXA-2026-{n:06d}" for n in range(1, 6)]
    assert NumberSequence.objects.get(establishment=billing_setup.establishment, kind="invoice",
                                      year=2026).last_number == 5
    assert all(inv.lines.exists() for inv in issued)
    # Generation (after the issue) drafted nothing again for the issued residents.
    assert not Invoice.objects.filter(period=period, status="draft").exists()
