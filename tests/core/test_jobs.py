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


# --- Exactly once: the lease ------------------------------------------------------------------------
def _running(job, *, owner="worker-a", expires_in=60, heartbeat_ago=0):
    now = timezone.now()
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, lease_owner=owner, attempts=1,
                                         started_at=now, heartbeat_at=now - timedelta(seconds=heartbeat_ago),
                                         lease_expires_at=now + timedelta(seconds=expires_in))
    job.refresh_from_db()
    return job


def test_run_claims_a_lease_and_releases_it_when_finished():
    job = _job()
    seen = []

    def work(*, job, progress):
        row = Job.objects.get(pk=job.pk)
        seen.append((row.status, row.lease_owner, row.lease_expires_at))
        return {}

    done = job_run(job_id=job.pk, func=work, owner="host:1:abc")
    status, owner, expires = seen[0]
    assert (status, owner) == (Job.Status.RUNNING, "host:1:abc")
    assert timedelta(seconds=50) < expires - timezone.now() <= timedelta(seconds=60)
    assert done.status == Job.Status.SUCCEEDED and done.lease_expires_at is None


def test_redelivered_message_for_a_running_job_with_a_live_lease_does_nothing():
    job = _running(_job())
    again = job_run(job_id=job.pk, func=lambda **kw: pytest.fail("must not run twice"), owner="worker-b")
    assert again.status == Job.Status.RUNNING
    assert (again.lease_owner, again.attempts) == ("worker-a", 1)


def test_only_one_of_two_deliveries_claims_the_job():
    job = _job()
    assert jobs.job_claim(job_id=job.pk, owner="worker-a") is True
    assert jobs.job_claim(job_id=job.pk, owner="worker-b") is False
    job.refresh_from_db()
    assert (job.lease_owner, job.attempts) == ("worker-a", 1)


def test_a_job_whose_lease_expired_is_taken_over_by_a_redelivery():
    job = _running(_job(), expires_in=-5)
    done = job_run(job_id=job.pk, func=lambda **kw: {"ok": 1}, owner="worker-b")
    assert done.status == Job.Status.SUCCEEDED
    assert done.attempts == 2


def test_a_worker_that_lost_its_lease_stops_and_records_nothing():
    job = _job()

    def work(*, job, progress):
        progress(1, 3)
        # Meanwhile the job was taken over by another worker (this one was thought dead).
        Job.objects.filter(pk=job.pk).update(lease_owner="worker-b")
        progress(2, 3)
        pytest.fail("progress must stop a worker without the lease")

    done = job_run(job_id=job.pk, func=work, owner="worker-a")
    assert done.status == Job.Status.RUNNING and done.lease_owner == "worker-b"
    assert done.progress_current == 1 and done.finished_at is None


def test_progress_renews_the_lease():
    job = _running(_job(), owner="w", expires_in=5)
    Progress(job.pk, owner="w")(1, 2)
    job.refresh_from_db()
    assert job.lease_expires_at - timezone.now() > timedelta(seconds=50)


def test_killed_worker_job_is_failed_with_rerun_within_two_minutes():
    """The worker died right after a heartbeat: at most lease (60 s) + one beat period (60 s) later
    the job is failed with « Relancer », not « En cours » for half an hour."""
    from django.conf import settings

    job = _running(_job(), owner="dead-worker", expires_in=60)
    now = timezone.now()
    assert jobs_mark_stale(now=now + timedelta(seconds=30)) == 0
    job.refresh_from_db()
    assert job.status == Job.Status.RUNNING
    beat = settings.CELERY_BEAT_SCHEDULE["jobs-mark-stale"]["schedule"]
    assert beat <= 60 and settings.JOB_LEASE_SECONDS + beat <= 120
    assert jobs_mark_stale(now=now + timedelta(seconds=61)) == 1
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED and "Relancez-la" in job.error


def test_job_page_shows_rerun_for_a_job_of_a_killed_worker(client):
    user = UserFactory(is_superuser=True)
    job = _running(_job(user=user), expires_in=-1)
    jobs_mark_stale()
    client.force_login(user)
    html = client.get(f"/taches/{job.pk}/").content.decode()
    assert "Relancer" in html and "Échec" in html


def test_a_late_finish_of_a_job_marked_stale_records_the_real_outcome():
    job = _job()

    def work(*, job, progress):
        Job.objects.filter(pk=job.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        jobs_mark_stale()  # the beat thought the worker dead (e.g. the machine was suspended)
        return {"done": True}

    done = job_run(job_id=job.pk, func=work)
    assert done.status == Job.Status.SUCCEEDED and done.result == {"done": True}


def test_job_continue_schedules_the_next_batch_without_holding_the_worker():
    job = _job()
    scheduled = []
    batches = []

    def work(*, job, progress):
        batches.append(1)
        if len(batches) < 3:
            raise jobs.JobContinue(12.5, "Pause du serveur d'envoi")
        return {"batches": len(batches)}

    first = job_run(job_id=job.pk, func=work, reschedule=scheduled.append)
    assert scheduled == [12.5]
    assert first.status == Job.Status.RUNNING and first.lease_owner == ""
    assert first.message == "Pause du serveur d'envoi"
    assert first.lease_expires_at - timezone.now() > timedelta(seconds=60)  # not stale while waiting
    assert jobs_mark_stale() == 0
    job_run(job_id=job.pk, func=work, reschedule=scheduled.append)
    done = job_run(job_id=job.pk, func=work, reschedule=scheduled.append)
    assert done.status == Job.Status.SUCCEEDED and done.result == {"batches": 3}
    assert done.attempts == 1  # batches of one attempt


def test_run_job_task_schedules_the_next_batch_with_a_countdown(monkeypatch):
    calls = []
    monkeypatch.setitem(jobs.JOB_RUNNERS, "test.batches",
                        lambda *, job, progress: (_ for _ in ()).throw(jobs.JobContinue(30)))
    monkeypatch.setattr(run_job, "apply_async", lambda *a, **kw: calls.append((a, kw)))
    job = _job(kind="test.batches")
    run_job.run(job.pk)
    assert calls == [(((job.pk,),), {"countdown": 30.0})]


def test_run_job_is_routed_to_the_queue_of_its_kind():
    from config.celery import app

    def queue_of(kind):
        job = _job(kind=kind)
        return app.amqp.router.route({}, "core.tasks.run_job", (job.pk,), {})["queue"].name

    assert queue_of("mailing.campaign_send") == "mail"
    assert queue_of("billing.render_pdfs") == "pdf"
    assert queue_of("billing.generate") == "celery"
    assert queue_of("imports.residents") == "celery"
    assert app.amqp.router.route({}, "mailing.tasks.outbox_process_due", (), {})["queue"].name == "mail"
    # An explicit queue still wins (tests and operators).
    job = _job(kind="mailing.campaign_send")
    assert app.amqp.router.route({"queue": "other"}, "core.tasks.run_job", (job.pk,), {})["queue"].name == "other"


def test_time_limits_and_visibility_timeout_are_consistent():
    from django.conf import settings

    from config.celery import app

    assert app.conf.task_acks_late is True
    assert app.conf.task_soft_time_limit < app.conf.task_time_limit
    assert {q.name for q in app.conf.task_queues} == {"celery", "mail", "pdf"}
    assert settings.CELERY_VISIBILITY_TIMEOUT > settings.CELERY_TASK_TIME_LIMIT
    if settings.CELERY_BROKER_URL.startswith("redis://"):
        assert app.conf.broker_transport_options["visibility_timeout"] == settings.CELERY_VISIBILITY_TIMEOUT


@pytest.mark.django_db(transaction=True)
def test_heartbeat_thread_renews_the_lease_during_a_long_silent_step(settings):
    """A step that reports no progress for longer than the lease keeps its job (the lease is renewed
    every third of its length by a thread of the worker)."""
    import time

    settings.JOB_LEASE_SECONDS = 3
    job = _job()
    seen = []

    def work(*, job, progress):
        before = Job.objects.get(pk=job.pk).lease_expires_at
        time.sleep(3.5)  # longer than the lease, no progress call
        seen.append(Job.objects.get(pk=job.pk).lease_expires_at > before)
        assert jobs_mark_stale() == 0
        return {}

    done = job_run(job_id=job.pk, func=work)
    assert seen == [True]
    assert done.status == Job.Status.SUCCEEDED


def test_run_job_runs_the_batches_inline_when_eager(monkeypatch, eager_celery):
    batches = []

    def work(*, job, progress):
        batches.append(1)
        if len(batches) < 3:
            raise jobs.JobContinue(0.01)
        return {"batches": len(batches)}

    monkeypatch.setitem(jobs.JOB_RUNNERS, "test.eager", work)
    job = _job(kind="test.eager")
    run_job.apply((job.pk,))
    job.refresh_from_db()
    assert job.status == Job.Status.SUCCEEDED and job.result == {"batches": 3}
