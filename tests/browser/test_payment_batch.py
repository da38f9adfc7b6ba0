"""In chromium: a clerk keys three cheques on the fast-keying screen (invoice number or name, Enter,
the balance is proposed), saves the batch, sees the invoice paid and the deposit slip PDF."""
import io
from datetime import date

import pytest
from playwright.sync_api import expect
from pypdf import PdfReader

from billing.models import Invoice
from structures.models import SectionAccess
from tests.billing.payment_helpers import issued_invoice, resident_in
from tests.factories import SectionAccessFactory, SectionFactory, UserFactory


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_key_three_cheques_and_print_the_deposit_slip(live_server, page):
    section = SectionFactory(alias="CHQ-HP")
    durand = resident_in(section, last_name="DURAND")
    petit = resident_in(section, last_name="PETIT")
    c = issued_invoice(section, petit, "95.00", date(2026, 10, 2))
    a = issued_invoice(section, durand, "1850.40", date(2026, 11, 2))
    b = issued_invoice(section, petit, "2010.00", date(2026, 11, 2))
    SectionAccessFactory(user=UserFactory(username="caisse"), section=section, role=SectionAccess.Role.CLERK)

    base = live_server.url
    page.goto(f"{base}/connexion/")
    page.fill("#id_username", "caisse")
    page.fill("#id_password", "demo")
    page.get_by_role("button", name="Se connecter").click()
    page.goto(f"{base}/s/CHQ-HP/facturation/periodes/")
    page.locator("#payment-batch-link").click()

    # Line 1: the invoice number, Enter → the balance is proposed and the amount field has the focus.
    page.locator('[name="line-0-query"]').fill(a.number)
    page.keyboard.press("Enter")
    expect(page.locator('[name="line-0-amount"]')).to_have_value("1850,40")
    expect(page.locator('[name="line-0-amount"]')).to_be_focused()
    page.keyboard.press("Enter")  # next field: cheque number
    page.keyboard.type("7001001")
    page.keyboard.press("Enter")
    page.keyboard.type("Crédit Mutuel")
    page.keyboard.press("Enter")
    expect(page.locator('[name="line-0-drawer"]')).to_be_focused()
    page.keyboard.press("Enter")  # drawer proposed; on to line 2
    expect(page.locator('[name="line-1-query"]')).to_be_focused()

    # Line 2: the end of the number.
    page.keyboard.type(b.number[-3:])
    page.keyboard.press("Enter")
    expect(page.locator('[name="line-1-amount"]')).to_have_value("2010,00")
    expect(page.locator('[name="line-1-amount"]')).to_be_focused()  # focus lands after htmx settles
    page.keyboard.press("Enter")
    page.keyboard.type("7001002")

    # Line 3: a name with two open invoices → candidates; pick the older one.
    page.locator('[name="line-2-query"]').fill("petit")
    page.keyboard.press("Enter")
    page.locator("#row-2 button.candidate", has_text=c.number).click()
    expect(page.locator('[name="line-2-amount"]')).to_have_value("95,00")
    expect(page.locator('[name="line-2-amount"]')).to_be_focused()  # the row has settled
    page.locator('[name="line-2-reference"]').fill("7001003")
    page.locator('[name="line-2-bank"]').fill("LCL")
    expect(page.locator('[name="line-2-reference"]')).to_have_value("7001003")

    page.locator("#batch-save").click()
    expect(page.locator(".messages")).to_contain_text("3 règlement(s)")
    expect(page.locator("#batch-total")).to_contain_text("3\u202f955,40")

    assert Invoice.objects.get(pk=a.pk).paid_amount == a.total
    page.get_by_role("link", name=a.number).click()
    expect(page.locator("#payment-state")).to_have_text("Payée")

    page.go_back()
    href = page.locator("#deposit-slip").get_attribute("href")
    response = page.request.get(base + href)
    assert response.ok and response.headers["content-type"] == "application/pdf"
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(response.body())).pages)
    assert "Bordereau de remise de chèques" in text
    for expected in ("7001001", "7001002", "7001003", "Crédit Mutuel", "LCL", "3 955,40"):
        assert expected in text.replace("\u202f", " ").replace("\u00a0", " ")
