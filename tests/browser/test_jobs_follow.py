"""End to end in Debian's chromium: a page follows the job it started. The job runs *after* the page
is shown (not eagerly inside the request), and when it ends the page shows its result without being
reloaded: the period's invoices and totals after a generation."""
from datetime import date

import pytest
from playwright.sync_api import expect


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_period_page_shows_the_generated_invoices_when_the_job_ends(live_server, page, monkeypatch):
    from billing.services.periods import period_create
    from core.models import Job
    from core.services.jobs import JOB_RUNNERS, job_run
    from core.tasks import run_job
    from demo.services.seed import demo_seed
    from structures.models import Section

    demo_seed(residents=4)
    period = period_create(section=Section.objects.get(alias="TIL-HP"), start=date(2026, 11, 1))
    queued = []
    monkeypatch.setattr(run_job, "delay", lambda job_id: queued.append(job_id))  # no broker: we run it below

    base = live_server.url
    page.goto(f"{base}/connexion/")
    page.fill("#id_username", "tilleuls")
    page.fill("#id_password", "demo")
    page.get_by_role("button", name="Se connecter").click()
    page.goto(f"{base}/s/TIL-HP/facturation/periodes/{period.pk}/")
    expect(page.locator("#invoices")).to_contain_text("Aucune facture")

    page.locator("#generate").click()
    expect(page.locator("#job .job-status")).to_have_text("En attente")
    assert len(queued) == 1
    page.evaluate("window.notReloaded = true")

    job = job_run(job_id=queued[0], func=JOB_RUNNERS["billing.generate"])  # the worker, meanwhile
    assert job.status == Job.Status.SUCCEEDED, job.error

    expect(page.locator("#job .job-status")).to_have_text("Terminée", timeout=15000)
    expect(page.locator("#invoices tbody tr").first).to_contain_text("brouillon", timeout=15000)
    expect(page.locator("#issue")).to_be_visible()  # the issue form came with the drafts
    expect(page.locator("#review")).not_to_contain_text("0 facture(s)")
    assert page.evaluate("window.notReloaded") is True  # updated in place, not by F5
    assert page.locator(".job-progress").count() == 1  # one progress block
