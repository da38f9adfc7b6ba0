from celery import shared_task

from .services.mandates import mandates_lapse


@shared_task(name="sepa.tasks.mandates_lapse")
def mandates_lapse_task():
    """Daily: mandates unused for 36 months become *caducs* (billing-rules.md §11)."""
    return [mandate.pk for mandate in mandates_lapse()]
