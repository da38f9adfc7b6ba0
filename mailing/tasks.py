"""Thin Celery wrappers of the outbox (campaigns run through core.tasks.run_job)."""
from celery import shared_task


@shared_task(name="mailing.tasks.outbox_process_due")
def outbox_process_due():
    """Periodic safety net (beat, every minute): recover messages of dead workers (after the lease)
    and send whatever is due — retries of campaigns whose job has ended, single messages."""
    from .models import OutgoingMessage
    from .services.campaigns import inline_wait_seconds
    from .services.outbox import outbox_recover, outbox_run

    recovered = outbox_recover()
    # What the pace allows now; the rest at the next beat (never sleeps through a campaign).
    result = outbox_run(OutgoingMessage.objects.all(), wait=False, recover_now=False, max_wait=inline_wait_seconds())
    return {"recovered": recovered, "sent": result.sent, "failed": result.failed, "retry": result.retried}
