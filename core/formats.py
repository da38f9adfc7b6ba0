"""French display of dates in messages, labels and PDFs (the one place that formats them)."""
from __future__ import annotations

from datetime import date


def fr_date(day: date | None, empty: str = "") -> str:
    """2026-04-06 -> « 06/04/2026 »; ``empty`` for no date (« … » for an open end)."""
    return day.strftime("%d/%m/%Y") if day else empty


def name_sort_key(text: str) -> str:
    """Accent- and case-insensitive key for French alphabetical order: « Émile » sorts with « EMILE »,
    « Œuvre » as « OEUVRE ». Stable tie-breaks are the caller's business."""
    import unicodedata

    text = (text or "").replace("œ", "oe").replace("Œ", "OE").replace("æ", "ae").replace("Æ", "AE")
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()
