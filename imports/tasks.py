from celery import shared_task

from .services.retention import import_files_purge


@shared_task(name="imports.tasks.import_files_purge")
def import_files_purge_task():
    return import_files_purge()
