"""In chromium: a clerk prepares a reminder run, previews a letter (« loupe »), unticks a line,
validates (the job, eager here), sees the letters to post and the invoice's history."""
import io
from datetime import date

import pytest
from playwright.sync_api import expect
from pypdf import PdfReader

from reminders.models import Reminder
from structures.models import SectionAccess
from tests.billing.payment_helpers import issued_invoice, resident_in
from tests.factories import SectionAccessFactory, SectionFactory, UserFactory


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_run_preview_untick_validate_history(live_server, page, eager_celery):
    section = SectionFactory(alias="REL-HP")
    martin = resident_in(section, last_name="MARTIN")
    durand = resident_in(section, last_name="DURAND")
    a = issued_invoice(section, martin, "100.00", date(2026, 1, 5))
    b = issued_invoice(section, durand, "80.00", date(2026, 1, 6))
    SectionAccessFactory(user=UserFactory(username="relance"), section=section, role=SectionAccess.Role.CLERK)

    base = live_server.url
    page.goto(f"{base}/connexion/")
    page.fill("#id_username", "relance")
    page.fill("#id_password", "demo")
    page.get_by_role("button", name="Se connecter").click()
    page.goto(f"{base}/s/REL-HP/")
    page.locator("nav.mainnav").get_by_role("link", name="Relances").click()
    page.fill("#id_print_date", "2026-02-05")
    page.fill("#id_limit_date", "2026-02-01")
    page.get_by_role("button", name="Proposer les relances").click()
    expect(page.locator(f'tr[data-invoice="{a.number}"]')).to_contain_text("1re relance")
    expect(page.locator(f'tr[data-invoice="{b.number}"]')).to_contain_text("80,00")

    # The « loupe » of MARTIN's letter: a PDF with its invoice.
    href = page.locator("tbody.debtor", has_text="MARTIN").locator("a.loupe").get_attribute("href")
    response = page.request.get(base + href)
    assert response.ok and response.headers["content-type"] == "application/pdf"
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(response.body())).pages)
    assert a.number in text and "Relance" in text

    page.get_by_label(b.number).uncheck()
    page.locator("#validate").click()
    expect(page.locator("#job .job-status")).to_have_text("Terminée", timeout=60000)
    page.reload()
    expect(page.locator("#letters")).to_contain_text("à poster")
    expect(page.locator(f'tr[data-invoice="{b.number}"]')).to_contain_text("Non envoyée")
    assert list(Reminder.objects.filter(status="sent").values_list("invoice_id", flat=True)) == [a.pk]

    page.locator(f'tr[data-invoice="{a.number}"]').get_by_role("link", name=a.number).click()
    expect(page.locator("table.reminder-history")).to_contain_text("1re relance")
    expect(page.locator("table.reminder-history")).to_contain_text("05/02/2026")
