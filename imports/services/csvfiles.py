"""Reading the CSV/TXT exchange files: encoding and delimiter detection, physical line numbers.

formats.md, common rules: UTF-8 (with or without BOM) or Windows-1252 (what French Excel writes);
delimiter ``;``, ``,`` or tab, detected; empty lines ignored. Any malformed input raises
:class:`CsvFileError` with a French message (never a traceback).
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

MAX_BYTES = 20 * 1024 * 1024
DELIMITERS = (";", "\t", ",")
DELIMITER_NAMES = {";": "point-virgule", "\t": "tabulation", ",": "virgule", " ": "espace"}


class CsvFileError(Exception):
    """The file cannot be read at all (French message for the user)."""


@dataclass
class CsvRow:
    line: int  # physical line number in the file, 1 = first line (as a text editor or Excel shows it)
    cells: list[str]


@dataclass
class CsvTable:
    encoding: str
    delimiter: str
    header_line: int
    header: list[str]
    rows: list[CsvRow] = field(default_factory=list)

    @property
    def delimiter_name(self) -> str:
        return DELIMITER_NAMES.get(self.delimiter, self.delimiter)


def decode(data: bytes) -> tuple[str, str]:
    """Bytes → (text, encoding name). UTF-8 with or without BOM, else Windows-1252."""
    if len(data) > MAX_BYTES:
        raise CsvFileError(_("Le fichier dépasse %(max)s Mo.") % {"max": MAX_BYTES // (1024 * 1024)})
    if not data.strip():
        raise CsvFileError(_("Le fichier est vide."))
    if data.startswith(b"PK\x03\x04"):
        raise CsvFileError(_("Le fichier est un classeur Excel (XLSX) ou une archive, pas un fichier texte : "
                             "enregistrez-le au format CSV (séparateur point-virgule)."))
    if data.startswith(b"\xd0\xcf\x11\xe0"):
        raise CsvFileError(_("Le fichier est un ancien classeur Excel (XLS), pas un fichier texte : "
                             "enregistrez-le au format CSV (séparateur point-virgule)."))
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise CsvFileError(_("Le fichier est encodé en UTF-16, qui n'est pas accepté : enregistrez-le en "
                             "CSV UTF-8 ou en CSV (séparateur point-virgule) de Windows."))
    if b"\x00" in data:
        raise CsvFileError(_("Le fichier contient des caractères binaires : ce n'est pas un fichier texte "
                             "CSV ou TXT."))
    if data.startswith(b"\xef\xbb\xbf"):
        try:
            return data[3:].decode("utf-8"), "UTF-8 (BOM)"
        except UnicodeDecodeError as exc:
            raise CsvFileError(_("Le fichier annonce l'encodage UTF-8 mais contient un octet invalide "
                                 "(position %(pos)s).") % {"pos": exc.start + 3}) from exc
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "Windows-1252"
    except UnicodeDecodeError as exc:
        raise CsvFileError(_("Encodage du fichier non reconnu (ni UTF-8 ni Windows-1252, octet invalide en "
                             "position %(pos)s).") % {"pos": exc.start}) from exc


def detect_delimiter(header_line: str, *, allow_space: bool = False) -> str:
    """The delimiter found most often in the header line (``;`` wins ties, then tab, then ``,``)."""
    counts = {d: header_line.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])  # max keeps the first of equal counts
    if counts[best]:
        return best
    if allow_space and len(header_line.split()) > 1:
        return " "
    raise CsvFileError(_("Séparateur de colonnes non reconnu dans la première ligne « %(line)s » : "
                         "utilisez le point-virgule, la virgule ou la tabulation.") % {"line": header_line[:80]})


def _physical_lines(text: str):
    """Non-empty lines with their numbers; a line made only of spaces and delimiters counts as empty."""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip(" \t;,\"") == "":
            continue
        yield number, line


def read_table(data: bytes, *, allow_space_delimiter: bool = False) -> CsvTable:
    """Decode, detect the delimiter on the first non-empty line (the header), split every other
    non-empty line into cells (csv quoting rules). Cells are trimmed."""
    text, encoding = decode(data)
    lines = list(_physical_lines(text))
    if not lines:
        raise CsvFileError(_("Le fichier est vide."))
    header_line, header_text = lines[0]
    delimiter = detect_delimiter(header_text, allow_space=allow_space_delimiter)
    table = CsvTable(encoding=encoding, delimiter=delimiter, header_line=header_line, header=[])
    try:
        for number, line in lines:
            if delimiter == " ":
                cells = line.split()
            else:
                cells = next(csv.reader(io.StringIO(line), delimiter=delimiter, quotechar='"',
                                        skipinitialspace=False, strict=False), [])
            cells = [c.strip().strip("\ufeff") for c in cells]
            if number == header_line:
                table.header = cells
            else:
                table.rows.append(CsvRow(line=number, cells=cells))
    except csv.Error as exc:  # pragma: no cover - the reader is not strict; kept as a guard
        raise CsvFileError(_("Ligne %(line)s illisible : %(error)s") % {"line": number, "error": exc}) from exc
    return table


def normalise_header(value: str) -> str:
    """Header cell → canonical name: trimmed, upper case, ``01`` → ``1`` for the day columns."""
    value = value.strip().strip('"').strip().upper()
    if value.isdigit():
        return str(int(value))
    return value
