"""End to end: a manager opens a payer file, goes to its Bordereaux tab, opens the period's statements,
simulates and creates the statement, validates it, sees the PDF link; after a partial payment by the
payer the file shows « montant réglé » and the « reste à régler » in red."""
from datetime import date
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from billing.models import Invoice, Statement


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_manager_creates_validates_and_follows_a_statement(live_server, page):
    from billing.services.generation import period_generate
    from billing.services.issuing import period_issue
    from billing.services.payments import payment_record
    from billing.services.periods import period_create
    from demo.services.seed import demo_seed
    from payers.models import CoverageRule, Payer
    from residents.models import Stay
    from structures.models import Section

    demo_seed(residents=4)
    section = Section.objects.get(alias="TIL-HP")
    mutsan = Payer.objects.get(code="MUTSAN")
    stay = Stay.objects.filter(section=section, entry_date__lte=date(2026, 11, 1)).order_by("pk").first()
    CoverageRule.objects.create(stay=stay, payer=mutsan, scope=CoverageRule.Scope.ACCOMMODATION,
                                mode=CoverageRule.Mode.AMOUNT_PER_UNIT, value=Decimal("5.00"),
                                valid_from=date(2026, 11, 1), priority=20, decision_reference="MUT-1")
    period = period_create(section=section, start=date(2026, 11, 1))
    period_generate(period=period)
    period_issue(period=period, issue_date=date(2026, 11, 30))
    invoice = Invoice.objects.get(period=period, payer=mutsan)
    assert invoice.total == Decimal("150.00")  # 30 days × 5,00

    base = live_server.url
    page.goto(f"{base}/connexion/")
    page.fill("#id_username", "responsable")
    page.fill("#id_password", "demo")
    page.get_by_role("button", name="Se connecter").click()

    page.goto(f"{base}/s/TIL-HP/payeurs/")
    page.get_by_role("link", name="MUTSAN", exact=True).click()
    page.locator("nav.tabs a[data-tab=statements]").click()
    expect(page.locator("h1")).to_contain_text("Mutuelle Santé Plus")
    page.locator(".period-links").get_by_role("link", name=period.label).click()
    page.get_by_role("button", name="Simuler").click()
    expect(page.locator("table").first).to_contain_text("MUTSAN")
    expect(page.locator("table").first).to_contain_text("150,00")
    assert not Statement.objects.exists()  # simulating writes nothing
    page.get_by_role("button", name="Créer").click()
    expect(page.get_by_text("1 bordereau(x) créé(s).")).to_be_visible()
    statement = Statement.objects.get()
    page.locator(f"input[name=statement][value='{statement.pk}']").check()
    page.get_by_role("button", name="Valider (bordereaux datés d'aujourd'hui ou avant)").click()
    expect(page.get_by_text("1 bordereau(x) validé(s).")).to_be_visible()
    statement.refresh_from_db()
    assert statement.status == "validated" and statement.number.startswith("TIL-BX-")
    expect(page.get_by_role("link", name="PDF")).to_have_attribute(
        "href", f"/s/TIL-HP/facturation/bordereaux/{statement.pk}/pdf/")
    response = page.request.get(f"{base}/s/TIL-HP/facturation/bordereaux/{statement.pk}/pdf/")
    assert response.ok and response.body().startswith(b"%PDF")

    # the payer pays part of it: « montant réglé » and « reste à régler » (red) on its file
    payment_record(section=section, invoice=invoice, on=date(2026, 12, 1), amount=Decimal("100.00"), mode="payer")
    page.goto(f"{base}/s/TIL-HP/facturation/payeurs/{mutsan.pk}/bordereaux/")
    row = page.locator("tr", has_text=statement.number)
    expect(row).to_contain_text("100,00")
    left = row.locator("td.partial")
    expect(left).to_have_text("50,00")
    assert left.evaluate("e => getComputedStyle(e).color") == "rgb(176, 0, 32)"
    expect(page.get_by_role("columnheader", name="Reste à régler")).to_be_visible()
