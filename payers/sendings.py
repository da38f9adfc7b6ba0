"""What was sent to a payer, for the « Envois » tab of the payer file.

``payers`` (layer 2) knows none of the apps that write to payers: they register providers in their
``AppConfig.ready``. Two kinds:

* **e-mails of the outbox** — ``mailing`` knows nothing of invoices: each message names its document
  by ``related_key`` (« billing.statement:12 »); an app registers the keys of a payer's documents in a
  section (``register_payer_mail_keys``: billing for its invoices and statements) and the tab lists
  the outbox rows carrying one of them (``payers.selectors.payer_mails``);
* **other sendings** — letters whatever their channel (posted or e-mailed), with their document:
  ``payer_sendings_register(provider)``, ``provider(*, payer, sections) -> list[Sending]``,
  ``sections`` being the sections the user may read (``structures.access.sections_for``): a
  provider never widens them (e.g. the letters of the reminder app).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Callable, Iterable

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


_MAIL_KEY_PROVIDERS: list[Callable[..., Iterable[str]]] = []


def register_payer_mail_keys(provider: Callable[..., Iterable[str]]):
    """Add a provider ``(*, payer, section) -> keys`` of the outbox ``related_key`` of a payer's
    documents (idempotent; usable as a decorator)."""
    if provider not in _MAIL_KEY_PROVIDERS:
        _MAIL_KEY_PROVIDERS.append(provider)
    return provider


def payer_mail_keys(*, payer, section) -> set[str]:
    keys: set[str] = set()
    for provider in _MAIL_KEY_PROVIDERS:
        keys.update(provider(payer=payer, section=section))
    return keys
