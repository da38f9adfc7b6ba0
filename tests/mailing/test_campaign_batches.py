"""A paced campaign does not hold a worker process while it waits: each batch sends what the
association's pace allows now, then the job is scheduled again (countdown) instead of sleeping."""
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from core.models import Job
from core.services.jobs import job_create, job_run
from mailing.models import OutgoingMessage, SmtpThrottle
from mailing.services.campaigns import JOB_KIND, campaign_create, campaign_send_job
from mailing.services.outbox import message_queue
from mailing.services.throttle import SystemClock

from .servers import SmtpServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_long_sleep(monkeypatch):
    """A worker that sleeps for the pace fails the test at once (instead of holding the process)."""
    slept = []

    def sleep(self, seconds):
        slept.append(seconds)
        if seconds > 1.5:
            raise AssertionError(f"the worker slept {seconds:.1f} s for the pace")
        time.sleep(seconds)

    monkeypatch.setattr(SystemClock, "sleep", sleep)
    return slept


def _campaign(organisation, server, n=3, delay=30):
    organisation.smtp_port = server.port
    organisation.mail_delay_seconds, organisation.mail_pause_every, organisation.mail_pause_seconds = delay, 0, 0
    organisation.save()
    campaign = campaign_create(organisation=organisation, label="Novembre")
    for i in range(n):
        message_queue(organisation=organisation, sender_email="f@tilleuls.example", recipients=[f"f{i}@example.org"],
                      subject=f"Facture {i}", body="x", campaign=campaign)
    return campaign


def _account_rested():
    """Time passes: the account's next slot is now."""
    SmtpThrottle.objects.update(next_send_at=timezone.now() - timedelta(seconds=1))


def test_throttled_campaign_returns_and_schedules_its_next_batch(organisation, no_long_sleep):
    with SmtpServer() as server:
        campaign = _campaign(organisation, server)
        job = job_create(kind=JOB_KIND, label="Envoi", params={"campaign_id": campaign.pk})
        scheduled = []
        started = time.monotonic()
        first = job_run(job_id=job.pk, func=campaign_send_job, reschedule=scheduled.append)
        assert time.monotonic() - started < 10  # returned, did not wait 30 s for the next slot
        assert len(server.received) == 1
        assert first.status == Job.Status.RUNNING and first.lease_owner == ""  # the worker is free
        assert len(scheduled) == 1 and 25 <= scheduled[0] <= 30.5  # back at the next free slot
        assert first.message == "1 envoyé(s), 0 échec(s), 2 restant(s)"

        _account_rested()
        job_run(job_id=job.pk, func=campaign_send_job, reschedule=scheduled.append)
        assert len(server.received) == 2 and len(scheduled) == 2
        _account_rested()
        done = job_run(job_id=job.pk, func=campaign_send_job, reschedule=scheduled.append)
    assert len(server.received) == 3 and len(scheduled) == 2
    assert done.status == Job.Status.SUCCEEDED and done.result["sent"] == 3
    assert done.attempts == 1
    assert sorted(r.message["Subject"] for r in server.received) == ["Facture 0", "Facture 1", "Facture 2"]


def test_next_batch_does_not_recover_messages_another_worker_is_sending(organisation, no_long_sleep):
    """Only the first batch of a job recovers ``sending`` messages (left by an interrupted run)."""
    with SmtpServer() as server:
        campaign = _campaign(organisation, server)
        job = job_create(kind=JOB_KIND, label="Envoi", params={"campaign_id": campaign.pk})
        job_run(job_id=job.pk, func=campaign_send_job, reschedule=lambda countdown: None)
        busy = campaign.messages.filter(status=OutgoingMessage.Status.QUEUED).first()
        OutgoingMessage.objects.filter(pk=busy.pk).update(status=OutgoingMessage.Status.SENDING,
                                                          claimed_by="beat-worker", claimed_at=timezone.now())
        _account_rested()
        job_run(job_id=job.pk, func=campaign_send_job, reschedule=lambda countdown: None)
    busy.refresh_from_db()
    assert busy.status == OutgoingMessage.Status.SENDING and busy.claimed_by == "beat-worker"


def test_outbox_beat_task_does_not_sleep_through_a_campaign(organisation, no_long_sleep):
    from mailing.tasks import outbox_process_due

    with SmtpServer() as server:
        _campaign(organisation, server, n=4)
        started = time.monotonic()
        result = outbox_process_due.apply().get()
        assert time.monotonic() - started < 10
    assert result["sent"] == 1 and len(server.received) == 1
    assert OutgoingMessage.objects.filter(status=OutgoingMessage.Status.QUEUED).count() == 3
