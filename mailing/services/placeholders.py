"""Placeholders of mail subjects and texts: a registry, each with a label and a sample value.

Apps register the placeholders they can fill (billing registers ``{personne}``, ``{periode}``,
``{numero}``, ``{montant}``, ``{etablissement}`` and the historical ``&personne`` / ``&periode``
of the software billing offices used before). ``render`` replaces both spellings;
``unknown_placeholders`` finds typos (``{numéro}``) so forms can refuse them; ``sample_values``
gives a preview without any real document.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

BRACE = re.compile(r"\{([A-Za-zÀ-ÿ_]+)\}")


@dataclass(frozen=True)
class Placeholder:
    name: str
    label: str
    sample: str
    legacy: str = ""  # "&personne"

    @property
    def token(self) -> str:
        return "{" + self.name + "}"


REGISTRY: dict[str, Placeholder] = {}


def register_placeholder(name: str, *, label: str, sample: str, legacy: str = "") -> Placeholder:
    placeholder = Placeholder(name=name, label=label, sample=sample, legacy=legacy)
    REGISTRY[name] = placeholder
    return placeholder


def placeholders() -> list[Placeholder]:
    return list(REGISTRY.values())


def sample_values() -> dict[str, str]:
    return {p.name: p.sample for p in REGISTRY.values()}


def render(text: str, values: dict[str, str]) -> str:
    """Replace ``{name}`` and the legacy ``&name`` of registered placeholders by ``values``.
    Unknown ``{x}`` are left as typed (forms refuse them first)."""
    if not text:
        return ""
    legacy = sorted((p for p in REGISTRY.values() if p.legacy), key=lambda p: -len(p.legacy))
    for placeholder in legacy:
        if placeholder.name in values:
            text = re.sub(re.escape(placeholder.legacy) + r"(?![A-Za-zÀ-ÿ_])", lambda _m: str(values[placeholder.name]),
                          text)
    return BRACE.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values and m.group(1) in REGISTRY
                     else m.group(0), text)


def unknown_placeholders(text: str) -> list[str]:
    return sorted({"{" + name + "}" for name in BRACE.findall(text or "") if name not in REGISTRY})
