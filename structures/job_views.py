"""Browser side of the generic Job: a page, a polled progress fragment, re-run.

Every request re-checks the user's *current* grants: a job of a section is visible (page, progress,
file) only to who may read that section today — its author included, so a revoked user loses it —
and re-running needs the role that starting it needs (``START_ROLES``; 403 otherwise). A job
without section (diagnostic) is its author's and the superusers'.
"""
import json

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from core.models import Job
from core.services import jobs as job_services
from core.tasks import run_job

from . import access


# The role each kind of job needs to be started (its starting view's role); the others need CLERK.
START_ROLES = {
    "billing.export_journal": access.Role.READER,
    "billing.statements_print": access.Role.READER,
    "imports.residents": access.Role.MANAGER,
    "billing.pes_role": access.Role.MANAGER,  # « Générer le flux »
    "billing.pes_simulate": access.Role.READER,  # « Simuler » (nothing stored)
}


def start_role(kind: str) -> str:
    return START_ROLES.get(kind, access.Role.CLERK)


def _job_for(user, pk: int) -> Job:
    job = get_object_or_404(Job.objects.select_related("section"), pk=pk)
    if job.section is None:
        if user.is_superuser or job.created_by_id == user.pk:
            return job
    elif access.has_role(user, job.section, access.Role.READER):
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


def job_finished_trigger(response, job: Job):
    """Tell the page (htmx ``HX-Trigger``) that the job it was following has ended: regions with
    ``hx-trigger="job-finished from:body"`` reload what depends on its result."""
    response["HX-Trigger"] = json.dumps({"job-finished": {"id": job.pk, "kind": job.kind, "status": job.status}})
    return response


@login_required
def job_progress(request, pk):
    """The polled fragment; the poll that sees the job finished also fires « job-finished »."""
    job = _job_for(request.user, pk)
    response = render(request, "core/_job_progress.html", _job_context(job))
    if job.is_finished and request.htmx:
        job_finished_trigger(response, job)
    return response


@login_required
@require_POST
def job_rerun(request, pk):
    job = _job_for(request.user, pk)
    if job.section and not access.has_role(request.user, job.section, start_role(job.kind)):
        raise PermissionDenied("Relancer cette tâche demande le rôle nécessaire pour la lancer.")
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
