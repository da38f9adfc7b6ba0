"""Job services: create, enqueue, run (inside a Celery task), report progress, re-run.

Progress is written with single ``UPDATE`` statements so that the browser sees it while the
job runs; a service that must be all-or-nothing keeps its own ``transaction.atomic`` block and
reports progress outside it (or per committed chunk).

A job's own bookkeeping (claim, progress, heartbeat, outcome, group totals) is written with
``core.db.bookkeeping`` (no wait for the disk on PostgreSQL): losing the last of those writes in a
database crash is recovered by the lease and the redelivered message, while the work itself (the
services' transactions) stays durable.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
import uuid
from datetime import datetime, timedelta
from typing import Any, Callable

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Q, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone
from django.utils.translation import gettext as _

from core.db import bookkeeping
from core.models import Job

logger = logging.getLogger(__name__)


class JobError(Exception):
    """An expected failure whose message (French) is shown to the user as is."""


class JobLeaseLost(Exception):
    """This worker no longer owns the job (it was taken over or marked failed): stop working."""


class JobContinue(Exception):
    """Raised by a runner that has done one batch and wants the rest to run ``countdown`` seconds
    later (instead of sleeping in the worker): the job stays running, its lease is released and
    the task is scheduled again (``reschedule``)."""

    def __init__(self, countdown: float, message: str | None = None):
        super().__init__(message or "")
        self.countdown = max(0.0, float(countdown))
        self.message = message


def lease_seconds() -> int:
    """How long a worker's claim on a job lasts without a heartbeat (setting ``JOB_LEASE_SECONDS``)."""
    return int(getattr(settings, "JOB_LEASE_SECONDS", 60))


def new_lease_owner() -> str:
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


class Progress:
    """Callable handed to services: ``progress(current, total=None, message=None)``.

    Each call also renews the lease of the worker that runs the job (heartbeat); if the lease
    was lost meanwhile (job taken over, or marked failed as stale) it raises ``JobLeaseLost``."""

    def __init__(self, job_id: int, owner: str | None = None, clock: Callable[[], datetime] | None = None):
        self.job_id = job_id
        self.owner = owner
        self.clock = clock or timezone.now

    def __call__(self, current: int, total: int | None = None, message: str | None = None) -> None:
        now = self.clock()
        values: dict[str, Any] = {"progress_current": current, "heartbeat_at": now}
        if total is not None:
            values["progress_total"] = total
        if message is not None:
            values["message"] = message[:300]
        rows = Job.objects.filter(pk=self.job_id)
        if self.owner is not None:
            values["lease_expires_at"] = now + timedelta(seconds=lease_seconds())
            rows = rows.filter(lease_owner=self.owner, status=Job.Status.RUNNING)
        with bookkeeping():
            updated = rows.update(**values)
        if not updated and self.owner is not None:
            raise JobLeaseLost(self.job_id)


class _Heartbeat(threading.Thread):
    """Renews the lease every third of its length while a long step reports no progress.
    It writes nothing before the first interval (short jobs never touch the row from here)."""

    def __init__(self, job_id: int, owner: str):
        super().__init__(name=f"job-{job_id}-heartbeat", daemon=True)
        self.job_id, self.owner = job_id, owner
        self.stopped = threading.Event()

    def run(self) -> None:
        from django.db import connection

        interval = max(1.0, lease_seconds() / 3)
        try:
            while not self.stopped.wait(interval):
                now = timezone.now()
                try:
                    with bookkeeping():
                        Job.objects.filter(pk=self.job_id, lease_owner=self.owner,
                                           status=Job.Status.RUNNING).update(
                            heartbeat_at=now, lease_expires_at=now + timedelta(seconds=lease_seconds()))
                except Exception:  # noqa: BLE001 - a missed beat is retried at the next interval
                    logger.warning("job %s: lease renewal failed", self.job_id, exc_info=True)
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopped.set()


def job_create(*, kind: str, label: str, user=None, section=None, params: dict | None = None) -> Job:
    return Job.objects.create(
        kind=kind, label=label[:200], created_by=user if (user and user.is_authenticated) else None,
        section=section, params=params or {},
    )


def job_enqueue(*, job: Job, task) -> Job:
    """Send ``task(job.id)`` to the broker once the surrounding transaction has committed.
    The queue is chosen by ``core.routing.route_task`` from the job's kind (``JOB_QUEUES``)."""
    transaction.on_commit(lambda: task.delay(job.pk))
    return job


def job_claim(*, job_id: int, owner: str, now: datetime | None = None) -> bool:
    """Take the job for ``owner`` with one conditional UPDATE: only a pending job, a running job
    waiting for its next batch (no owner) or a running job whose lease expired can be taken.
    Two deliveries of the same message: exactly one of them wins."""
    now = now or timezone.now()
    values = dict(status=Job.Status.RUNNING, heartbeat_at=now, lease_owner=owner,
                  lease_expires_at=now + timedelta(seconds=lease_seconds()), error="")
    rows = Job.objects.filter(pk=job_id)
    # A new attempt: a pending job, or a running one whose worker's lease expired (taken over).
    fresh = Q(status=Job.Status.PENDING) | (Q(status=Job.Status.RUNNING, lease_expires_at__lt=now)
                                            & ~Q(lease_owner=""))
    with bookkeeping():
        claimed = rows.filter(fresh).update(**values, attempts=F("attempts") + 1,
                                            started_at=Coalesce(F("started_at"), Value(now)))
        if not claimed:  # the next batch of a job that was scheduled again (``JobContinue``)
            claimed = rows.filter(status=Job.Status.RUNNING, lease_owner="").update(**values)
    return bool(claimed)


def job_run(*, job_id: int, func: Callable[..., Any], owner: str | None = None,
            reschedule: Callable[[float], Any] | None = None) -> Job | None:
    """Run ``func(job=job, progress=Progress)`` for a job and record the outcome.

    Exactly once: the job is first claimed (``job_claim``); a redelivered message for a finished
    job, or for a job another worker holds a live lease on, does nothing. A runner raising
    ``JobContinue`` is scheduled again through ``reschedule(countdown)``."""
    owner = owner or new_lease_owner()
    if not job_claim(job_id=job_id, owner=owner):
        job = Job.objects.filter(pk=job_id).first()
        if job is None:
            logger.warning("job %s disappeared", job_id)
        else:
            logger.info("job %s already finished or held by another worker: message ignored", job_id)
        return job
    job = Job.objects.get(pk=job_id)
    heartbeat = _Heartbeat(job.pk, owner)
    heartbeat.start()
    try:
        result = func(job=job, progress=Progress(job.pk, owner=owner))
    except JobLeaseLost:
        logger.warning("job %s: lease lost, this worker stops without recording anything", job.pk)
    except JobContinue as cont:
        _continue(job, owner, cont, reschedule)
    except JobError as exc:
        _finish(job, owner, Job.Status.FAILED, error=str(exc))
    except Exception as exc:  # noqa: BLE001 - recorded, never lost
        logger.exception("job %s failed", job.pk)
        _finish(
            job, owner,
            Job.Status.FAILED,
            error=_("Erreur inattendue : %(error)s") % {"error": exc},
            detail=traceback.format_exc(),
        )
    else:
        _finish(job, owner, Job.Status.SUCCEEDED, result=result)
    finally:
        heartbeat.stop()
    if job.parent_id:
        job_group_refresh(parent_id=job.parent_id, fetch=False)
    job.refresh_from_db()
    return job


def _continue(job: Job, owner: str, cont: JobContinue, reschedule) -> None:
    if reschedule is None:  # nobody to schedule the next batch: say so rather than hang
        _finish(job, owner, Job.Status.FAILED, error=_("Tâche interrompue : suite impossible à planifier."))
        return
    now = timezone.now()
    values: dict[str, Any] = {"lease_owner": "", "heartbeat_at": now,
                              "lease_expires_at": now + timedelta(seconds=cont.countdown + lease_seconds())}
    if cont.message:
        values["message"] = cont.message[:300]
    with bookkeeping():
        released = Job.objects.filter(pk=job.pk, lease_owner=owner, status=Job.Status.RUNNING).update(**values)
    if released:
        reschedule(cont.countdown)


def _finish(job: Job, owner: str, status: str, *, result=None, error: str = "", detail: str = "") -> None:
    values: dict[str, Any] = {"status": status, "finished_at": timezone.now(), "error": error,
                              "lease_expires_at": None}
    if status == Job.Status.SUCCEEDED:
        values["result"] = result
        # A finished job shows a full bar; the total was written by Progress (the row, not ``job``).
        values["progress_current"] = Greatest(F("progress_current"), F("progress_total"))
    elif detail:
        values["result"] = {"traceback": detail[-4000:]}
    # Only the lease holder records the outcome (a job marked stale meanwhile gets its real outcome).
    with bookkeeping():
        Job.objects.filter(pk=job.pk, lease_owner=owner).update(**values)


GROUP_KIND = "core.group"


def job_group_create(*, label: str, children: list[dict], user=None, params: dict | None = None) -> Job:
    """A parent job and its children (``{"kind", "label", "section", "params"}`` each), created
    pending; ``job_group_enqueue`` sends the children to the workers, which run them in parallel."""
    parent = job_create(kind=GROUP_KIND, label=label, user=user, params=params)
    Job.objects.bulk_create([
        Job(kind=child["kind"], label=child["label"][:200], section=child.get("section"),
            params=child.get("params") or {}, parent=parent,
            created_by=user if (user and user.is_authenticated) else None)
        for child in children])
    Job.objects.filter(pk=parent.pk).update(progress_total=len(children))
    parent.refresh_from_db()
    return parent


def job_group_enqueue(*, parent: Job, task) -> Job:
    child_ids = list(parent.children.values_list("pk", flat=True))
    transaction.on_commit(lambda: [task.delay(pk) for pk in child_ids])
    return parent


def job_group_refresh(*, parent_id: int, fetch: bool = True) -> Job | None:
    """Aggregate the children into the parent: progress = finished children; running while one
    is pending or running; then succeeded, or failed if any child failed (re-run the failed ones)."""
    # Counted in SQL: each child refreshes its parent, so reading the children's rows (their results)
    # here would cost a group of n sections n² rows.
    counts = {status: 0 for status in Job.Status.values}
    counts.update(Job.objects.filter(parent_id=parent_id).order_by().values_list("status").annotate(n=Count("pk")))
    total = sum(counts.values())
    finished = counts[Job.Status.SUCCEEDED] + counts[Job.Status.FAILED]
    values: dict[str, Any] = {"progress_current": finished, "progress_total": total,
                              "message": _("%(done)s sur %(total)s terminée(s), %(failed)s en échec") % {
                                  "done": finished, "total": total, "failed": counts[Job.Status.FAILED]}}
    if finished == total:
        values["status"] = Job.Status.FAILED if counts[Job.Status.FAILED] else Job.Status.SUCCEEDED
        values["finished_at"] = Coalesce(F("finished_at"), Value(timezone.now()))
        values["error"] = (_("%(n)s tâche(s) en échec.") % {"n": counts[Job.Status.FAILED]}
                           if counts[Job.Status.FAILED] else "")
        values["result"] = {"succeeded": counts[Job.Status.SUCCEEDED], "failed": counts[Job.Status.FAILED]}
    elif finished or counts[Job.Status.RUNNING]:
        values["status"] = Job.Status.RUNNING
        values["started_at"] = Coalesce(F("started_at"), Value(timezone.now()))
        values["heartbeat_at"] = timezone.now()
    with bookkeeping():
        if not Job.objects.filter(pk=parent_id).update(**values):
            return None
    return Job.objects.get(pk=parent_id) if fetch else None


def job_group_rerun_failed(*, parent: Job, task) -> Job:
    """Send the failed children of a group again (their services are idempotent)."""
    failed = list(parent.children.filter(status=Job.Status.FAILED).values_list("pk", flat=True))
    Job.objects.filter(pk__in=failed).update(status=Job.Status.PENDING, error="", finished_at=None)
    Job.objects.filter(pk=parent.pk).update(status=Job.Status.RUNNING, error="", finished_at=None, result=None)
    transaction.on_commit(lambda: [task.delay(pk) for pk in failed])
    return job_group_refresh(parent_id=parent.pk)


def job_rerun(*, job: Job, user=None) -> Job:
    """A new job with the same kind and parameters (the old one is kept for the record)."""
    return Job.objects.create(
        kind=job.kind, label=job.label, params=job.params, section=job.section,
        created_by=user if (user and user.is_authenticated) else job.created_by, rerun_of=job,
    )


def jobs_mark_stale(*, now: datetime | None = None, older_than: timedelta = timedelta(minutes=30)) -> int:
    """Jobs whose worker died are marked failed so they can be re-run (beat, every minute): a
    running job whose lease expired, or (rows without a lease) with no heartbeat for ``older_than``."""
    now = now or timezone.now()
    expired = Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True, heartbeat_at__lt=now - older_than)
    return Job.objects.filter(expired, status=Job.Status.RUNNING).update(
        status=Job.Status.FAILED,
        finished_at=now,
        error=_("Tâche interrompue (le processus de travail s'est arrêté). Relancez-la."),
    )


def selftest_run(*, job: Job, progress: Progress) -> dict:
    """Diagnostic job: counts to ``params['steps']`` reporting progress; proves a worker runs."""
    steps = int(job.params.get("steps", 5))
    delay = float(job.params.get("delay", 0))
    progress(0, steps, _("Démarrage"))
    import time

    for step in range(1, steps + 1):
        if delay:
            time.sleep(delay)
        progress(step, steps, _("Étape %(n)s sur %(total)s") % {"n": step, "total": steps})
    return {"steps": steps, "message": _("Le processus de travail répond.")}


JOB_RUNNERS: dict[str, Callable[..., Any]] = {"core.selftest": selftest_run}


def register_job_runner(kind: str, func: Callable[..., Any]) -> None:
    JOB_RUNNERS[kind] = func
