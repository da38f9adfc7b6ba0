"""Thin Celery wrappers of billing services (jobs run through core.tasks.run_job)."""
from celery import shared_task


@shared_task(name="billing.tasks.pocket_money_prepare")
def pocket_money_prepare():
    """Beat (daily): start the previous quarter's pocket-money settlement of each section once its
    three months are issued; idempotent (one job per section and quarter)."""
    from .services.pocket_money import pocket_money_prepare as prepare

    return prepare()
