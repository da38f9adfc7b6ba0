"""Which Celery queue a task goes to (``CELERY_TASK_ROUTES``).

Three queues so that slow work of one kind never waits behind another: ``mail`` (campaign
sending, the outbox safety net), ``pdf`` (invoice PDF rendering) and the default queue
(``CELERY_TASK_DEFAULT_QUEUE``: generation, imports, exports, maintenance). ``run_job`` carries
only a job id: its queue comes from the job's kind through ``settings.JOB_QUEUES`` (a kind, or a
prefix ending with "."). Explicit ``apply_async(queue=…)`` options still win.
"""
from __future__ import annotations

from django.conf import settings

TASK_QUEUES = {
    "mailing.tasks.outbox_process_due": "mail",
}


def queue_for_kind(kind: str) -> str | None:
    queues: dict[str, str] = getattr(settings, "JOB_QUEUES", {})
    if kind in queues:
        return queues[kind]
    for prefix, queue in queues.items():
        if prefix.endswith(".") and kind.startswith(prefix):
            return queue
    return None


def route_task(name, args, kwargs, options, task=None, **kw):
    if name in TASK_QUEUES:
        return {"queue": TASK_QUEUES[name]}
    if name == "core.tasks.run_job":
        from core.models import Job

        job_id = (args or [None])[0] if args else (kwargs or {}).get("job_id")
        kind = Job.objects.filter(pk=job_id).values_list("kind", flat=True).first() if job_id else None
        queue = queue_for_kind(kind) if kind else None
        if queue:
            return {"queue": queue}
    return None
