"""The FEC (Fichier des Écritures Comptables, LPF art. A47 A-1) writer and checker (books.md §2).

Writer (``fec_bytes``): the 18 columns in the official order with their names as the header line,
one separator per file (tab by default, or ``|``), no quotes ever (a FEC is not a CSV), dates
``AAAAMMJJ``, amounts with a decimal comma and no thousands separator, ISO 8859-15, CRLF. Like every
export (``core.exports``), a text that starts with ``=``, ``+``, ``-`` or ``@`` is neutralised by a
leading single quote; a separator, tab or line break inside a text becomes a space.

Checker (``fec_check``): header and column order, formats, ``CompteNum`` starting with 3 digits, never a
debit and a credit on one line, each entry's lines together and balanced, one date per entry, and
``EcritureNum`` continuous (no gap, no repeat) within each journal. It returns the French messages
(empty list = valid); ``fec_assert_valid`` raises ``FecError`` with them.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from .exports import neutralize

COLUMNS = ("JournalCode", "JournalLib", "EcritureNum", "EcritureDate", "CompteNum", "CompteLib", "CompAuxNum",
           "CompAuxLib", "PieceRef", "PieceDate", "EcritureLib", "Debit", "Credit", "EcritureLet", "DateLet",
           "ValidDate", "Montantdevise", "Idevise")
SEPARATORS = ("\t", "|")
ENCODING = "iso-8859-15"
_DATE_COLUMNS = {"EcritureDate", "PieceDate", "DateLet", "ValidDate"}
_AMOUNT_RE = re.compile(r"^\d+(,\d{1,2})?$")
_DATE_RE = re.compile(r"^\d{8}$")


class FecError(ValueError):
    def __init__(self, messages: list[str]):
        super().__init__("\n".join(messages))
        self.messages = messages


def fec_value(value, separator: str) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value:.2f}".replace(".", ",")
    if isinstance(value, datetime):
        return value.strftime("%Y%m%d")
    if isinstance(value, date):
        return value.strftime("%Y%m%d")
    text = str(value)
    for char in (separator, "\t", "\r", "\n"):
        text = text.replace(char, " ")
    return neutralize(text.strip())


def fec_bytes(rows: Iterable[Sequence], *, separator: str = "\t") -> bytes:
    """The FEC file: header line then ``rows`` (18 values each, in ``COLUMNS`` order)."""
    if separator not in SEPARATORS:
        raise ValueError("FEC separator must be a tab or '|'")
    lines = [separator.join(COLUMNS)]
    for row in rows:
        if len(row) != len(COLUMNS):
            raise ValueError(f"a FEC row has {len(COLUMNS)} values, not {len(row)}")
        lines.append(separator.join(fec_value(value, separator) for value in row))
    return ("\r\n".join(lines) + "\r\n").encode(ENCODING, errors="replace")


def fec_filename(siren: str, closing: date) -> str:
    """``<SIREN>FEC<AAAAMMJJ>.txt``."""
    return f"{siren}FEC{closing:%Y%m%d}.txt"


def _amount(text: str) -> Decimal | None:
    if text == "":
        return Decimal("0")
    if not _AMOUNT_RE.match(text):
        return None
    try:
        return Decimal(text.replace(",", "."))
    except InvalidOperation:  # pragma: no cover - the pattern already rules it out
        return None


def fec_check(content: bytes) -> list[str]:
    """Every problem of a FEC file, in French, with its line number (empty list: the file is valid)."""
    try:
        text = content.decode(ENCODING)
    except UnicodeDecodeError:
        return ["Le fichier n'est pas encodé en ISO 8859-15."]
    lines = text.replace("\r\n", "\n").rstrip("\n").split("\n")
    if not lines or not lines[0]:
        return ["Le fichier est vide."]
    header = lines[0]
    separator = "\t" if "\t" in header else "|"
    names = header.split(separator)
    if tuple(names) != COLUMNS:
        return [f"Ligne 1 : l'en-tête doit être les 18 colonnes {', '.join(COLUMNS)} dans cet ordre "
                f"(trouvé : {', '.join(names)})."]
    errors: list[str] = []
    entries: dict[tuple[str, str], dict] = {}
    order: list[tuple[str, str]] = []
    previous_key = None
    for number, line in enumerate(lines[1:], start=2):
        values = line.split(separator)
        if len(values) != len(COLUMNS):
            errors.append(f"Ligne {number} : {len(values)} colonnes au lieu de {len(COLUMNS)}.")
            continue
        row = dict(zip(COLUMNS, values))
        for column in _DATE_COLUMNS:
            value = row[column]
            if value and (not _DATE_RE.match(value) or not _valid_date(value)):
                errors.append(f"Ligne {number} : {column} « {value} » n'est pas une date AAAAMMJJ.")
        for column in ("JournalCode", "EcritureNum", "EcritureDate", "CompteNum", "PieceRef", "EcritureLib"):
            if not row[column].strip():
                errors.append(f"Ligne {number} : {column} est vide.")
        if row["CompteNum"] and not re.match(r"^\d{3}", row["CompteNum"]):
            errors.append(f"Ligne {number} : CompteNum « {row['CompteNum']} » ne commence pas par 3 chiffres.")
        debit, credit = _amount(row["Debit"]), _amount(row["Credit"])
        if debit is None:
            errors.append(f"Ligne {number} : Debit « {row['Debit']} » n'est pas un montant (virgule décimale).")
        if credit is None:
            errors.append(f"Ligne {number} : Credit « {row['Credit']} » n'est pas un montant (virgule décimale).")
        if debit is None or credit is None:
            continue
        if debit and credit:
            errors.append(f"Ligne {number} : un débit et un crédit sur la même ligne.")
        if not debit and not credit:
            errors.append(f"Ligne {number} : ni débit ni crédit.")
        key = (row["JournalCode"], row["EcritureNum"])
        if key != previous_key and key in entries:
            errors.append(f"Ligne {number} : les lignes de l'écriture {key[1]} du journal {key[0]} ne se suivent pas.")
        previous_key = key
        entry = entries.setdefault(key, {"debit": Decimal("0"), "credit": Decimal("0"), "dates": set(),
                                         "line": number})
        if entry["line"] == number:
            order.append(key)
        entry["debit"] += debit
        entry["credit"] += credit
        entry["dates"].add(row["EcritureDate"])
    for key in order:
        entry = entries[key]
        if entry["debit"] != entry["credit"]:
            errors.append(f"Écriture {key[1]} du journal {key[0]} (ligne {entry['line']}) déséquilibrée : "
                          f"débit {entry['debit']:.2f}, crédit {entry['credit']:.2f}.".replace(".", ","))
        if len(entry["dates"]) > 1:
            errors.append(f"Écriture {key[1]} du journal {key[0]} (ligne {entry['line']}) : plusieurs dates.")
    by_journal: dict[str, list[str]] = {}
    for journal, num in order:
        by_journal.setdefault(journal, []).append(num)
    for journal, numbers in by_journal.items():
        if not all(n.isdigit() for n in numbers):
            errors.append(f"Journal {journal} : EcritureNum doit être un numéro (trouvé "
                          f"{', '.join(n for n in numbers if not n.isdigit())}).")
            continue
        values = [int(n) for n in numbers]
        for before, after in zip(values, values[1:]):
            if after != before + 1:
                errors.append(f"Journal {journal} : numérotation discontinue, l'écriture {after} suit la {before} "
                              f"(attendu {before + 1}).")
    return errors


def _valid_date(value: str) -> bool:
    try:
        datetime.strptime(value, "%Y%m%d")
    except ValueError:
        return False
    return True


def fec_assert_valid(content: bytes) -> None:
    errors = fec_check(content)
    if errors:
        raise FecError(errors)
