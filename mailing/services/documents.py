"""Related documents: apps above register how to turn a document key into an attachment.

A key is ``"<kind>:<id>"`` (``"billing.invoice:42"``). The provider registered for ``kind``
returns an ``Attachment`` when the message is *sent* (so an invoice PDF missing at queue time is
rendered by the worker, not by the web request).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass
class Attachment:
    filename: str
    content: bytes
    mimetype: str = "application/pdf"

    @property
    def size(self) -> int:
        return len(self.content)


class DocumentUnavailable(Exception):
    """The document cannot be attached (French message)."""


PROVIDERS: dict[str, Callable[[str], Attachment]] = {}


def register_document(kind: str, provider: Callable[[str], Attachment]) -> None:
    PROVIDERS[kind] = provider


def document_key(kind: str, pk) -> str:
    return f"{kind}:{pk}"


def split_key(key: str) -> tuple[str, str]:
    kind, _sep, ident = key.rpartition(":")
    return kind, ident


def document_attachment(key: str) -> Attachment:
    kind, ident = split_key(key)
    provider = PROVIDERS.get(kind)
    if provider is None:
        raise DocumentUnavailable(f"Type de document inconnu pour l'envoi : {kind}")
    return provider(ident)
