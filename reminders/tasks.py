"""Thin Celery wrappers of the reminders services."""
from celery import shared_task


@shared_task(name="reminders.tasks.proposals_prepare")
def proposals_prepare():
    """Beat (daily): prepare the month's reminder proposals; never sends anything."""
    from .services.runs import proposals_prepare as prepare

    return prepare()
