"""A month for every section at once: ``generate_period --all-sections`` and the group job of the
tableau de bord (one job per section, aggregated in a parent job)."""
from datetime import date
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from billing.models import BillingPeriod, Invoice
from billing.services import batch
from core.models import Job
from core.services import jobs as job_services
from core.tasks import run_job
from structures.models import Section

ALIASES = ["TIL-HP", "TIL-HT", "VER-AJ", "VER-HP"]


def test_generate_period_all_sections(demo_with_residents):
    out = StringIO()
    call_command("generate_period", "--all-sections", "--month", "2026-11", "--issue",
                 "--issue-date", "2026-12-01", stdout=out)
    text = out.getvalue()
    for alias in ALIASES:
        assert f"{alias} : " in text
        assert BillingPeriod.objects.filter(section__alias=alias, start=date(2026, 11, 1)).exists()
    assert "4 section(s) sur 4 générée(s)" in text
    sections_billed = set(Invoice.objects.filter(status="issued").values_list("section__alias", flat=True))
    assert {"TIL-HP", "VER-HP", "VER-AJ"} <= sections_billed  # TIL-HT: no temporary stay in November
    assert not Invoice.objects.filter(status="draft").exists()
    # The numbers stay one gapless series per establishment.
    til = sorted(Invoice.objects.filter(establishment__code="TIL").values_list("number", flat=True))
    assert til[0] == "TIL-2026-000001" and til[-1] == f"TIL-2026-{len(til):06d}"


def test_generate_period_all_sections_reports_a_refused_section_and_goes_on(demo_with_residents):
    Section.objects.get(alias="VER-AJ").calendars.clear()  # VER-AJ cannot be generated
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError, match="Génération impossible pour : VER-AJ"):
        call_command("generate_period", "--all-sections", "--month", "2026-11", stdout=out, stderr=err)
    assert "VER-AJ : ERREUR : Aucun calendrier" in err.getvalue()
    assert "3 section(s) sur 4 générée(s)" in out.getvalue()
    assert not BillingPeriod.objects.filter(section__alias="VER-AJ").exists()  # nothing left behind
    assert Invoice.objects.filter(section__alias="VER-HP", status="draft").exists()


def test_generate_period_needs_a_section_or_all(demo):
    with pytest.raises(CommandError):
        call_command("generate_period", "--month", "2026-11")
    with pytest.raises(CommandError):
        call_command("generate_period", "--section", "TIL-HP", "--all-sections", "--month", "2026-11")


def test_group_job_runs_one_job_per_section_and_aggregates(demo_with_residents, django_capture_on_commit_callbacks):
    sections = list(Section.objects.order_by("alias"))
    with django_capture_on_commit_callbacks() as callbacks:
        parent = batch.sections_month_start(sections=sections, year=2026, month=11, action=batch.GENERATE)
    assert parent.kind == job_services.GROUP_KIND and parent.progress_total == 4
    children = list(parent.children.order_by("section__alias"))
    assert [c.section.alias for c in children] == ALIASES and all(c.kind == batch.JOB_KIND for c in children)
    assert len(callbacks) == 1  # enqueued after commit
    # Run the children as the workers would, one failing: the parent follows.
    Section.objects.filter(alias="VER-AJ").first().calendars.clear()
    for done, child in enumerate(children, start=1):
        job_services.job_run(job_id=child.pk, func=job_services.JOB_RUNNERS[child.kind])
        parent.refresh_from_db()
        assert parent.progress_current == done
        assert parent.status == (Job.Status.RUNNING if done < 4 else Job.Status.FAILED)
    assert parent.result == {"succeeded": 3, "failed": 1}
    failed = parent.children.get(status=Job.Status.FAILED)
    assert failed.section.alias == "VER-AJ" and "Aucun calendrier" in failed.error
    for alias in ["TIL-HP", "TIL-HT", "VER-HP"]:
        assert BillingPeriod.objects.get(section__alias=alias, start=date(2026, 11, 1)).generated_at
    assert Invoice.objects.filter(section__alias="VER-HP", status="draft").exists()
    # Re-running the group sends only the failed child again.
    from billing.models import Calendar

    Calendar.objects.get(code="CAL-VER").sections.add(Section.objects.get(alias="VER-AJ"))
    with django_capture_on_commit_callbacks(execute=False):
        job_services.job_group_rerun_failed(parent=parent, task=run_job)
    job_services.job_run(job_id=failed.pk, func=job_services.JOB_RUNNERS[failed.kind])
    parent.refresh_from_db()
    assert parent.status == Job.Status.SUCCEEDED and parent.result == {"succeeded": 4, "failed": 0}


def test_group_issue_job_issues_every_section(demo_with_residents):
    call_command("generate_period", "--all-sections", "--month", "2026-11", stdout=StringIO())
    sections = batch.sections_with_drafts(sections=Section.objects.all(), year=2026, month=11)
    assert {"TIL-HP", "VER-HP", "VER-AJ"} <= {s.alias for s in sections}
    parent = batch.sections_month_start(sections=sections, year=2026, month=11, action=batch.ISSUE,
                                        issue_date=date(2026, 12, 1))
    for child in parent.children.all():
        job_services.job_run(job_id=child.pk, func=job_services.JOB_RUNNERS[child.kind])
    parent.refresh_from_db()
    assert parent.status == Job.Status.SUCCEEDED, [c.error for c in parent.children.all()]
    assert not Invoice.objects.filter(status="draft").exists()
    assert Job.objects.filter(kind="billing.render_pdfs").count() == len(sections)  # each section's PDFs


def test_group_job_page_lists_the_children(client, demo_with_residents):
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.get(username="admin")
    parent = batch.sections_month_start(sections=Section.objects.all(), year=2026, month=11,
                                        action=batch.GENERATE, user=admin)
    client.force_login(admin)
    page = client.get(reverse("job-progress", kwargs={"pk": parent.pk})).content.decode()
    for alias in ALIASES:
        assert alias in page
    assert "0 sur 4 terminée(s)" in page


def test_a_section_month_reads_its_rows_once_for_the_checks_and_the_generation(demo_with_residents):
    """The pre-flight checks and the generation of the same job share one read of the period's rows
    (``billing.services.period_data.PeriodData``): each of these tables is read once, not twice."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    section = Section.objects.get(alias="TIL-HP")
    with CaptureQueriesContext(connection) as ctx:
        result = batch.section_month_generate(section=section, year=2026, month=11)
    assert result["drafts"] > 0
    reads = [q["sql"] for q in ctx.captured_queries if q["sql"].lstrip().upper().startswith("SELECT")]
    # (The checks other apps register, e.g. sepa's mandates, read what they need themselves.)
    for table in ["residents_stay", "billing_staypackage", "residents_girassessment", "billing_tariff",
                  "payers_coveragerule", "payers_socialaiddecision", "billing_calendarday"]:
        main_reads = [sql for sql in reads if f'FROM "{table}"' in sql]
        assert len(main_reads) == 1, (table, main_reads)
