"""Panels that later apps add to the invoice page (billing, layer 3, imports none of them).

An app registers a provider in its ``AppConfig.ready``::

    invoice_panel_register(my_panel, order=50)

``my_panel(*, invoice, section, user) -> str`` returns the panel's HTML (a rendered template, so
escaped) or ``""`` when it has nothing to show. The invoice view renders them in ``order``.
"""
from __future__ import annotations

from typing import Callable

from django.utils.safestring import mark_safe

# (order, provider) pairs, kept sorted by order.
INVOICE_PANELS: list[tuple[int, Callable]] = []


def invoice_panel_register(provider: Callable, *, order: int = 100) -> Callable:
    """Add an invoice panel provider (idempotent)."""
    if all(existing is not provider for _order, existing in INVOICE_PANELS):
        INVOICE_PANELS.append((order, provider))
        INVOICE_PANELS.sort(key=lambda item: item[0])
    return provider


def invoice_panels(*, invoice, section, user=None) -> list[str]:
    """The registered panels' HTML for ``invoice`` (empty ones left out)."""
    panels = []
    for _order, provider in INVOICE_PANELS:
        html = provider(invoice=invoice, section=section, user=user)
        if html:
            panels.append(mark_safe(html))  # rendered by the provider's template (escaped there)
    return panels
