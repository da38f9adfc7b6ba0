"""Registry of the mail sent to a payer, for the *Envois* tab of the payer file.

The outbox (``mailing``) knows nothing of invoices: each message names its document by
``related_key`` (« billing.statement:12 »). Apps above ``payers`` that mail a payer (billing: its
invoices and statements; later reminders: its letters…) register a provider returning the keys of
that payer's documents in a section; the tab lists the outbox rows carrying one of them::

    from payers.mail_registry import register_payer_mail_keys

    @register_payer_mail_keys
    def statement_keys(*, payer, section):
        return [f"billing.statement:{pk}" for pk in Statement.objects.filter(...).values_list("pk", flat=True)]
"""
from __future__ import annotations

from typing import Callable, Iterable

_PROVIDERS: list[Callable[..., Iterable[str]]] = []


def register_payer_mail_keys(provider: Callable[..., Iterable[str]]):
    if provider not in _PROVIDERS:
        _PROVIDERS.append(provider)
    return provider


def payer_mail_keys(*, payer, section) -> set[str]:
    keys: set[str] = set()
    for provider in _PROVIDERS:
        keys.update(provider(payer=payer, section=section))
    return keys
