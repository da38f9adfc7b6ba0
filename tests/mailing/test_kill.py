"""A real worker process killed with SIGKILL in the middle of a campaign, then restarted: every
message reaches the server exactly once (or, if the kill landed inside the DATA exchange, is left
« à vérifier » — never sent twice). Runs against its own SQLite file (the test database of the
other tests lives in memory)."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from .servers import SmtpServer

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import os, sys
import django
django.setup()
from django.core.management import call_command
from mailing.models import OutgoingMessage
from mailing.services.outbox import message_queue, outbox_run
from structures.models import Organisation

mode = sys.argv[1]
if mode == "setup":
    call_command("migrate", verbosity=0)
    org = Organisation.objects.create(name="A", smtp_host="127.0.0.1", smtp_port=int(sys.argv[2]),
                                      smtp_security="none", mail_delay_seconds=0.3, mail_pause_every=0,
                                      mail_pause_seconds=0)
    for i in range(12):
        message_queue(organisation=org, sender_email="f@x.example", recipients=[f"a{i}@example.org"],
                      subject=f"n{i}", body="b")
elif mode == "run":
    print("running", flush=True)
    result = outbox_run(OutgoingMessage.objects.all())
    print("done", result.sent, result.requeued, result.uncertain, flush=True)
else:
    for pk, status, message_id in OutgoingMessage.objects.values_list("pk", "status", "message_id"):
        print(status, message_id)
"""


def _env(tmp_path):
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", "SEJOUR_VAR_DIR": str(tmp_path),
            "DATABASE_URL": f"sqlite:///{tmp_path / 'kill.sqlite3'}", "MEDIA_ROOT": str(tmp_path / "media"),
            "LOG_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}


def _python(tmp_path, *args, **kwargs):
    return subprocess.run([sys.executable, "-c", SCRIPT, *args], cwd=ROOT, env=_env(tmp_path), capture_output=True,
                          text=True, timeout=120, **kwargs)


def test_sigkill_mid_campaign_then_restart(tmp_path):
    with SmtpServer() as server:
        setup = _python(tmp_path, "setup", str(server.port))
        assert setup.returncode == 0, setup.stderr
        worker = subprocess.Popen([sys.executable, "-c", SCRIPT, "run"], cwd=ROOT, env=_env(tmp_path),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while len(server.received) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(10)
        killed_after = len(server.received)
        assert 4 <= killed_after < 12, "the kill must land in the middle of the campaign"
        restart = _python(tmp_path, "run")
        assert restart.returncode == 0, restart.stderr
        assert restart.stdout.splitlines()[-1].startswith("done")
    rows = [line.split() for line in _python(tmp_path, "list").stdout.splitlines()]
    statuses = {message_id: status for status, message_id in rows}
    received = [r.message["Message-ID"] for r in server.received]
    assert len(received) == len(set(received)), "a message was sent twice"
    assert set(received) <= set(statuses)
    for message_id, status in statuses.items():
        assert status in ("sent", "uncertain"), status
        if status == "sent":
            assert message_id in received  # recorded as sent ⇒ the server has it
    missing = set(statuses) - set(received)
    assert all(statuses[m] == "uncertain" for m in missing)  # nothing lost silently
