"""A real Celery worker runs a Job end to end through the configured broker.

Pass 1 of ``.ci/run`` uses the embedded default (kombu's filesystem transport under ``var/broker``),
pass 2 uses Redis (``CELERY_BROKER_URL=redis://…`` with ``REQUIRE_SERVICES=1``). The worker runs
in a thread of the test process (``celery.contrib.testing.worker.start_worker``) with the Celery
app configured from the Django settings, exactly as ``celery -A config worker`` is.

Each test run consumes from its own queue: a developer's ``./dev run`` worker, or another test
run, shares the same broker folder (or Redis database) and must not steal our messages.
"""
import os
import time
import uuid

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.db import OperationalError, connection
from kombu import Queue

from config.celery import app
from core.models import Job
from core.services.jobs import job_create
from core.tasks import run_job

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

TIMEOUT = 30


def _require_services() -> bool:
    return os.environ.get("REQUIRE_SERVICES", "") not in ("", "0", "false", "False")


@pytest.fixture(scope="module")
def queue_name():
    """A queue of our own, bound to the default exchange (no new exchange left behind)."""
    name = f"test-{uuid.uuid4().hex[:12]}"
    queue = Queue(name, exchange=app.amqp.default_queue.exchange, routing_key=name)
    app.amqp.queues.add(queue)
    yield name
    # Forget the queue: its binding (in var/broker/control/celery.exchange or a Redis set) and
    # the app's list of queues to consume from. Declaring it first tells this connection about
    # the binding so that delete() removes it.
    with app.connection_for_write() as conn:
        try:
            bound = queue(conn.default_channel)
            bound.declare()
            bound.delete()
        except Exception:  # noqa: BLE001 - best-effort cleanup
            pass
    app.amqp.queues.pop(name, None)
    app.amqp.queues._consume_from = None


@pytest.fixture
def sqlite_dirty_reads():
    """The SQLite test database lives in memory in *shared-cache* mode, where a reader's table
    lock makes a concurrent writer fail at once (no busy timeout). The test thread only reads
    while the worker runs, so let it read without taking table locks."""
    in_memory = connection.vendor == "sqlite" and connection.is_in_memory_db()
    if in_memory:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA read_uncommitted = 1")
    yield
    if in_memory:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA read_uncommitted = 0")


@pytest.fixture(scope="module")
def _worker(queue_name):
    """One worker for the module (starting and stopping one takes a few seconds).

    Remote control is off: each test worker has a new name, and its pidbox binding would stay
    behind in the broker, collecting every later broadcast (``celery inspect``, mingle…)."""
    remote_control = app.conf.worker_enable_remote_control
    app.conf.worker_enable_remote_control = False
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, queues=[queue_name],
                          shutdown_timeout=TIMEOUT) as w:
            yield w
    finally:
        app.conf.worker_enable_remote_control = remote_control


@pytest.fixture
def worker(_worker, sqlite_dirty_reads):
    return _worker


def _poll(job_id: int, *, until, timeout: float = TIMEOUT, every: float = 0.05):
    """Read the job row until ``until(job)``; returns (job, distinct progress values seen)."""
    seen = []
    deadline = time.monotonic() + timeout
    job = None
    while time.monotonic() < deadline:
        try:
            job = Job.objects.get(pk=job_id)
        except OperationalError:  # a lock held for a few microseconds: read again
            time.sleep(every)
            continue
        if not seen or seen[-1] != job.progress_current:
            seen.append(job.progress_current)
        if until(job):
            return job, seen
        time.sleep(every)
    pytest.fail(f"job {job_id} not finished after {timeout} s: {job and job.status} "
                f"{job and job.progress_current}/{job and job.progress_total} {job and job.error}")


def test_celery_app_is_configured_from_django_settings():
    assert app.conf.broker_url == settings.CELERY_BROKER_URL
    assert app.conf.broker_transport_options == settings.CELERY_BROKER_TRANSPORT_OPTIONS
    assert app.conf.task_acks_late is True
    assert "core.tasks.run_job" in app.tasks
    assert "core.tasks.jobs_mark_stale" in app.tasks
    assert app.conf.task_always_eager is False


def test_worker_runs_a_job_and_reports_progress(worker, queue_name):
    job = job_create(kind="core.selftest", label="Diagnostic", params={"steps": 3, "delay": 0.4})

    # run_job.delay(job.pk), routed to this run's own queue.
    run_job.apply_async((job.pk,), queue=queue_name)

    job, seen = _poll(job.pk, until=lambda j: j.is_finished)
    assert job.status == Job.Status.SUCCEEDED, job.error
    assert (job.progress_current, job.progress_total) == (3, 3)
    assert job.result == {"steps": 3, "message": "Le processus de travail répond."}
    assert job.attempts == 1
    assert job.started_at and job.finished_at and job.heartbeat_at
    # The browser polls while the job runs: it must see an intermediate value, not only 0 then 3.
    assert any(0 < value < 3 for value in seen), seen


def test_worker_records_a_failed_job(worker, queue_name):
    job = job_create(kind="core.does-not-exist", label="Inconnue")
    run_job.apply_async((job.pk,), queue=queue_name)
    job, _ = _poll(job.pk, until=lambda j: j.is_finished)
    assert job.status == Job.Status.FAILED
    assert "Type de tâche inconnu" in job.error


def test_worker_uses_the_configured_transport(worker):
    # The connection the running worker consumes from, not a new one.
    conn = worker.consumer.connection
    transport = conn.transport.driver_type
    if settings.CELERY_BROKER_URL.startswith("redis://"):
        assert transport == "redis"
    elif settings.CELERY_BROKER_URL.startswith("filesystem://"):
        assert transport == "filesystem"
        assert conn.transport_options["data_folder_in"] == settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]
    if _require_services():
        # Pass 2 of .ci/run: the production-like services must really be used.
        assert settings.CELERY_BROKER_URL.startswith("redis://"), settings.CELERY_BROKER_URL
        assert transport == "redis"
        assert conn.as_uri().startswith("redis://")
        assert connection.vendor == "postgresql", connection.vendor


def test_worker_runs_a_group_and_the_parent_aggregates(worker, queue_name):
    """« Générer tout » in small: the children of a group job go to the worker, the parent follows."""
    from core.services.jobs import job_group_create

    parent = job_group_create(label="Groupe", children=[
        {"kind": "core.selftest", "label": f"Diagnostic {n}", "params": {"steps": 2}} for n in range(3)])
    for child_id in parent.children.values_list("pk", flat=True):
        run_job.apply_async((child_id,), queue=queue_name)
    parent, _ = _poll(parent.pk, until=lambda j: j.is_finished)
    assert parent.status == Job.Status.SUCCEEDED, parent.error
    assert (parent.progress_current, parent.progress_total) == (3, 3)
    assert parent.result == {"succeeded": 3, "failed": 0}
    assert set(parent.children.values_list("status", flat=True)) == {Job.Status.SUCCEEDED}
