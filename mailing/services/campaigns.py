"""Campaigns: a batch of queued messages sent by one Celery job with progress.

``campaign_start`` creates the ``core.Job`` ("mailing.campaign_send") that runs ``outbox_run`` on
the campaign's messages; the job's progress bar counts finished messages and its message reads
"12 envoyé(s), 1 échec(s), 87 restant(s)". The job runs in batches: when the association's pace
(or a retry) asks to wait, the batch ends and the next one is scheduled with a countdown, so no
worker process sleeps. Re-running the job (after a crash or after fixing the SMTP settings)
continues the campaign: sent messages are never sent again.
"""
from __future__ import annotations

import time

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext as _

from structures.models import Organisation

from ..models import MailCampaign, OutgoingMessage
from .outbox import campaign_counts, outbox_run

JOB_KIND = "mailing.campaign_send"


def inline_wait_seconds() -> float:
    """Waits up to this long are slept in the worker; longer ones end the batch (setting
    ``MAIL_MAX_INLINE_WAIT_SECONDS``)."""
    return float(getattr(settings, "MAIL_MAX_INLINE_WAIT_SECONDS", 1.0))


def campaign_create(*, organisation, label: str, kind: str = MailCampaign.Kind.PERIOD, section=None,
                    subject: str = "", body: str = "", read_receipt: bool = False, attachments: list | None = None,
                    user=None, context: dict | None = None) -> MailCampaign:
    return MailCampaign.objects.create(
        organisation=organisation, section=section, kind=kind, label=label[:200], subject=subject[:250], body=body,
        read_receipt=read_receipt, attachments=list(attachments or []), context=context or {},
        created_by=user if (user and user.is_authenticated) else None, created_at=timezone.now())


def campaign_start(*, campaign: MailCampaign, user=None):
    """Create and enqueue the sending job of a campaign (after the surrounding commit)."""
    from core.services.jobs import job_create, job_enqueue
    from core.tasks import run_job

    job = job_create(kind=JOB_KIND, label=_("Envoi par e-mail — %(label)s") % {"label": campaign.label},
                     user=user, section=campaign.section, params={"campaign_id": campaign.pk})
    MailCampaign.objects.filter(pk=campaign.pk).update(job=job)
    campaign.job = job
    return job_enqueue(job=job, task=run_job)


def counts_message(counts: dict) -> str:
    text = _("%(sent)s envoyé(s), %(failed)s échec(s), %(remaining)s restant(s)") % counts
    if counts.get("uncertain"):
        text += _(", %(uncertain)s à vérifier") % counts
    return text


def campaign_send_job(*, job, progress) -> dict:
    """Job runner: send (or finish sending) the campaign ``job.params["campaign_id"]``, in batches:
    a batch sends what the pace allows now and schedules the next one (``JobContinue``)."""
    from core.services.jobs import JobContinue, JobError

    campaign = MailCampaign.objects.filter(pk=(job.params or {}).get("campaign_id")).first()
    if campaign is None:
        raise JobError(_("Envoi introuvable."))
    messages = OutgoingMessage.objects.filter(campaign=campaign)
    last = [0.0]

    def report(_result=None, force=False):
        now = time.monotonic()
        if not force and now - last[0] < 0.5:
            return
        last[0] = now
        counts = campaign_counts(campaign)
        done = counts["total"] - counts["remaining"]
        progress(done, counts["total"], counts_message(counts))

    # The first batch of a job recovers what an earlier, interrupted run left ``sending``; the
    # next batches (scheduled by JobContinue) must not touch messages other workers are sending.
    first_batch = not job.progress_total
    report(force=True)
    result = outbox_run(messages, progress=report, recover_now=first_batch, max_wait=inline_wait_seconds())
    report(force=True)
    counts = campaign_counts(campaign)
    blocked = Organisation.objects.filter(pk=campaign.organisation_id).values_list("smtp_blocked_reason",
                                                                                 flat=True).first()
    if counts["remaining"] and blocked and (result.aborted is None or result.aborted.blocked):
        raise JobError(_("Envoi suspendu : %(reason)s %(remaining)s message(s) restent en file.") % {
            "reason": blocked, "remaining": counts["remaining"]})
    if result.resume_at is not None and result.aborted is None:
        # Paced by the association's server (or waiting for a retry): come back at the free slot
        # instead of sleeping in the worker process.
        raise JobContinue((result.resume_at - timezone.now()).total_seconds())
    if result.aborted is not None:
        raise JobError(_("Envoi interrompu : %(explanation)s %(remaining)s message(s) restent en file : corrigez "
                         "les paramètres si besoin puis relancez.") % {
            "explanation": result.aborted.explanation, "remaining": counts["remaining"]})
    return {**{k: counts[k] for k in ("sent", "failed", "uncertain", "remaining", "total", "partial")},
            "campaign_id": campaign.pk, "message": counts_message(counts)}
