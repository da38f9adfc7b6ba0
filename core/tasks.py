"""Thin Celery wrappers: they take ids and call services."""
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
        Job.objects.filter(pk=job_id).update(status=Job.Status.FAILED, error=f"Type de tâche inconnu : {kind}")
        return
    jobs.job_run(job_id=job_id, func=runner)


@shared_task(name="core.tasks.jobs_mark_stale")
def jobs_mark_stale():
    return jobs.jobs_mark_stale()
