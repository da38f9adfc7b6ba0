"""French display of dates in messages, labels and PDFs (the one place that formats them)."""
from __future__ import annotations

from datetime import date


def fr_date(day: date | None, empty: str = "") -> str:
    """2026-04-06 -> « 06/04/2026 »; ``empty`` for no date (« … » for an open end)."""
    return day.strftime("%d/%m/%Y") if day else empty
