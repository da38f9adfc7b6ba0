"""Demo reminders (``seed_demo --payments``, after the demo payments): VER-HP's unpaid invoices of
October to December 2025 already have a history, so that a run today proposes every level —
October's invoices reminded twice (levels 1 and 2: a *mise en demeure* is due), November's once
(level 2 due), December's never (level 1 due). The two past runs are built by the reminders
services (same proposal, same exclusions) and stored as validated, without letters nor e-mails
(nothing is sent to the demo's fictitious people). Idempotent: nothing is done when VER-HP already
has a reminder run."""
from __future__ import annotations

from datetime import date

from django.db import transaction
from django.utils import timezone

from reminders.models import Reminder, ReminderRun
from reminders.services.runs import run_create
from structures.models import Section

ALIAS = "VER-HP"
PAST_RUNS = [(date(2025, 12, 10), date(2025, 12, 1)), (date(2026, 1, 12), date(2026, 1, 1))]


@transaction.atomic
def demo_reminders(*, organisation) -> int:
    """Create the past runs; returns the number of reminders marked sent."""
    section = Section.objects.filter(alias=ALIAS, establishment__organisation=organisation).first()
    if section is None or ReminderRun.objects.filter(section=section).exists():
        return 0
    sent = 0
    for print_date, limit_date in PAST_RUNS:
        run = run_create(section=section, print_date=print_date, limit_date=limit_date)
        lines = run.reminders.filter(selected=True, exclusion="")
        sent += lines.update(status=Reminder.Status.SENT)
        run.reminders.exclude(status=Reminder.Status.SENT).update(status=Reminder.Status.SKIPPED)
        run.status, run.validated_at = ReminderRun.Status.VALIDATED, timezone.now()
        run.result = {"letters": 0, "emailed": [], "to_post": [], "sent": sent, "demo": True}
        run.save()
    return sent
