"""Thin Celery wrappers: they take ids and call services.

``run_job`` is routed to a queue by the job's kind (``core.routing``); it acknowledges its message
only once done (``acks_late``), the job's lease makes a redelivered message harmless."""
import time

from celery import shared_task

from core.services import jobs


@shared_task(name="core.tasks.run_job", acks_late=True)
def run_job(job_id: int):
    from core.models import Job

    kind = Job.objects.filter(pk=job_id).values_list("kind", flat=True).first()
    if kind is None:
        return
    runner = jobs.JOB_RUNNERS.get(kind)
    if runner is None:
        Job.objects.filter(pk=job_id, status__in=[Job.Status.PENDING, Job.Status.RUNNING]).update(
            status=Job.Status.FAILED, error=f"Type de tâche inconnu : {kind}")
        return

    while True:
        later: list[float] = []
        jobs.job_run(job_id=job_id, func=runner, reschedule=later.append)
        if not later:
            return
        if not run_job.app.conf.task_always_eager:
            # The next batch, later, on the same queue (the router reads the kind again): the
            # worker process is free meanwhile.
            run_job.apply_async((job_id,), countdown=later[0])
            return
        time.sleep(later[0])  # eager (debugging, tests): batches run inline, one after the other


@shared_task(name="core.tasks.jobs_mark_stale")
def jobs_mark_stale():
    return jobs.jobs_mark_stale()
