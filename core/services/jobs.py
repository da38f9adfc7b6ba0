"""Job services: create, enqueue, run (inside a Celery task), report progress, re-run.

Progress is written with single ``UPDATE`` statements so that the browser sees it while the
job runs; a service that must be all-or-nothing keeps its own ``transaction.atomic`` block and
reports progress outside it (or per committed chunk).
"""
from __future__ import annotations

import logging
import traceback
from datetime import timedelta
from typing import Any, Callable

from django.db import transaction
from django.db.models import F
from django.db.models.functions import Greatest
from django.utils import timezone
from django.utils.translation import gettext as _

from core.models import Job

logger = logging.getLogger(__name__)


class JobError(Exception):
    """An expected failure whose message (French) is shown to the user as is."""


class Progress:
    """Callable handed to services: ``progress(current, total=None, message=None)``."""

    def __init__(self, job_id: int):
        self.job_id = job_id

    def __call__(self, current: int, total: int | None = None, message: str | None = None) -> None:
        values: dict[str, Any] = {"progress_current": current, "heartbeat_at": timezone.now()}
        if total is not None:
            values["progress_total"] = total
        if message is not None:
            values["message"] = message[:300]
        Job.objects.filter(pk=self.job_id).update(**values)


def job_create(*, kind: str, label: str, user=None, section=None, params: dict | None = None) -> Job:
    return Job.objects.create(
        kind=kind, label=label[:200], created_by=user if (user and user.is_authenticated) else None,
        section=section, params=params or {},
    )


def job_enqueue(*, job: Job, task) -> Job:
    """Send ``task(job.id)`` to the broker once the surrounding transaction has committed."""
    transaction.on_commit(lambda: task.delay(job.pk))
    return job


def job_run(*, job_id: int, func: Callable[..., Any]) -> Job | None:
    """Run ``func(job=job, progress=Progress)`` for a job and record the outcome.

    Safe to call twice for the same job (a redelivered message): a finished job is left alone.
    """
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        logger.warning("job %s disappeared", job_id)
        return None
    if job.is_finished:
        return job
    now = timezone.now()
    Job.objects.filter(pk=job.pk).update(
        status=Job.Status.RUNNING, started_at=now, heartbeat_at=now, attempts=job.attempts + 1, error=""
    )
    job.refresh_from_db()
    try:
        result = func(job=job, progress=Progress(job.pk))
    except JobError as exc:
        _finish(job, Job.Status.FAILED, error=str(exc))
    except Exception as exc:  # noqa: BLE001 - recorded, never lost
        logger.exception("job %s failed", job.pk)
        _finish(
            job,
            Job.Status.FAILED,
            error=_("Erreur inattendue : %(error)s") % {"error": exc},
            detail=traceback.format_exc(),
        )
    else:
        _finish(job, Job.Status.SUCCEEDED, result=result)
    if job.parent_id:
        job_group_refresh(parent_id=job.parent_id)
    job.refresh_from_db()
    return job


def _finish(job: Job, status: str, *, result=None, error: str = "", detail: str = "") -> None:
    values: dict[str, Any] = {"status": status, "finished_at": timezone.now(), "error": error}
    if status == Job.Status.SUCCEEDED:
        values["result"] = result
        # A finished job shows a full bar; the total was written by Progress (the row, not ``job``).
        values["progress_current"] = Greatest(F("progress_current"), F("progress_total"))
    elif detail:
        values["result"] = {"traceback": detail[-4000:]}
    Job.objects.filter(pk=job.pk).update(**values)


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


def job_group_refresh(*, parent_id: int) -> Job | None:
    """Aggregate the children into the parent: progress = finished children; running while one
    is pending or running; then succeeded, or failed if any child failed (re-run the failed ones)."""
    parent = Job.objects.filter(pk=parent_id).first()
    if parent is None:
        return None
    rows = list(Job.objects.filter(parent_id=parent_id).values("status", "section_id", "error", "result"))
    counts = {status: 0 for status in Job.Status.values}
    for row in rows:
        counts[row["status"]] += 1
    finished = counts[Job.Status.SUCCEEDED] + counts[Job.Status.FAILED]
    values: dict[str, Any] = {"progress_current": finished, "progress_total": len(rows),
                              "message": _("%(done)s sur %(total)s terminée(s), %(failed)s en échec") % {
                                  "done": finished, "total": len(rows), "failed": counts[Job.Status.FAILED]}}
    if finished == len(rows):
        values["status"] = Job.Status.FAILED if counts[Job.Status.FAILED] else Job.Status.SUCCEEDED
        values["finished_at"] = parent.finished_at or timezone.now()
        values["error"] = (_("%(n)s tâche(s) en échec.") % {"n": counts[Job.Status.FAILED]}
                           if counts[Job.Status.FAILED] else "")
        values["result"] = {"succeeded": counts[Job.Status.SUCCEEDED], "failed": counts[Job.Status.FAILED]}
    elif finished or counts[Job.Status.RUNNING]:
        values["status"] = Job.Status.RUNNING
        values["started_at"] = parent.started_at or timezone.now()
        values["heartbeat_at"] = timezone.now()
    Job.objects.filter(pk=parent_id).update(**values)
    parent.refresh_from_db()
    return parent


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


def jobs_mark_stale(*, older_than: timedelta = timedelta(minutes=30)) -> int:
    """Jobs whose worker died (no heartbeat for a while) are marked failed so they can be re-run."""
    limit = timezone.now() - older_than
    return Job.objects.filter(status=Job.Status.RUNNING, heartbeat_at__lt=limit).update(
        status=Job.Status.FAILED,
        finished_at=timezone.now(),
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
