"""Job pages: detail, the polled htmx progress fragment, re-run, selftest; section scoping."""
import pytest
from django.urls import reverse

from core.models import Job
from core.services.jobs import job_create
from core.tasks import run_job

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    """Task messages are recorded instead of going to the broker (a dev worker might take them)."""
    calls = []
    monkeypatch.setattr(run_job, "delay", lambda job_id: calls.append(job_id))
    return calls


def _job(demo, *, alias, login, **fields):
    job = job_create(kind="core.selftest", label=f"Diagnostic {alias}", user=demo["users"][login],
                     section=demo["sections"][alias], params={"steps": 4})
    if fields:
        Job.objects.filter(pk=job.pk).update(**fields)
        job.refresh_from_db()
    return job


def test_progress_fragment_polls_while_running(client, demo):
    job = _job(demo, alias="TIL-HP", login="tilleuls", status=Job.Status.RUNNING,
               progress_current=1, progress_total=4, message="Étape 1 sur 4")
    client.force_login(demo["users"]["tilleuls"])
    response = client.get(reverse("job-progress", kwargs={"pk": job.pk}), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert f'hx-get="{reverse("job-progress", kwargs={"pk": job.pk})}"' in html
    assert 'hx-trigger="every 1s"' in html
    assert 'data-status="running"' in html
    assert 'value="25"' in html
    assert "Étape 1 sur 4" in html  # the one line says what it does (the bar shows how far)
    assert "<html" not in html  # a fragment, not a page


def test_progress_fragment_stops_polling_when_finished(client, demo):
    job = _job(demo, alias="TIL-HP", login="tilleuls", status=Job.Status.SUCCEEDED, progress_current=4,
               progress_total=4, result={"steps": 4, "message": "Le processus de travail répond."})
    client.force_login(demo["users"]["tilleuls"])
    html = client.get(reverse("job-progress", kwargs={"pk": job.pk})).content.decode()
    assert "hx-get" not in html and "hx-trigger" not in html
    assert 'data-status="succeeded"' in html
    assert 'value="100"' in html
    assert "Le processus de travail répond." in html
    assert "Relancer" not in html


def test_failed_job_shows_error_and_rerun_button(client, demo):
    job = _job(demo, alias="TIL-HP", login="tilleuls", status=Job.Status.FAILED,
               error="Le calendrier n'est pas généré.")
    client.force_login(demo["users"]["tilleuls"])
    html = client.get(reverse("job-detail", kwargs={"pk": job.pk})).content.decode()
    assert "hx-get" not in html
    assert 'role="alert"' in html and "Le calendrier n&#x27;est pas généré." in html
    assert f'action="{reverse("job-rerun", kwargs={"pk": job.pk})}"' in html


def test_job_of_another_section_is_a_404(client, demo):
    job = _job(demo, alias="VER-HP", login="verger")
    client.force_login(demo["users"]["tilleuls"])
    for name in ("job-detail", "job-progress"):
        assert client.get(reverse(name, kwargs={"pk": job.pk})).status_code == 404
    assert client.post(reverse("job-rerun", kwargs={"pk": job.pk})).status_code == 404


@pytest.mark.parametrize("login", ["verger", "direction", "admin"])
def test_job_visible_to_author_readers_and_superuser(client, demo, login):
    job = _job(demo, alias="VER-HP", login="verger")
    client.force_login(demo["users"][login])
    response = client.get(reverse("job-detail", kwargs={"pk": job.pk}))
    assert response.status_code == 200
    assert "Diagnostic VER-HP" in response.content.decode()


def test_job_without_section_only_for_its_author(client, demo):
    job = job_create(kind="core.selftest", label="Perso", user=demo["users"]["verger"])
    client.force_login(demo["users"]["tilleuls"])
    assert client.get(reverse("job-detail", kwargs={"pk": job.pk})).status_code == 404
    client.force_login(demo["users"]["verger"])
    assert client.get(reverse("job-detail", kwargs={"pk": job.pk})).status_code == 200


def test_anonymous_is_sent_to_login(client, demo):
    job = _job(demo, alias="TIL-HP", login="tilleuls")
    response = client.get(reverse("job-progress", kwargs={"pk": job.pk}))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_rerun_post_creates_and_enqueues_a_new_job(client, demo, sent, django_capture_on_commit_callbacks):
    old = _job(demo, alias="TIL-HP", login="admin", status=Job.Status.FAILED, error="Échec")
    client.force_login(demo["users"]["tilleuls"])  # clerk on TIL-HP, not the author
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("job-rerun", kwargs={"pk": old.pk}))
    new = Job.objects.exclude(pk=old.pk).get()
    assert response.status_code == 302
    assert response["Location"] == reverse("job-detail", kwargs={"pk": new.pk})
    assert (new.rerun_of, new.created_by, new.section, new.params) == (
        old, demo["users"]["tilleuls"], old.section, old.params)
    assert new.status == Job.Status.PENDING
    assert sent == [new.pk]


def test_rerun_needs_post(client, demo, sent):
    old = _job(demo, alias="TIL-HP", login="tilleuls", status=Job.Status.FAILED)
    client.force_login(demo["users"]["tilleuls"])
    assert client.get(reverse("job-rerun", kwargs={"pk": old.pk})).status_code == 405
    assert Job.objects.count() == 1 and sent == []


def test_reader_cannot_rerun(client, demo, sent):
    old = _job(demo, alias="TIL-HP", login="tilleuls", status=Job.Status.FAILED)
    client.force_login(demo["users"]["direction"])  # may read the job, may not re-run it
    assert client.get(reverse("job-detail", kwargs={"pk": old.pk})).status_code == 200
    assert client.post(reverse("job-rerun", kwargs={"pk": old.pk})).status_code == 403
    assert Job.objects.count() == 1 and sent == []


def test_revoked_author_loses_the_job_and_its_file(client, demo, settings):
    """The grants are re-checked on every request: authorship does not outlive the grant."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from structures.models import SectionAccess

    job = _job(demo, alias="VER-HP", login="verger", status=Job.Status.SUCCEEDED)
    name = default_storage.save(f"exports/{job.pk}/journal.csv", ContentFile(b"x"))
    Job.objects.filter(pk=job.pk).update(result={"file": name})
    client.force_login(demo["users"]["verger"])
    assert client.get(reverse("job-download", kwargs={"pk": job.pk})).status_code == 200
    SectionAccess.objects.filter(user=demo["users"]["verger"], section__alias="VER-HP").delete()
    for url_name in ("job-detail", "job-progress", "job-download"):
        assert client.get(reverse(url_name, kwargs={"pk": job.pk})).status_code == 404, url_name
    assert client.post(reverse("job-rerun", kwargs={"pk": job.pk})).status_code == 404


@pytest.mark.parametrize("kind, login, allowed", [
    ("imports.residents", "tilleuls", False),  # starting a residents import needs the manager role
    ("imports.residents", "admin", True),
    ("billing.generate", "tilleuls", True),
    ("billing.export_journal", "direction", True),  # a reader may export the journal
])
def test_rerun_needs_the_role_that_starting_needs(client, demo, sent, kind, login, allowed):
    old = _job(demo, alias="TIL-HP", login=login, status=Job.Status.FAILED, kind=kind)
    client.force_login(demo["users"][login])
    response = client.post(reverse("job-rerun", kwargs={"pk": old.pk}))
    assert response.status_code == (302 if allowed else 403)


def test_demoted_author_cannot_rerun(client, demo, sent):
    from structures.models import SectionAccess

    old = _job(demo, alias="TIL-HP", login="tilleuls", status=Job.Status.FAILED, kind="billing.generate")
    SectionAccess.objects.filter(user=demo["users"]["tilleuls"], section__alias="TIL-HP").update(role="reader")
    client.force_login(demo["users"]["tilleuls"])
    assert client.get(reverse("job-detail", kwargs={"pk": old.pk})).status_code == 200
    assert client.post(reverse("job-rerun", kwargs={"pk": old.pk})).status_code == 403


def test_selftest_page_starts_a_diagnostic_job(client, demo, sent, django_capture_on_commit_callbacks):
    client.force_login(demo["users"]["direction"])
    url = reverse("job-selftest")
    assert "Lancer le diagnostic" in client.get(url).content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url)
    job = Job.objects.get()
    assert response["Location"] == reverse("job-detail", kwargs={"pk": job.pk})
    assert (job.kind, job.created_by, job.status) == ("core.selftest", demo["users"]["direction"], "pending")
    assert sent == [job.pk]
    assert job.params["steps"] == 5 and job.params["delay"] > 0  # slow enough to watch the bar move


# --- Pages follow their jobs (htmx « job-finished ») ----------------------------------------------
def test_poll_that_sees_the_job_finished_fires_job_finished(client, demo):
    import json

    job = _job(demo, alias="TIL-HP", login="tilleuls", status=Job.Status.SUCCEEDED, progress_current=4,
               progress_total=4)
    client.force_login(demo["users"]["tilleuls"])
    url = reverse("job-progress", kwargs={"pk": job.pk})
    response = client.get(url, HTTP_HX_REQUEST="true")
    assert json.loads(response["HX-Trigger"]) == {
        "job-finished": {"id": job.pk, "kind": "core.selftest", "status": "succeeded"}}
    assert "HX-Trigger" not in client.get(url)  # not an htmx poll: nothing to tell
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING)
    assert "HX-Trigger" not in client.get(url, HTTP_HX_REQUEST="true")  # still running


def test_progress_block_says_it_in_one_line(client, demo):
    """Not « 27 / 27 27 / 27 facture(s) »: the job's message, or the count when it has none."""
    import re

    job = _job(demo, alias="TIL-HP", login="tilleuls", status=Job.Status.RUNNING, progress_current=27,
               progress_total=27, message="27 / 27 facture(s)")
    client.force_login(demo["users"]["tilleuls"])
    url = reverse("job-progress", kwargs={"pk": job.pk})

    def text():
        html = client.get(url, HTTP_HX_REQUEST="true").content.decode()
        return " ".join(re.sub(r"<[^>]+>", " ", html).split())

    assert text().count("27 / 27") == 1
    assert "Diagnostic TIL-HP — En cours · 27 / 27 facture(s)" in text()
    Job.objects.filter(pk=job.pk).update(message="", progress_current=3)
    assert "En cours · 3 / 27" in text()
    Job.objects.filter(pk=job.pk).update(status=Job.Status.SUCCEEDED, result={"message": "27 PDF créé(s)."})
    assert "Terminée · 27 PDF créé(s)." in text() and "27 / 27" not in text()
