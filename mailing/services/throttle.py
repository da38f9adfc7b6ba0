"""The sending pace of one SMTP account, shared by every worker of every machine.

One ``SmtpThrottle`` row per association holds *when the account may next be used* and how many
messages went since the last long pause. ``throttle_reserve`` takes the row lock
(``select_for_update`` on PostgreSQL; on SQLite a first write takes the database write lock),
books the next slot and moves the row on by the delay — or by the long pause every N messages —
then commits: two workers can never book the same slot, whatever their number. The caller then
waits until its slot (``Clock.sleep``) and sends.

Rules (Organisation fields): ``mail_delay_seconds`` between two messages (default 2),
``mail_pause_seconds`` instead of the delay after every ``mail_pause_every`` messages (default
10 s every 10). An account idle for at least a long pause starts a fresh series.

Time comes from a ``Clock`` (``now()``, ``sleep(seconds)``) so tests inject a fake one.
"""
from __future__ import annotations

import time
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from structures.models import Organisation

from ..models import SmtpThrottle


class SystemClock:
    def now(self) -> datetime:
        return timezone.now()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class FakeClock:
    """A clock whose ``sleep`` only moves time on (tests, benchmarks); ``sleeps`` records them."""

    def __init__(self, start: datetime | None = None):
        self.current = start or timezone.now()
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self.current

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.sleeps.append(round(seconds, 3))
            self.current += timedelta(seconds=seconds)

    def advance(self, seconds: float) -> None:
        self.current += timedelta(seconds=seconds)


def lock_for_write(queryset, field: str) -> None:
    """On SQLite, take the database write lock *before* reading (``select_for_update`` is a no-op
    there and a read-then-write transaction could fail to upgrade its lock): a no-op UPDATE."""
    if connection.vendor == "sqlite":
        queryset.update(**{field: F(field)})


def _throttle_row(organisation_id: int) -> SmtpThrottle:
    rows = SmtpThrottle.objects.filter(organisation_id=organisation_id)
    lock_for_write(rows, "sent_since_pause")
    return rows.select_for_update().get()


def _ensure_throttle_row(organisation_id: int) -> None:
    if SmtpThrottle.objects.filter(organisation_id=organisation_id).exists():
        return
    try:
        with transaction.atomic():
            SmtpThrottle.objects.create(organisation_id=organisation_id)
    except IntegrityError:
        pass  # created meanwhile by another worker


def _seconds(value) -> float:
    return float(value or Decimal("0"))


def throttle_reserve(*, organisation_id: int, clock=None) -> datetime:
    """Book the next sending slot of the association's account; returns when it starts."""
    clock = clock or SystemClock()
    delay, every, pause = Organisation.objects.filter(pk=organisation_id).values_list(
        "mail_delay_seconds", "mail_pause_every", "mail_pause_seconds").get()
    delay, pause = _seconds(delay), _seconds(pause)
    if delay <= 0 and (not every or pause <= 0):
        return clock.now()  # no pacing at all: nothing to share
    _ensure_throttle_row(organisation_id)
    with transaction.atomic():
        row = _throttle_row(organisation_id)
        now = clock.now()
        slot = max(now, row.next_send_at) if row.next_send_at else now
        count = row.sent_since_pause
        if row.next_send_at and now - row.next_send_at >= timedelta(seconds=max(pause, delay)):
            count = 0  # the account has rested at least a long pause
        count += 1
        if every and count >= every:
            gap, count = max(pause, delay), 0
        else:
            gap = delay
        row.next_send_at = slot + timedelta(seconds=gap)
        row.sent_since_pause = count
        row.save(update_fields=["next_send_at", "sent_since_pause"])
    return slot


def throttle_next_slot(*, organisation_id: int, clock=None) -> datetime:
    """When the association's account may next be used, without booking it (a worker that would
    have to wait longer than it may sleep schedules its next batch for then instead)."""
    clock = clock or SystemClock()
    now = clock.now()
    next_at = SmtpThrottle.objects.filter(organisation_id=organisation_id).values_list(
        "next_send_at", flat=True).first()
    return max(now, next_at) if next_at else now


def throttle_wait(*, organisation_id: int, clock=None) -> float:
    """Reserve a slot and sleep until it; returns the seconds waited."""
    clock = clock or SystemClock()
    slot = throttle_reserve(organisation_id=organisation_id, clock=clock)
    wait = (slot - clock.now()).total_seconds()
    if wait > 0:
        clock.sleep(wait)
        return wait
    return 0.0
