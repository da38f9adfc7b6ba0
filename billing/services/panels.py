"""Panels that apps above billing add to billing's pages (billing, layer 3, imports none of them).

A page has a *slot*: ``"invoice"`` (the invoice page: ``provider(*, invoice, section, user)``) or
``"resident_account"`` (the *Compte* tab of the resident file: ``provider(*, resident, section,
user)``). An app registers its providers in ``AppConfig.ready``::

    panel_register("invoice", my_panel, order=50)

A provider returns the panel's HTML (a rendered template, so escaped) or ``""`` when it has nothing
to show; the page renders them in ``order`` (e.g. reminders: the level reached on the invoice page and
the link to a resident's reminder history; sepa: the installments of a mensualised resident).
"""
from __future__ import annotations

from typing import Callable

from django.utils.safestring import mark_safe

SLOTS = ("invoice", "resident_account")
# slot -> (order, provider) pairs, kept sorted by order.
PANELS: dict[str, list[tuple[int, Callable]]] = {slot: [] for slot in SLOTS}


def panel_register(slot: str, provider: Callable, *, order: int = 100) -> Callable:
    """Add a panel provider to a page's slot (idempotent)."""
    providers = PANELS[slot]  # an unknown slot is a programming error: KeyError at start-up
    if all(existing is not provider for _order, existing in providers):
        providers.append((order, provider))
        providers.sort(key=lambda item: item[0])
    return provider


def panels(slot: str, **context) -> list[str]:
    """The HTML of the slot's registered panels for ``context`` (empty ones left out)."""
    found = []
    for _order, provider in PANELS[slot]:
        html = provider(**context)
        if html:
            found.append(mark_safe(html))  # rendered by the provider's template (escaped there)
    return found
