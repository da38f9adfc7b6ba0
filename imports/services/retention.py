"""Uploaded import files are kept for the record for a while, then deleted (the run, its report and
the files' names, sizes and SHA-256 stay)."""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone

from ..models import ImportRun


def _path(entry) -> str:
    return entry.get("path", "") if isinstance(entry, dict) else str(entry)


def import_files_purge(*, older_than_days: int | None = None) -> int:
    """Delete the stored files of runs older than the retention; returns how many files were removed."""
    days = older_than_days if older_than_days is not None else settings.IMPORT_FILES_RETENTION_DAYS
    limit = timezone.now() - timedelta(days=days)
    removed = 0
    for run in ImportRun.objects.filter(created_at__lt=limit).exclude(stored_files=[]):
        for entry in run.stored_files or []:
            path = _path(entry)
            if path and default_storage.exists(path):
                default_storage.delete(path)
                removed += 1
        run.stored_files = []
        run.save(update_fields=["stored_files"])
    return removed
