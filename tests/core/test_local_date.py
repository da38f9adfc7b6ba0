""""Today" is the date in Europe/Paris everywhere (TIME_ZONE), never the server's or UTC date."""
import re
from datetime import datetime, timezone as dt_timezone
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = re.compile(r"\bdate\.today\(\)|datetime\.(?:now|today)\(\)\.date\(\)|timezone\.now\(\)\.date\(\)")


def test_time_zone_is_paris():
    assert settings.TIME_ZONE == "Europe/Paris" and settings.USE_TZ


def test_no_naive_today_in_the_code():
    offenders = []
    for path in ROOT.rglob("*.py"):
        if any(part in {".venv", "var", "node_modules", "migrations"} for part in path.parts) or path == Path(__file__):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if FORBIDDEN.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}")
    assert offenders == [], "use django.utils.timezone.localdate(): " + ", ".join(offenders)


@pytest.mark.django_db
def test_calendar_page_opens_on_the_paris_month(client, demo, monkeypatch, settings):
    """New Year's Eve at 23:30 UTC is already 1 January in Paris."""
    from billing.models import Calendar
    from django.utils import timezone

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    monkeypatch.setattr(timezone, "now", lambda: datetime(2026, 12, 31, 23, 30, tzinfo=dt_timezone.utc))
    client.login(username="tilleuls", password="demo")
    calendar = Calendar.objects.get(code="CAL-TIL")
    html = client.get(reverse("billing:calendar-detail", kwargs={"alias": "TIL-HP", "pk": calendar.pk})).content
    assert "Janvier 2027" in html.decode()
