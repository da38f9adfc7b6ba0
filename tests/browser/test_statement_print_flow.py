"""End to end in Debian's chromium: on a period's statements, « tout sélectionner », untick one payer,
« Imprimer la sélection »; the job runs after the page shows it (not inside the request) and the page, not
reloaded, ends with the download link of one PDF holding the ticked payers' statements in payer order."""
import io
from datetime import date

import pytest
from playwright.sync_api import expect
from pypdf import PdfReader


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_print_the_selection_and_download_it_without_reload(live_server, page, monkeypatch):
    from billing.models import Statement
    from billing.services.periods import period_create
    from core.models import Job
    from core.services.jobs import JOB_RUNNERS, job_run
    from core.tasks import run_job
    from demo.services.seed import demo_seed
    from payers.models import Payer
    from structures.models import Section

    demo_seed(residents=4)
    section = Section.objects.get(alias="TIL-HP")
    period = period_create(section=section, start=date(2026, 11, 1))
    payers = list(Payer.objects.filter(organisation=section.establishment.organisation).order_by("code")[:3])
    statements = [Statement.objects.create(section=section, establishment=section.establishment, period=period,
                                           date_from=period.start, date_to=period.end, payer=payer,
                                           statement_date=date(2026, 11, 30)) for payer in reversed(payers)]
    queued = []
    monkeypatch.setattr(run_job, "delay", lambda job_id: queued.append(job_id))  # no broker: we run it below

    base = live_server.url
    page.goto(f"{base}/connexion/")
    page.fill("#id_username", "responsable")
    page.fill("#id_password", "demo")
    page.get_by_role("button", name="Se connecter").click()
    page.goto(f"{base}/s/TIL-HP/facturation/periodes/{period.pk}/bordereaux/")
    page.get_by_label("tout sélectionner").check()
    for statement in statements:
        expect(page.locator(f"input[name=statement][value='{statement.pk}']")).to_be_checked()
    skipped = next(s for s in statements if s.payer == payers[1])
    page.locator(f"input[name=statement][value='{skipped.pk}']").uncheck()
    page.evaluate("window.notReloaded = true")
    page.get_by_role("button", name="Imprimer la sélection").click()
    expect(page.locator("#statements-print .job-status")).to_have_text("En attente")
    assert len(queued) == 1

    job = job_run(job_id=queued[0], func=JOB_RUNNERS["billing.statements_print"])  # the worker, meanwhile
    assert job.status == Job.Status.SUCCEEDED, job.error

    expect(page.locator("#statements-print .job-status")).to_have_text("Terminée", timeout=15000)
    link = page.locator("#statements-print").get_by_role("link", name="Télécharger le fichier")
    expect(link).to_be_visible()
    assert page.evaluate("window.notReloaded") is True  # followed in place, not by F5
    response = page.request.get(base + link.get_attribute("href"))
    assert response.ok
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(response.body())).pages)
    assert 0 <= text.find(payers[0].name) < text.find(payers[2].name)
    assert payers[1].name not in text
