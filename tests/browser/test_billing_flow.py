"""End to end in Debian's chromium: a clerk goes from an open period to issued invoices with PDFs
and an exported journal (tasks run eagerly inside the live server)."""
import pytest
from playwright.sync_api import expect

from billing.models import Invoice
from tests.browser.conftest import screenshot_path


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_clerk_generates_issues_downloads_and_exports(live_server, page, eager_celery):
    from demo.services.seed import demo_seed

    demo_seed(residents=14)
    base = live_server.url
    page.goto(f"{base}/connexion/")
    page.fill("#id_username", "tilleuls")
    page.fill("#id_password", "demo")
    page.get_by_role("button", name="Se connecter").click()
    page.locator('a[data-alias="TIL-HP"]').click()
    page.get_by_role("link", name="Facturation").click()

    # Open November 2026 and look at the pre-flight checks.
    page.fill("#id_month", "2026-11")
    page.get_by_role("button", name="Ouvrir la période").click()
    expect(page.locator("h1")).to_contain_text("novembre 2026")
    expect(page.locator("#checks")).to_be_visible()

    # Generate: a job, its progress fragment, then the drafts.
    page.locator("#generate").click()
    expect(page.locator("#job .job-status")).to_have_text("Terminée", timeout=60000)
    expect(page.locator("#invoices tbody tr").first).to_contain_text("brouillon")
    drafts = Invoice.objects.filter(status="draft", section__alias="TIL-HP").count()
    assert drafts > 0
    page.screenshot(path=str(screenshot_path("period-review.png")), full_page=True)

    # Issue (the confirmation dialog is accepted): numbers, then PDFs rendered by the job.
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#issue").click()
    # Issuing renders the PDFs inline here (eager tasks): allow for a slow, busy machine.
    expect(page.locator(".messages")).to_contain_text(f"{drafts} facture(s) émise(s)", timeout=60000)
    expect(page.locator("#invoices")).to_contain_text("TIL-2026-000001")
    assert not Invoice.objects.filter(status="issued", section__alias="TIL-HP", pdf="").exists()

    # One invoice and its PDF.
    page.get_by_role("link", name="TIL-2026-000001").click()
    expect(page.locator("h1")).to_contain_text("TIL-2026-000001")
    pdf_url = page.get_by_role("link", name="Télécharger").get_attribute("href")
    response = page.request.get(base + pdf_url)  # same session cookies as the page
    assert response.ok and response.headers["content-type"] == "application/pdf"
    assert response.body()[:5] == b"%PDF-"

    # The journal and its CSV export.
    page.go_back()
    page.get_by_role("link", name="Journal des factures").click()
    expect(page.locator("main")).to_contain_text("TIL-2026-000001")
    page.screenshot(path=str(screenshot_path("journal.png")), full_page=True)
    with page.expect_download() as download_info:
        page.get_by_role("link", name="CSV").click()
    csv_bytes = open(download_info.value.path(), "rb").read()
    assert csv_bytes.startswith("\ufeffNUMERO_FACTURE;STATUT;DEBITEUR;REF_EXTERNE;PRODUIT".encode())
    assert b"TIL-2026-000001" in csv_bytes
