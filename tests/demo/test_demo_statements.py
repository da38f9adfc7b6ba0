"""``seed_demo --payments`` also builds the payer statements and the social aid of the demo: CD01
individual APA statements, a MUTSAN insurer statement and CD69 social-aid statements, validated for
October and November 2025; the 2025-T4 pocket-money settlement (one issued, one at zero); payer
payments (one statement partly paid); nothing issued in 2026; idempotent."""
from datetime import date
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from billing.models import Invoice, PocketMoneySettlement, Statement
from billing.services.statements import statement_settlement


@pytest.mark.django_db
def test_demo_statements_and_social_aid():
    out = StringIO()
    call_command("seed_demo", "--residents", "30", "--payments", stdout=out)
    assert "Bordereaux de démonstration" in out.getvalue()
    statements = Statement.objects.select_related("payer")
    by_payer = {}
    for s in statements:
        by_payer.setdefault(s.payer.code, []).append(s)
    assert {"CD01", "MUTSAN", "CD69"} <= set(by_payer)
    assert all(s.resident_id for s in by_payer["CD01"])  # individual statements
    assert all(s.resident_id is None for s in by_payer["MUTSAN"] + by_payer["CD69"])
    for code in ("CD01", "MUTSAN", "CD69"):
        assert any(s.status == "validated" and s.number for s in by_payer[code])
        assert any(s.status == "draft" for s in by_payer[code])  # December's, to validate in the demo
    assert {s.payer_group.code for s in by_payer["CD69"] if s.payer_group} >= {"ASH"}
    settlements = list(PocketMoneySettlement.objects.filter(quarter="2025-T4"))
    assert len(settlements) == 2 and sorted(s.refund > 0 for s in settlements) == [False, True]
    refund = next(s for s in settlements if s.refund > 0)
    assert refund.payer_invoice.issue_date == date(2025, 12, 31) and refund.credit_notes.count() >= 1
    assert not Invoice.objects.filter(issue_date__year=2026).exists()
    settled = statement_settlement(Statement.objects.filter(status="validated"))
    mutsan = next(s for s in by_payer["MUTSAN"] if s.period.start == date(2025, 10, 1))
    assert settled[mutsan.pk] == (mutsan.total, Decimal("0.00"))
    assert any(paid and left for paid, left in settled.values())  # a partly paid statement (in red)
    before = (Statement.objects.count(), Invoice.objects.count())
    call_command("seed_demo", "--residents", "30", "--payments", stdout=StringIO())
    assert (Statement.objects.count(), Invoice.objects.count()) == before
