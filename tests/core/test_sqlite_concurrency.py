"""The embedded default (SQLite) under concurrency: web requests that write while a worker holds
write transactions, as a job does, never fail with « database is locked ».

Runs in a subprocess on a real SQLite *file* configured exactly as ``config.settings`` configures it
with no environment (the test database of pytest-django lives in memory)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r'''
import json, threading, time
import django
django.setup()
from django.conf import settings
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import F
from django.test import Client

call_command("migrate", verbosity=0)
from django.contrib.auth.models import User
from core.models import Job

assert connection.vendor == "sqlite" and not connection.is_in_memory_db()
user = User.objects.create_superuser("admin-test", "a@example.org", "x")
job = Job.objects.create(kind="test.kind", label="Tâche qui écrit")
failed = Job.objects.create(kind="core.selftest", label="Diagnostic", status=Job.Status.FAILED)
pragmas = {name: connection.cursor().execute(f"PRAGMA {name}").fetchone()[0]
           for name in ("journal_mode", "busy_timeout")}
connection.close()

stop = threading.Event()
worker_errors, worker_transactions = [], [0]

def worker():
    """A job: progress written inside transactions that keep the write lock for a while."""
    while not stop.is_set():
        try:
            with transaction.atomic():
                Job.objects.filter(pk=job.pk).update(progress_current=F("progress_current") + 1)
                time.sleep(0.15)
            worker_transactions[0] += 1
        except Exception as exc:
            worker_errors.append(repr(exc))
        time.sleep(0.01)
    connection.close()

from django.core.signals import got_request_exception
got_request_exception.connect(lambda sender, request, **kw: errors.append(repr(__import__("sys").exc_info()[1])),
                              weak=False)
statuses, errors = [], []
thread = threading.Thread(target=worker)
thread.start()
time.sleep(0.2)
client = Client(raise_request_exception=False)
client.force_login(user)
for n in range(12):
    # Each request reads (the job) then writes (its re-run) in one transaction (ATOMIC_REQUESTS).
    response = client.post(f"/taches/{failed.pk}/relancer/")
    statuses.append(response.status_code)
stop.set()
thread.join()
print(json.dumps({"statuses": statuses, "errors": errors, "worker_errors": worker_errors,
                  "worker_transactions": worker_transactions[0], "pragmas": pragmas,
                  "options": {k: str(v) for k, v in settings.DATABASES["default"].get("OPTIONS", {}).items()},
                  "jobs": Job.objects.filter(rerun_of=failed).count()}))
'''


@pytest.mark.integration
def test_web_writes_while_a_worker_holds_write_transactions(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "DEBUG")}
    env.update(SEJOUR_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="config.settings", LOG_LEVEL="ERROR")
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["pragmas"]["journal_mode"] == "wal"
    assert report["pragmas"]["busy_timeout"] >= 5000
    assert report["errors"] == [] and report["worker_errors"] == [], report
    assert report["options"].get("transaction_mode") == "IMMEDIATE"
    assert report["statuses"] == [302] * 12, report
    assert report["jobs"] == 12
    assert report["worker_transactions"] >= 5  # the worker really wrote meanwhile
