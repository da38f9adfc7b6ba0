"""A local SMTP server that keeps every message it receives (Maildir), for the demo and tests.

Each message gets ``X-MailFrom`` / ``X-RcptTo`` headers with the SMTP envelope, so what the
outbox sent to whom can be checked by opening ``var/mailsink/``.
"""
from __future__ import annotations

import mailbox
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox


def sink_controller(*, directory: Path, host: str = "127.0.0.1", port: int = 1025) -> Controller:
    directory.parent.mkdir(parents=True, exist_ok=True)
    if directory.exists() and not (directory / "cur").exists():
        for sub in ("cur", "new", "tmp"):
            (directory / sub).mkdir(exist_ok=True)
    return Controller(Mailbox(directory), hostname=host, port=port)


def sink_messages(directory: Path) -> list:
    """Messages kept by the sink, oldest first."""
    if not directory.exists():
        return []
    box = mailbox.Maildir(directory, create=False)
    def order(key):
        message = box[key]
        return (message.get_date(), int(key.split("Q")[-1].split(".")[0]) if "Q" in key else 0)

    return [box[key] for key in sorted(box.keys(), key=order)]
