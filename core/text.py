"""French-friendly text keys: search that ignores accents and case, and alphabetical order the French
way (« Émile » with the E, « D'ARÇY » with the D), identical on SQLite and PostgreSQL.

Databases compare accented letters by code point (SQLite) or by the server's collation (PostgreSQL),
so names are normalised once, on save, into a plain lowercase ASCII key column that both search
(``icontains`` on the key) and ordering use."""
from __future__ import annotations

import re
import unicodedata

LIGATURES = str.maketrans({"œ": "oe", "Œ": "oe", "æ": "ae", "Æ": "ae", "ß": "ss"})
_NOT_WORD = re.compile(r"[^a-z0-9]+")


def text_key(*parts: str | None) -> str:
    """``"D'Arçy", "Émile"`` → ``"darcy emile"``: no accents, lowercase, apostrophes, hyphens and
    punctuation dropped inside words, one space between the parts."""
    words = []
    for part in parts:
        if not part:
            continue
        decomposed = unicodedata.normalize("NFKD", part.translate(LIGATURES))
        plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold()
        for word in plain.split():
            word = _NOT_WORD.sub("", word)
            if word:
                words.append(word)
    return " ".join(words)


def search_terms(query: str) -> list[str]:
    """The words of a search box, normalised like the keys (empty words dropped)."""
    return [term for term in (text_key(word) for word in (query or "").split()) if term]
