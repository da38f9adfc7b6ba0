"""Browser side of the generic Job: a page, a polled progress fragment, re-run.

A job is visible to the user who started it, to anyone who may read its section, and to
superusers; re-running needs the *facturation* role on its section (or being its author).
"""
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from core.models import Job
from core.services import jobs as job_services
from core.tasks import run_job

from . import access


def _job_for(user, pk: int) -> Job:
    job = get_object_or_404(Job.objects.select_related("section"), pk=pk)
    if user.is_superuser or job.created_by_id == user.pk:
        return job
    if job.section and access.has_role(user, job.section, access.Role.READER):
        return job
    raise Http404("Tâche introuvable.")


def _job_context(job: Job) -> dict:
    """A group job is refreshed from its children when read, and shows them."""
    if job.kind != job_services.GROUP_KIND:
        return {"job": job}
    job = job_services.job_group_refresh(parent_id=job.pk)
    children = list(job.children.select_related("section").order_by("section__alias", "pk"))
    return {"job": job, "children": children}


@login_required
def job_detail(request, pk):
    job = _job_for(request.user, pk)
    return render(request, "core/job_detail.html", _job_context(job))


@login_required
def job_progress(request, pk):
    job = _job_for(request.user, pk)
    return render(request, "core/_job_progress.html", _job_context(job))


@login_required
@require_POST
def job_rerun(request, pk):
    job = _job_for(request.user, pk)
    if job.section and not access.has_role(request.user, job.section, access.Role.CLERK) \
            and job.created_by_id != request.user.pk:
        raise Http404("Tâche introuvable.")
    if job.kind == job_services.GROUP_KIND:
        job_services.job_group_rerun_failed(parent=job, task=run_job)
        return redirect("job-detail", pk=job.pk)
    new_job = job_services.job_rerun(job=job, user=request.user)
    job_services.job_enqueue(job=new_job, task=run_job)
    return redirect("job-detail", pk=new_job.pk)


@login_required
def selftest_start(request):
    """Diagnostic: start a small job to check that a Celery worker is running."""
    if request.method == "POST":
        job = job_services.job_create(kind="core.selftest", label="Diagnostic du processus de travail",
                                      user=request.user, params={"steps": 5, "delay": 0.5})
        job_services.job_enqueue(job=job, task=run_job)
        return redirect("job-detail", pk=job.pk)
    return render(request, "core/selftest.html", {})


@login_required
def job_download(request, pk):
    """The file a job produced (``result["file"]`` under MEDIA_ROOT), with the job's own access rule."""
    from django.core.files.storage import default_storage
    from django.http import FileResponse

    job = _job_for(request.user, pk)
    name = (job.result or {}).get("file") if job.status == Job.Status.SUCCEEDED else None
    if not name or not default_storage.exists(name):
        raise Http404("Aucun fichier pour cette tâche.")
    return FileResponse(default_storage.open(name, "rb"), as_attachment=True, filename=name.rsplit("/", 1)[-1])
