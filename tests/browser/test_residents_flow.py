"""End to end in Debian's chromium: log in, pick a section, create a resident, find them, no peeking."""

import pytest
from playwright.sync_api import expect

from residents.models import Resident

from tests.browser.conftest import screenshot_path

SCREENSHOT = screenshot_path("resident-list.png")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_clerk_creates_finds_and_cannot_peek(live_server, page):
    from demo.services.seed import demo_seed

    demo_seed(residents=5)
    base = live_server.url

    # Log in and pick TIL-HP in the section tree.
    page.goto(f"{base}/connexion/")
    page.fill("#id_username", "tilleuls")
    page.fill("#id_password", "demo")
    page.get_by_role("button", name="Se connecter").click()
    page.locator('a[data-alias="TIL-HP"]').click()
    expect(page).to_have_url(f"{base}/s/TIL-HP/residents/")
    expect(page.locator("h1")).to_contain_text("TIL-HP")

    # Create a resident with a relative who receives the invoices.
    page.get_by_role("link", name="Nouveau résident").click()
    page.select_option("#id_civility", "MME")
    page.fill("#id_last_name", "Navigatrice")
    page.fill("#id_first_name", "Colette")
    page.fill("#id_birth_date", "1937-09-14")
    page.fill("#id_nir", "2 37 09 69 123 456 " + f"{97 - 2370969123456 % 97:02d}")
    page.fill("#id_external_ref", "NAV-1")
    page.fill("#id_stay-entry_date", "2026-02-02")
    page.fill("#id_stay-room", "118")
    page.select_option("#id_stay-gir", "4")
    page.fill("#id_relative-last_name", "Navigatrice")
    page.fill("#id_relative-first_name", "Marc")
    page.fill("#id_relative-relationship", "FILS")
    page.fill("#id_relative-email", "marc@example.org")
    page.check("#id_relative-receives_invoices")
    page.get_by_role("button", name="Créer le résident").click()
    expect(page.locator("h1")).to_contain_text("NAVIGATRICE Colette")
    expect(page.locator(".messages")).to_contain_text("créé")

    # The list, then the search box.
    page.get_by_role("link", name="Liste des résidents").click()
    expect(page.locator("table.residents")).to_contain_text("NAVIGATRICE Colette")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    page.fill("#id_q", "naviga")
    page.get_by_role("button", name="Filtrer").click()
    rows = page.locator("table.residents tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("118")
    rows.first.get_by_role("link", name="NAVIGATRICE Colette").click()
    expect(page.locator("h1")).to_contain_text("NAVIGATRICE Colette")
    page.locator('nav.tabs a[data-tab="relatives"]').click()
    expect(page.locator("main")).to_contain_text("destinataire des factures")
    expect(page.locator("main")).to_contain_text("Marc")

    # A resident of Le Verger: not reachable, neither under its own alias nor by guessing the id.
    verger = Resident.objects.filter(stays__section__alias="VER-HP").first()
    assert verger is not None
    for alias in ("VER-HP", "TIL-HP"):
        response = page.goto(f"{base}/s/{alias}/residents/{verger.pk}/")
        assert response.status == 404, alias
        expect(page.locator("body")).not_to_contain_text(verger.last_name.upper())
