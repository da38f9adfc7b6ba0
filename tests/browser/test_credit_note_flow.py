"""End to end: on an issued invoice, « Avoir total » is not pre-selected; an amount typed on one line
gives a partial credit note (the invoice stays issued); ticking « Avoir total » asks for a
confirmation showing the total before the invoice is cancelled."""
from datetime import date
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from billing.models import Invoice
from core.money import format_euros


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_partial_credit_by_default_and_full_credit_confirmed(live_server, page):
    from billing.services.generation import period_generate
    from billing.services.issuing import period_issue
    from billing.services.periods import period_create
    from demo.services.seed import demo_seed
    from structures.models import Section

    demo_seed(residents=2)
    section = Section.objects.get(alias="TIL-HP")
    period = period_create(section=section, start=date(2026, 11, 1))
    period_generate(period=period)
    period_issue(period=period, issue_date=date(2026, 12, 1))
    invoice = Invoice.objects.filter(period=period, debtor_kind="resident", status="issued").order_by("pk").first()
    line = invoice.lines.filter(amount__gt=Decimal("10")).order_by("pk").first()

    base = live_server.url
    page.goto(f"{base}/connexion/")
    page.fill("#id_username", "tilleuls")
    page.fill("#id_password", "demo")
    page.get_by_role("button", name="Se connecter").click()

    page.goto(f"{base}/s/TIL-HP/facturation/factures/{invoice.pk}/")
    full = page.locator("#credit-form input[name=full]")
    expect(full).not_to_be_checked()  # a clerk typing one amount never cancels the whole invoice
    page.fill("#credit-form input[name=reason]", "Erreur de tarif")
    page.fill(f"#credit-form input[name=credit_{line.pk}]", "10,00")
    page.get_by_role("button", name="Émettre l'avoir").click()
    credit = Invoice.objects.get(kind="credit_note", credited_invoice=invoice)
    assert credit.total == Decimal("-10.00")
    invoice.refresh_from_db()
    assert invoice.status == "issued"

    # The full credit is a deliberate choice, confirmed on a page that shows the total.
    page.goto(f"{base}/s/TIL-HP/facturation/factures/{invoice.pk}/")
    page.fill("#credit-form input[name=reason]", "Départ annulé")
    page.check("#credit-form input[name=full]")
    page.get_by_role("button", name="Émettre l'avoir").click()
    expect(page.locator("#credit-total")).to_contain_text(format_euros(invoice.total - Decimal("10.00")).lstrip("-"))
    assert Invoice.objects.filter(kind="credit_note", credited_invoice=invoice).count() == 1  # nothing yet
    page.locator("#credit-confirm button[type=submit]").first.click()
    invoice.refresh_from_db()
    assert invoice.status == "cancelled"
    assert Invoice.objects.filter(kind="credit_note", credited_invoice=invoice).count() == 2
