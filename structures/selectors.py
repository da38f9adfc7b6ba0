"""Reads of the structures app shown on several pages."""
from __future__ import annotations

from typing import Iterable

from . import access
from .models import Section


def smtp_blocked_notices(user, sections: Iterable[Section]) -> list[dict]:
    """One notice per association of ``sections`` whose sending is blocked (credentials refused):
    ``{"organisation", "alias" (a section to reach its settings), "can_fix"}``."""
    notices: dict[int, dict] = {}
    for section in sections:
        organisation = section.establishment.organisation
        if organisation.smtp_blocked_at and organisation.pk not in notices:
            notices[organisation.pk] = {"organisation": organisation, "alias": section.alias,
                                        "can_fix": access.is_organisation_admin(user, organisation)}
    return list(notices.values())
