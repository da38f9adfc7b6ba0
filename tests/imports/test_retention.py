from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from imports.models import ImportRun
from imports.services.retention import import_files_purge


@pytest.mark.django_db
def test_old_import_files_are_purged_and_the_record_kept():
    old = ImportRun.objects.create(kind="absences", status="imported",
                                   created_at=timezone.now() - timedelta(days=100),
                                   files=[{"name": "a.csv", "sha256": "x"}])
    recent = ImportRun.objects.create(kind="residents", status="imported")
    old_path = default_storage.save(f"imports/{old.pk}/a.csv", ContentFile(b"x"))
    recent_path = default_storage.save(f"imports/{recent.pk}/residents.xlsx", ContentFile(b"y"))
    old.stored_files = [{"role": "absences", "name": "a.csv", "path": old_path}]
    old.save()
    recent.stored_files = [recent_path]
    recent.save()
    assert import_files_purge(older_than_days=90) == 1
    assert not default_storage.exists(old_path) and default_storage.exists(recent_path)
    old.refresh_from_db()
    assert old.stored_files == [] and old.files == [{"name": "a.csv", "sha256": "x"}]
