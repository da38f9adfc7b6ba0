"""« Imprimer la sélection »: the ticked statements of a period (or of the date-range page) rendered one by
one and merged, in payer order, into one PDF by a job (text read back with pypdf); the page follows the job
with the htmx progress block, which ends with the download link; another section's statement slipped into the
POST is refused with a French message; the file is refused to whoever cannot read the section; re-running
writes the same file again and changes nothing else."""
import io
from datetime import date
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.urls import reverse
from pypdf import PdfReader

from billing.models import BillingPeriod, Statement
from billing.services import statement_documents as documents
from billing.services.statements import statements_create, statements_validate
from core.models import Job
from core.services.jobs import job_rerun, job_run
from payers.models import Payer
from structures.models import SectionAccess
from tests.factories import SectionFactory, UserFactory

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def eager_celery():
    from config.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


def _text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def _file_text(job: Job) -> str:
    with default_storage.open(job.result["file"], "rb") as handle:
        return _text(handle.read())


@pytest.fixture
def april(billing_setup, april_issued):
    """April issued; the CD01 statement comes from its invoices, three more payers get one each (empty)."""
    period = april_issued
    org = billing_setup.establishment.organisation
    Payer.objects.filter(code="CD01").update(name="Conseil départemental Ain")
    Payer.objects.filter(code="CD69").update(name="Métropole Rhône")
    statement, = statements_create(period=period, statement_date=date(2026, 5, 3))
    statements_validate(statements=[statement], today=date(2026, 5, 3))
    made = {"CD01": statement}
    for code, name, kind in [("AMUT", "Mutuelle Azur", "mutual"), ("CD69", None, "departement"),
                             ("ZCAR", "Caisse Zéphyr", "pension_fund")]:
        payer = (Payer.objects.get(code=code) if name is None else
                 Payer.objects.create(organisation=org, code=code, name=name, kind=kind))
        made[code] = Statement.objects.create(section=billing_setup.section, establishment=billing_setup.establishment,
                                              period=period, date_from=period.start, date_to=period.end, payer=payer,
                                              statement_date=date(2026, 5, 3))
    return period, made


@pytest.fixture
def users(billing_setup):
    section = billing_setup.section
    other = SectionFactory(establishment=billing_setup.establishment, alias="EXA-HT")
    made = {}
    for login, role, where in [("reader", "reader", section), ("other", "manager", other)]:
        made[login] = UserFactory(username=login)
        SectionAccess.objects.create(user=made[login], section=where, role=role)
    made["both"] = UserFactory(username="both")  # clerk of both sections
    for where in (section, other):
        SectionAccess.objects.create(user=made["both"], section=where, role="clerk")
    made["other_section"] = other
    return made


def print_url(alias="EXA-HP"):
    return reverse("billing:statements-print", kwargs={"alias": alias})


def page_url(period):
    return reverse("billing:period-statements", kwargs={"alias": "EXA-HP", "period_pk": period.pk})


def test_the_job_merges_the_chosen_statements_in_payer_order(billing_setup, april, users, settings):
    period, made = april
    chosen = [made["ZCAR"].pk, made["CD01"].pk, made["AMUT"].pk]  # ticked in any order; CD69 left out
    job = documents.statements_print_start(section=billing_setup.section, statement_ids=[str(pk) for pk in chosen],
                                           period=period, user=users["reader"])
    assert job.params == {"statement_ids": [made["AMUT"].pk, made["CD01"].pk, made["ZCAR"].pk],
                          "period_id": period.pk}
    job = job_run(job_id=job.pk, func=documents.statements_print_job)
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.result["count"] == 3 and job.result["payers"] == ["AMUT", "CD01", "ZCAR"]
    assert job.progress_current == job.progress_total == 3
    assert job.result["file"] == f"exports/{job.pk}/bordereaux-EXA-HP-avril-2026.pdf"
    assert job.result["message"] == "3 bordereau(x) de 3 payeur(s) réunis dans un PDF à imprimer."
    text = _file_text(job)
    positions = [text.find(name) for name in ("Mutuelle Azur", "Conseil départemental Ain", "Caisse Zéphyr")]
    assert -1 not in positions and positions == sorted(positions), positions
    assert "Métropole Rhône" not in text
    # each statement is the one-by-one PDF: the validated one keeps its number, the others are provisional
    assert "Bordereau n° EXA-BX-2026-000001" in text and text.count("Bordereau provisoire (non validé)") == 2
    with default_storage.open(job.result["file"], "rb") as handle:
        assert len(PdfReader(handle).pages) == 3


def test_rerunning_writes_the_file_again_and_changes_nothing_else(billing_setup, april, users):
    period, made = april
    job = documents.statements_print_start(section=billing_setup.section, period=period,
                                           statement_ids=[made["CD01"].pk, made["CD69"].pk])
    before = list(Statement.objects.order_by("pk").values_list("pk", "status", "number", "total"))
    job = job_run(job_id=job.pk, func=documents.statements_print_job)
    first = _file_text(job)
    # the same job run again (a redelivered message after a crash): the same file, replaced in place
    again = documents.statements_print_job(job=job, progress=lambda *args, **kwargs: None)
    assert again["file"] == job.result["file"]
    folder = Path(default_storage.path(job.result["file"])).parent
    assert [p.name for p in folder.iterdir()] == ["bordereaux-EXA-HP-avril-2026.pdf"]  # no copy, no temp left
    # « Relancer »: a new job, its own file, the same content
    rerun = job_run(job_id=job_rerun(job=job).pk, func=documents.statements_print_job)
    assert rerun.status == Job.Status.SUCCEEDED and rerun.result["file"] != job.result["file"]
    assert _file_text(rerun) == first and "Métropole Rhône" in first
    assert list(Statement.objects.order_by("pk").values_list("pk", "status", "number", "total")) == before


def test_scope_is_checked_when_the_job_is_created_and_when_it_runs(billing_setup, april, users):
    period, made = april
    other = users["other_section"]
    foreign = Statement.objects.create(section=other, establishment=billing_setup.establishment,
                                       payer=made["AMUT"].payer, statement_date=date(2026, 5, 3),
                                       date_from=date(2026, 4, 1), date_to=date(2026, 4, 30))
    with pytest.raises(ValidationError, match=f"n° interne {foreign.pk} : inconnu\\(s\\) dans la section EXA-HP"):
        documents.statements_print_start(section=billing_setup.section, statement_ids=[made["CD01"].pk, foreign.pk])
    with pytest.raises(ValidationError, match="Cochez au moins un bordereau"):
        documents.statements_print_start(section=billing_setup.section, statement_ids=[])
    with pytest.raises(ValidationError, match="« abc » : identifiant invalide"):
        documents.statements_print_start(section=billing_setup.section, statement_ids=["abc"])
    assert not Job.objects.exists()
    # a job whose parameters name another section's statement (or one deleted since) fails, saying so
    job = Job.objects.create(kind=documents.PRINT_JOB_KIND, label="x", section=billing_setup.section,
                             params={"statement_ids": [made["CD01"].pk, foreign.pk]})
    job = job_run(job_id=job.pk, func=documents.statements_print_job)
    assert job.status == Job.Status.FAILED and "inconnu(s) dans la section EXA-HP" in job.error
    assert not job.result


def test_the_page_ticks_prints_and_follows_the_job_to_the_download(client, billing_setup, april, users, eager_celery,
                                                                   django_capture_on_commit_callbacks):
    period, made = april
    client.force_login(users["reader"])  # printing is reading: the one-by-one PDF is open to readers too
    page = client.get(page_url(period)).content.decode()
    assert 'id="statements-select-all"' in page and "tout sélectionner" in page
    assert f'name="statement" value="{made["CD69"].pk}"' in page and "Imprimer la sélection" in page
    assert 'hx-target="#statements-print"' in page and 'name="action" value="validate"' not in page  # reader
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(print_url(), {"statement": [made["ZCAR"].pk, made["AMUT"].pk], "period": period.pk},
                               **HTMX)
    assert response.status_code == 200
    job = Job.objects.get(kind=documents.PRINT_JOB_KIND)
    fragment = response.content.decode()
    # the answer is the job's progress block, which polls itself (no reload of the page)
    assert f'id="job-{job.pk}"' in fragment and reverse("job-progress", kwargs={"pk": job.pk}) in fragment
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert job.created_by == users["reader"] and job.section == billing_setup.section
    progress = client.get(reverse("job-progress", kwargs={"pk": job.pk}), **HTMX)
    download = reverse("job-download", kwargs={"pk": job.pk})
    assert download in progress.content.decode() and "Télécharger le fichier" in progress.content.decode()
    assert "job-finished" in progress["HX-Trigger"]
    pdf = b"".join(client.get(download).streaming_content)
    text = _text(pdf)
    assert text.find("Mutuelle Azur") < text.find("Caisse Zéphyr") and "Conseil départemental Ain" not in text
    # coming back to the page (or without JavaScript) shows the same block, finished, with the link
    assert download in client.get(page_url(period)).content.decode()


def test_without_javascript_the_post_comes_back_to_the_page(client, billing_setup, april, users, monkeypatch):
    from core import tasks

    monkeypatch.setattr(tasks.run_job, "delay", lambda pk: None)
    period, made = april
    client.force_login(users["both"])
    response = client.post(print_url(), {"statement": [made["CD01"].pk], "period": period.pk})
    assert response.status_code == 302 and response["Location"] == page_url(period)
    job = Job.objects.get()
    assert f'id="job-{job.pk}"' in client.get(page_url(period)).content.decode()
    # the date-range page: back to it with its query, and it follows its own print jobs only
    ranged = Statement.objects.create(section=billing_setup.section, establishment=billing_setup.establishment,
                                      payer=made["AMUT"].payer, statement_date=date(2026, 7, 3),
                                      date_from=date(2026, 4, 1), date_to=date(2026, 6, 30))
    range_url = reverse("billing:range-statements", kwargs={"alias": "EXA-HP"})
    query = "du=2026-04-01&au=2026-06-30&payeur="
    assert f'name="statement" value="{ranged.pk}"' in client.get(f"{range_url}?{query}").content.decode()
    response = client.post(print_url(), {"statement": [ranged.pk], "query": query})
    assert response.status_code == 302 and response["Location"] == f"{range_url}?{query}"
    range_job = Job.objects.latest("pk")
    assert range_job.params == {"statement_ids": [ranged.pk], "period_id": None}
    assert "plage de dates" in range_job.label
    page = client.get(f"{range_url}?{query}").content.decode()
    assert f'id="job-{range_job.pk}"' in page and f'id="job-{job.pk}"' not in page


def test_another_sections_statement_slipped_into_the_post_is_refused(client, billing_setup, april, users):
    period, made = april
    foreign = Statement.objects.create(section=users["other_section"], establishment=billing_setup.establishment,
                                       payer=made["AMUT"].payer, statement_date=date(2026, 5, 3),
                                       date_from=date(2026, 4, 1), date_to=date(2026, 4, 30))
    client.force_login(users["both"])  # may read both sections, but prints from EXA-HP
    response = client.post(print_url(), {"statement": [made["CD01"].pk, foreign.pk], "period": period.pk}, **HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'role="alert"' in html and f"n° interne {foreign.pk} : inconnu(s) dans la section EXA-HP" in html
    assert "impression refusée" in html
    response = client.post(print_url(), {"statement": [foreign.pk], "period": period.pk}, follow=True)
    assert "impression refusée" in response.content.decode()
    response = client.post(print_url(), {"period": period.pk}, follow=True)
    assert "Cochez au moins un bordereau à imprimer." in response.content.decode()
    assert not Job.objects.exists()
    # a user of another section only: the print URL of this section is a 404, nothing is started
    client.force_login(users["other"])
    assert client.post(print_url(), {"statement": [made["CD01"].pk]}).status_code == 404
    assert client.post(print_url("EXA-HT"), {"statement": [made["CD01"].pk]}, follow=True).status_code == 200
    assert not Job.objects.exists()
    # another section's period in the POST: 404
    their = BillingPeriod.objects.create(section=users["other_section"], start=date(2026, 4, 1),
                                         end=date(2026, 4, 30), accounting_date=date(2026, 4, 30), label="avril")
    client.force_login(users["both"])
    assert client.post(print_url(), {"statement": [made["CD01"].pk], "period": their.pk}).status_code == 404


def test_the_file_is_refused_to_who_cannot_read_the_section(client, billing_setup, april, users):
    period, made = april
    job = documents.statements_print_start(section=billing_setup.section, period=period,
                                           statement_ids=[made["CD01"].pk], user=users["reader"])
    job = job_run(job_id=job.pk, func=documents.statements_print_job)
    download = reverse("job-download", kwargs={"pk": job.pk})
    client.force_login(users["both"])
    assert client.get(download).status_code == 200
    client.force_login(users["other"])  # manager, but of EXA-HT only
    assert client.get(download).status_code == 404
    assert client.get(reverse("job-progress", kwargs={"pk": job.pk})).status_code == 404
    client.force_login(users["reader"])  # its author, once the access to the section is withdrawn
    SectionAccess.objects.filter(user=users["reader"]).delete()
    assert client.get(download).status_code == 404
    client.logout()
    assert client.get(download).status_code == 302  # to the login page
    # a reader may start it again (« Relancer ») like they started it; a user without the section may not
    SectionAccess.objects.create(user=users["reader"], section=billing_setup.section, role="reader")
    client.force_login(users["reader"])
    Job.objects.filter(pk=job.pk).update(status=Job.Status.FAILED)
    assert client.post(reverse("job-rerun", kwargs={"pk": job.pk})).status_code == 302
    client.force_login(users["other"])
    assert client.post(reverse("job-rerun", kwargs={"pk": job.pk})).status_code == 404
