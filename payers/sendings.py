"""What was sent to a payer, for the « Envois » tab of the payer file.

``payers`` (layer 2) knows none of the apps that write to payers: they register a provider in
their ``AppConfig.ready``::

    payer_sendings_register(provider)

``provider(*, payer, sections) -> list[Sending]``, ``sections`` being the sections the user may
read (``structures.access.sections_for``): a provider never widens them.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Callable

SENDING_PROVIDERS: list[Callable] = []


@dataclass
class Sending:
    day: date
    kind: str  # e.g. « 2e relance »
    label: str  # what was sent (invoices, total)
    channel: str  # « courriel : … » or « courrier »
    url: str = ""  # the document (PDF)
    section: str = ""  # alias


def payer_sendings_register(provider: Callable) -> Callable:
    """Add a provider of sendings (idempotent)."""
    if provider not in SENDING_PROVIDERS:
        SENDING_PROVIDERS.append(provider)
    return provider


def payer_sendings(*, payer, sections) -> list[Sending]:
    """Everything sent to ``payer`` in ``sections``, newest first."""
    found: list[Sending] = []
    for provider in SENDING_PROVIDERS:
        found.extend(provider(payer=payer, sections=sections))
    return sorted(found, key=lambda s: s.day, reverse=True)
