"""End to end in Debian's chromium: a clerk imports the month's absences from the period screen — a file
with an error is shown line by line with Valider locked, the corrected file is accepted and the drafts
are regenerated (tasks run eagerly inside the live server)."""
from datetime import date

import pytest
from playwright.sync_api import expect

from billing.models import InvoiceLine
from imports.models import ImportRun
from residents.models import Absence
from tests.browser.conftest import screenshot_path

HEADER = ";".join(["ANNEE", "MOIS", "IDPERSONNE", "SECTION"] + [str(d) for d in range(1, 32)])


def absences_file(path, rows):
    lines = [HEADER]
    for ref, codes in rows:
        lines.append(";".join(["2026", "11", ref, "TIL-HP"] + [codes.get(d, " ") for d in range(1, 32)]))
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("cp1252"))
    return str(path)


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_clerk_imports_absences_error_then_corrected_file(live_server, page, eager_celery, tmp_path):
    from demo.services.seed import demo_seed

    demo_seed(residents=14)
    base = live_server.url
    page.goto(f"{base}/connexion/")
    page.fill("#id_username", "tilleuls")
    page.fill("#id_password", "demo")
    page.get_by_role("button", name="Se connecter").click()
    page.locator('a[data-alias="TIL-HP"]').click()
    page.get_by_role("link", name="Facturation").click()

    # Open November 2026 and generate its drafts.
    page.fill("#id_month", "2026-11")
    page.get_by_role("button", name="Ouvrir la période").click()
    expect(page.locator("h1")).to_contain_text("novembre 2026")
    page.locator("#generate").click()
    expect(page.locator("#job .job-status")).to_have_text("Terminée", timeout=20000)

    # Saisie des factures → saisie des absences.
    page.get_by_role("link", name="Saisie des absences (import)").click()
    expect(page.locator("h1")).to_contain_text("Saisie des absences (import)")
    expect(page.locator("#id_use_saved_mapping")).to_be_checked()  # demo table: 1→C, 2→H, 3→P, 4→S
    expect(page.locator("#id_mapping")).to_be_hidden()
    page.locator("#id_use_saved_mapping").uncheck()  # « décocher pour le mettre à jour »
    expect(page.locator("#id_mapping")).to_be_visible()
    page.locator("#id_use_saved_mapping").check()

    # A file with an unknown code: every line shown, the error named, Valider locked.
    bad = absences_file(tmp_path / "absences-novembre.csv",
                        [("DEMO-0001", {d: "2" for d in range(3, 13)}), ("DEMO-0002", {5: "9"}),
                         ("DEMO-0007", {})])
    page.set_input_files("#id_absences", bad)
    page.get_by_role("button", name="Lire le fichier").click()
    expect(page.locator("#error-count")).to_contain_text("1 erreur")
    expect(page.locator("#report-lines")).to_contain_text("Le code « 9 » est absent du tableau de correspondance.")
    expect(page.locator("#report-lines tbody tr")).to_have_count(3)
    expect(page.locator("#report-lines")).to_contain_text("DEMO-0007")
    expect(page.locator("#validate")).to_be_disabled()
    page.screenshot(path=str(screenshot_path("absences-import-errors.png")), full_page=True)
    assert ImportRun.objects.get().status == ImportRun.Status.REJECTED
    assert not Absence.objects.filter(source="import").exists()

    # The corrected file: no error, Valider enabled; validating creates the absences.
    good = absences_file(tmp_path / "absences-novembre-corrige.csv",
                         [("DEMO-0001", {d: "2" for d in range(3, 13)}), ("DEMO-0002", {5: "1", 6: "1"}),
                          ("DEMO-0007", {})])
    page.set_input_files("#id_absences", good)
    page.get_by_role("button", name="Lire le fichier").click()
    expect(page.locator("#no-error")).to_be_visible()
    expect(page.locator("#report-lines")).to_contain_text("Hospitalisation (H) du 03/11/2026 au 12/11/2026, 10 j")
    expect(page.locator("#validate")).to_be_enabled()
    page.locator("#validate").click()

    # The import job (validate again, write, start the regeneration of the drafts) on the run's page.
    expect(page.locator("#job .job-status")).to_have_text("Terminée", timeout=20000)
    expect(page.locator("#job")).to_contain_text("Absences de novembre 2026 importées")
    expect(page.locator("#imported")).to_be_visible()
    imported = {(a.stay.resident.external_ref, a.reason.code, a.first_day, a.last_day)
                for a in Absence.objects.filter(source="import").select_related("stay__resident", "reason")}
    assert imported == {("DEMO-0001", "H", date(2026, 11, 3), date(2026, 11, 12)),
                        ("DEMO-0002", "C", date(2026, 11, 5), date(2026, 11, 6))}
    assert ImportRun.objects.filter(status=ImportRun.Status.IMPORTED).count() == 1
    reduced = InvoiceLine.objects.filter(invoice__period__section__alias="TIL-HP", invoice__status="draft",
                                         resident__external_ref="DEMO-0001", reason="absence_hospital")
    assert reduced.order_by("date_from").first().date_from == date(2026, 11, 6)  # 4th day of the absence
