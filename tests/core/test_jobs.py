"""Job services: run, failures, re-run, redelivery and stale jobs (no worker: plain calls)."""
from datetime import timedelta

import pytest
from django.utils import timezone

from core.models import Job
from core.services import jobs
from core.services.jobs import JobError, Progress, job_create, job_enqueue, job_rerun, job_run, jobs_mark_stale
from core.tasks import jobs_mark_stale as jobs_mark_stale_task
from core.tasks import run_job
from tests.factories import SectionFactory, UserFactory

pytestmark = pytest.mark.django_db


def _job(**kwargs):
    return job_create(kind=kwargs.pop("kind", "test.kind"), label=kwargs.pop("label", "Essai"), **kwargs)


def test_job_create_defaults():
    user = UserFactory()
    section = SectionFactory()
    job = job_create(kind="core.selftest", label="x" * 250, user=user, section=section, params={"steps": 2})
    assert job.status == Job.Status.PENDING
    assert len(job.label) == 200
    assert (job.created_by, job.section, job.params) == (user, section, {"steps": 2})
    assert not job.is_finished and job.percent == 0


def test_job_create_ignores_anonymous_user():
    from django.contrib.auth.models import AnonymousUser

    assert _job(user=AnonymousUser()).created_by is None


def test_run_success_records_result_and_progress():
    job = _job()
    seen = []

    def work(*, job, progress):
        progress(0, 4, "Démarrage")
        for n in range(1, 4):  # the service stops at 3 of 4: success completes the bar
            progress(n)
            seen.append(Job.objects.get(pk=job.pk).progress_current)
        return {"count": 3}

    done = job_run(job_id=job.pk, func=work)
    assert done.status == Job.Status.SUCCEEDED
    assert done.result == {"count": 3}
    assert (done.progress_current, done.progress_total) == (4, 4)
    assert done.percent == 100
    assert done.attempts == 1
    assert done.error == ""
    assert done.started_at <= done.finished_at
    assert done.heartbeat_at is not None
    assert done.message == "Démarrage"
    assert seen == [1, 2, 3]  # each progress call is committed at once


def test_progress_truncates_message():
    job = _job()
    Progress(job.pk)(5, 10, "é" * 400)
    job.refresh_from_db()
    assert (job.progress_current, job.progress_total, len(job.message)) == (5, 10, 300)
    assert job.percent == 50


def test_job_error_message_is_kept_as_is():
    def work(*, job, progress):
        progress(1, 3)
        raise JobError("Le calendrier de mars 2026 n'est pas généré.")

    done = job_run(job_id=_job().pk, func=work)
    assert done.status == Job.Status.FAILED
    assert done.error == "Le calendrier de mars 2026 n'est pas généré."
    assert done.result is None
    assert done.finished_at is not None
    assert done.progress_current == 1  # not pushed to the total on failure


def test_unexpected_error_is_recorded_with_traceback(caplog):
    def work(*, job, progress):
        return {"x": 1 / 0}

    done = job_run(job_id=_job().pk, func=work)
    assert done.status == Job.Status.FAILED
    assert done.error.startswith("Erreur inattendue : ")
    assert "division by zero" in done.error
    assert "ZeroDivisionError" in done.result["traceback"]
    assert any("failed" in r.getMessage() for r in caplog.records)


def test_rerun_creates_a_new_job_with_same_parameters():
    author, other = UserFactory(), UserFactory()
    section = SectionFactory()
    old = job_create(kind="core.selftest", label="Diagnostic", user=author, section=section, params={"steps": 2})
    job_run(job_id=old.pk, func=lambda **kw: (_ for _ in ()).throw(JobError("non")))

    new = job_rerun(job=Job.objects.get(pk=old.pk), user=other)
    assert new.pk != old.pk
    assert (new.kind, new.label, new.params, new.section) == (old.kind, old.label, old.params, section)
    assert new.rerun_of_id == old.pk
    assert new.created_by == other
    assert new.status == Job.Status.PENDING and new.attempts == 0
    old.refresh_from_db()
    assert old.status == Job.Status.FAILED  # the old one is kept for the record
    assert list(old.reruns.all()) == [new]
    # Without a user the author of the original is kept.
    assert job_rerun(job=old).created_by == author


def test_finished_job_is_not_run_again_on_redelivery():
    job = _job()
    calls = []

    def work(*, job, progress):
        calls.append(job.pk)
        return {"n": len(calls)}

    job_run(job_id=job.pk, func=work)
    again = job_run(job_id=job.pk, func=work)  # the broker delivered the message twice
    assert calls == [job.pk]
    assert again.status == Job.Status.SUCCEEDED
    assert again.result == {"n": 1}
    assert again.attempts == 1


def test_failed_job_is_not_run_again_either():
    job = _job()
    job_run(job_id=job.pk, func=lambda **kw: (_ for _ in ()).throw(JobError("non")))
    called = []
    job_run(job_id=job.pk, func=lambda **kw: called.append(1))
    assert called == []


def test_run_of_a_missing_job_does_nothing():
    assert job_run(job_id=987654, func=lambda **kw: pytest.fail("must not run")) is None


def test_stale_running_jobs_are_marked_failed():
    now = timezone.now()
    stale = _job()
    fresh = _job()
    pending = _job()
    Job.objects.filter(pk=stale.pk).update(status=Job.Status.RUNNING, heartbeat_at=now - timedelta(minutes=31))
    Job.objects.filter(pk=fresh.pk).update(status=Job.Status.RUNNING, heartbeat_at=now - timedelta(minutes=5))

    assert jobs_mark_stale() == 1
    stale.refresh_from_db(), fresh.refresh_from_db(), pending.refresh_from_db()
    assert stale.status == Job.Status.FAILED
    assert "Relancez-la" in stale.error
    assert stale.finished_at is not None
    assert fresh.status == Job.Status.RUNNING
    assert pending.status == Job.Status.PENDING

    assert jobs_mark_stale(older_than=timedelta(minutes=1)) == 1
    fresh.refresh_from_db()
    assert fresh.status == Job.Status.FAILED


def test_mark_stale_task_calls_the_service():
    job = _job()
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING,
                                         heartbeat_at=timezone.now() - timedelta(hours=2))
    assert jobs_mark_stale_task.apply().get() == 1


def test_run_job_task_runs_the_registered_runner():
    job = job_create(kind="core.selftest", label="Diagnostic", params={"steps": 3})
    run_job.apply((job.pk,))
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED
    assert (job.progress_current, job.progress_total) == (3, 3)
    assert job.result == {"steps": 3, "message": "Le processus de travail répond."}


def test_run_job_task_unknown_kind_fails_clearly():
    job = _job(kind="nope.unknown")
    run_job.apply((job.pk,))
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert job.error == "Type de tâche inconnu : nope.unknown"


def test_run_job_task_missing_job_is_ignored():
    run_job.apply((123456,))  # no exception


def test_register_job_runner(monkeypatch):
    monkeypatch.setitem(jobs.JOB_RUNNERS, "test.double", lambda *, job, progress: {"double": job.params["n"] * 2})
    job = _job(kind="test.double", params={"n": 21})
    run_job.apply((job.pk,))
    job.refresh_from_db()
    assert job.result == {"double": 42}


def test_enqueue_sends_the_task_only_after_commit(django_capture_on_commit_callbacks):
    sent = []

    class FakeTask:
        def delay(self, job_id):
            sent.append(job_id)

    job = _job()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert job_enqueue(job=job, task=FakeTask()) is job
        assert sent == []  # not yet: the worker could not see the row
    assert len(callbacks) == 1
    assert sent == [job.pk]
