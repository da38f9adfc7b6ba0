"""Panels that apps above billing add to the *Compte* tab of the resident file (e.g. sepa: the
installments received against the invoices of a mensualised resident). Billing never imports them:
they register at start-up (``AppConfig.ready``): ``fn(*, section, resident) -> [dict]``, each dict
with the ``template`` to include and its context (the template sees it as ``panel``)."""
from __future__ import annotations

RESIDENT_ACCOUNT_PANELS: list = []


def resident_account_panel_register(fn):
    """Add a provider (idempotent); usable as a decorator."""
    if fn not in RESIDENT_ACCOUNT_PANELS:
        RESIDENT_ACCOUNT_PANELS.append(fn)
    return fn


def resident_account_panels(*, section, resident) -> list[dict]:
    return [panel for fn in RESIDENT_ACCOUNT_PANELS for panel in fn(section=section, resident=resident)]
