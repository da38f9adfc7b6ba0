"""In-memory lookup of dated rows ("valid from this day until the next row")."""
from __future__ import annotations

import bisect
from datetime import date
from typing import Generic, Iterable, TypeVar

T = TypeVar("T")


class Dated(Generic[T]):
    def __init__(self, rows: Iterable[tuple[date, T]]):
        pairs = sorted(rows, key=lambda r: r[0])
        self._days = [d for d, _ in pairs]
        self._values = [v for _, v in pairs]

    def on(self, day: date) -> T | None:
        i = bisect.bisect_right(self._days, day)
        return self._values[i - 1] if i else None

    def changes_between(self, start: date, end: date) -> list[tuple[date, T]]:
        return [(d, v) for d, v in zip(self._days, self._values) if start <= d <= end]

    def __bool__(self):
        return bool(self._days)
