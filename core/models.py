"""Generic long-running job record: what runs, its progress, its result or error.

Every long piece of work (generation, PDFs, mailing, imports, SEPA) is a ``Job``: the web
view creates it, a Celery task runs the matching service and reports progress here, and the
browser polls ``core:job-progress``. Jobs are re-runnable: ``job_rerun`` creates a new job with
the same parameters; the services they call are idempotent.

A running job is *leased* by one worker (``lease_owner`` until ``lease_expires_at``): a
redelivered message for a job whose lease is alive, or for a finished job, does nothing, and the
beat task ``core.tasks.jobs_mark_stale`` marks failed (re-runnable) a job whose lease expired
because its worker died.
"""
from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Job(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("En attente")
        RUNNING = "running", _("En cours")
        SUCCEEDED = "succeeded", _("Terminée")
        FAILED = "failed", _("Échec")

    kind = models.CharField(_("type"), max_length=80, db_index=True)
    label = models.CharField(_("libellé"), max_length=200)
    params = models.JSONField(_("paramètres"), default=dict, blank=True)
    status = models.CharField(_("état"), max_length=12, choices=Status.choices, default=Status.PENDING)
    progress_current = models.PositiveIntegerField(_("avancement"), default=0)
    progress_total = models.PositiveIntegerField(_("total"), default=0)
    message = models.CharField(_("message"), max_length=300, blank=True)
    result = models.JSONField(_("résultat"), null=True, blank=True)
    error = models.TextField(_("erreur"), blank=True)
    attempts = models.PositiveIntegerField(_("tentatives"), default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("lancée par"), null=True, blank=True,
        on_delete=models.SET_NULL, related_name="+",
    )
    # String FK up to structures: a job belongs to the section it works on (access control).
    section = models.ForeignKey(
        "structures.Section", verbose_name=_("section"), null=True, blank=True,
        on_delete=models.CASCADE, related_name="jobs",
    )
    rerun_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="reruns")
    # A group of jobs started together (one per section): the parent is never run by a worker, its
    # status and progress aggregate its children (``core.services.jobs.job_group_refresh``).
    parent = models.ForeignKey("self", verbose_name=_("tâche groupée"), null=True, blank=True,
                               on_delete=models.CASCADE, related_name="children")
    created_at = models.DateTimeField(_("créée le"), default=timezone.now)
    started_at = models.DateTimeField(_("démarrée le"), null=True, blank=True)
    heartbeat_at = models.DateTimeField(_("dernier signe de vie"), null=True, blank=True)
    finished_at = models.DateTimeField(_("terminée le"), null=True, blank=True)
    # Exactly-once: the worker running the job holds a lease (who, until when), taken and renewed
    # by conditional UPDATEs. Empty owner on a running job: waiting for its next batch (scheduled).
    lease_owner = models.CharField(_("processus détenteur"), max_length=120, blank=True)
    lease_expires_at = models.DateTimeField(_("bail valable jusqu'au"), null=True, blank=True)

    class Meta:
        verbose_name = _("tâche")
        verbose_name_plural = _("tâches")
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.label} ({self.get_status_display()})"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.SUCCEEDED, self.Status.FAILED)

    @property
    def percent(self) -> int:
        if self.status == self.Status.SUCCEEDED:
            return 100
        if not self.progress_total:
            return 0
        return min(100, int(self.progress_current * 100 / self.progress_total))
