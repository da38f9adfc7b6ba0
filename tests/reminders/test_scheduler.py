"""The beat task prepares the month's proposals (never sends) and the home to-do line."""
from datetime import date

import pytest
from django.template import Context, Template

from config.settings import CELERY_BEAT_SCHEDULE
from mailing.models import OutgoingMessage
from reminders.models import Reminder, ReminderLetter, ReminderRun
from reminders.selectors import proposals_todo
from reminders.services.runs import run_validate
from reminders.tasks import proposals_prepare
from tests.billing.payment_helpers import issued_invoice, resident_in
from tests.factories import SectionFactory

pytestmark = pytest.mark.django_db


def test_beat_prepares_once_a_month_never_sends(monkeypatch):
    section = SectionFactory(alias="TIL-HP")
    quiet = SectionFactory(alias="TIL-AJ")
    resident = resident_in(section)
    for day in range(5, 17):
        issued_invoice(section, resident, "10.00", date(2026, 1, day))
    assert CELERY_BEAT_SCHEDULE["reminders-proposals"]["task"] == "reminders.tasks.proposals_prepare"
    from reminders.services import runs
    real = runs.proposals_prepare
    monkeypatch.setattr(runs, "proposals_prepare", lambda: real(today=date(2026, 2, 20)))
    [pk] = proposals_prepare()
    run = ReminderRun.objects.get(pk=pk)
    assert (run.section, run.by_scheduler, run.status, run.limit_date) == (section, True, "proposed",
                                                                          date(2026, 2, 1))
    assert run.reminders.count() == 12
    assert not ReminderLetter.objects.exists() and not OutgoingMessage.objects.exists()
    assert not Reminder.objects.filter(status="sent").exists()
    assert not ReminderRun.objects.filter(section=quiet).exists()  # nothing to remind: no run
    # Again the same month: nothing new.
    assert proposals_prepare() == []
    todo = proposals_todo([section, quiet])
    assert [line["text"] for line in todo] == ["12 relances proposées pour TIL-HP"]
    html = Template("{% load reminders_tags %}{% reminders_todo sections %}").render(
        Context({"sections": [section, quiet]}))
    assert "12 relances proposées pour TIL-HP" in html and f"/s/TIL-HP/relances/campagne/{run.pk}/" in html
    # The tableau de bord's to-do list carries it (registry filled by reminders/services/dashboard.py).
    from reminders.services.dashboard import reminder_todos
    [line] = reminder_todos(user=None, sections=[section, quiet], year=2026, month=2, shared={})
    assert (line.text, line.section, line.count, line.url) == (
        "12 relances proposées pour TIL-HP", section, 12, f"/s/TIL-HP/relances/campagne/{run.pk}/")
    from structures.dashboard import TODO_PROVIDERS
    assert reminder_todos in [provider for _order, provider in TODO_PROVIDERS]
    run_validate(run=run)
    assert proposals_todo([section]) == []
