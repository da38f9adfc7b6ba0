"""Shared helpers for reading import files: the error report, cell converters and a streaming XLSX
table reader (openpyxl read-only, bounded memory) that turns malformed workbooks into French
messages instead of tracebacks.

Used by the residents import; the absences import may reuse :class:`Report`, :class:`CellError`
and the converters (``to_text``, ``to_bool``, ``to_date``, ``to_int``) for its CSV reader.

Rules (../shared/docs/formats.md, "Common rules"): first sheet, headers on row 1 (compared
upper-cased, without accents, spaces or trailing ``*``), free column order, unknown columns are a
warning, a missing mandatory column is an error; text is trimmed; empty cells are "no value";
booleans 0/1 (OUI/NON); dates are real date cells or ``JJ/MM/AAAA`` / ``AAAA-MM-JJ`` text.
"""
from __future__ import annotations

import difflib
import re
import unicodedata
import warnings
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any, Callable, Iterable, Sequence

from django.utils.translation import gettext as _

MAX_FILE_BYTES = 20 * 1024 * 1024
MAX_DATA_ROWS = 100_000
MAX_REPORT_VALUE = 80
EXCEL_ERRORS = {"#N/A", "#DIV/0!", "#REF!", "#VALUE!", "#NAME?", "#NUM!", "#NULL!", "#GETTING_DATA", "#SPILL!",
                "#CALC!"}

ZIP_MAGIC = b"PK\x03\x04"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ENCRYPTION_MARKER = "EncryptionInfo".encode("utf-16-le")


# --------------------------------------------------------------------------------------------- report
@dataclass
class Issue:
    level: str  # "error" | "warning"
    file: str
    sheet: str = ""
    row: int | None = None
    column: str = ""
    value: str = ""
    message: str = ""

    def as_line(self) -> str:
        """``file › sheet › row › column › value › message`` (what the command prints)."""
        parts = [self.file or "—", self.sheet or "—", str(self.row) if self.row else "—", self.column or "—",
                 self.value if self.value != "" else "(vide)", self.message]
        line = " › ".join(parts)
        return line if self.level == "error" else _("Avertissement : %(line)s") % {"line": line}

    def as_dict(self) -> dict:
        return {"level": self.level, "file": self.file, "sheet": self.sheet, "row": self.row, "column": self.column,
                "value": self.value, "message": self.message}


@dataclass
class Report:
    issues: list[Issue] = field(default_factory=list)

    def add(self, level: str, file: str, message: str, *, sheet: str = "", row: int | None = None,
            column: str = "", value: Any = None) -> Issue:
        issue = Issue(level, file, sheet, row, column, display_value(value), message)
        self.issues.append(issue)
        return issue

    def error(self, file: str, message: str, **where) -> Issue:
        return self.add("error", file, message, **where)

    def warning(self, file: str, message: str, **where) -> Issue:
        return self.add("warning", file, message, **where)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.level == "error"]

    @property
    def warnings(self) -> list[Issue]:
        return [i for i in self.issues if i.level == "warning"]

    @property
    def has_errors(self) -> bool:
        return any(i.level == "error" for i in self.issues)

    def sorted(self) -> list[Issue]:
        """Errors first, then warnings; each by file (in the order met), row, then column order."""
        files: dict[str, int] = {}
        for issue in self.issues:
            files.setdefault(issue.file, len(files))
        # sorted() is stable: issues of one row keep their column order.
        return sorted(self.issues, key=lambda i: (i.level != "error", files[i.file], i.row or 0))

    def as_list(self, limit: int | None = None) -> list[dict]:
        issues = self.sorted()
        return [i.as_dict() for i in (issues[:limit] if limit else issues)]


def display_value(value: Any) -> str:
    """A cell value as the user typed it (dates as JJ/MM/AAAA), shortened for the report."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        text = value.strftime("%d/%m/%Y") if (value.hour, value.minute, value.second) == (0, 0, 0) \
            else value.strftime("%d/%m/%Y %H:%M")
    elif isinstance(value, date):
        text = value.strftime("%d/%m/%Y")
    elif isinstance(value, bool):
        text = "VRAI" if value else "FAUX"
    elif isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        text = str(int(value))
    else:
        text = str(value)
    text = text.replace("\n", " ").replace("\r", " ")
    return text if len(text) <= MAX_REPORT_VALUE else text[:MAX_REPORT_VALUE - 1] + "…"


# ------------------------------------------------------------------------------------------ converters
class CellError(ValueError):
    """A cell value that cannot be used; the message (French) goes to the report as is."""


def to_text(value: Any, *, max_length: int | None = None) -> str:
    """Trimmed text; numbers without a useless ``.0``; ``""`` for an empty cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        text = "1" if value else "0"
    elif isinstance(value, float):
        if value.is_integer() and abs(value) < 1e16:
            text = str(int(value))
        else:
            text = format(Decimal(str(value)).normalize(), "f")
    elif isinstance(value, (datetime, date)):
        text = display_value(value)
    else:
        text = unicodedata.normalize("NFC", str(value))  # accents typed on a Mac come decomposed
    text = " ".join(text.split()) if "\n" in text or "\t" in text else text.strip()
    if text in EXCEL_ERRORS:
        raise CellError(_("Valeur d'erreur Excel « %(v)s » : corrigez la cellule.") % {"v": text})
    if max_length is not None and len(text) > max_length:
        raise CellError(_("Trop long : %(n)s caractères pour %(max)s au plus.") % {"n": len(text), "max": max_length})
    return text


TRUE_WORDS = {"1", "OUI", "O", "VRAI", "TRUE", "X"}
FALSE_WORDS = {"0", "NON", "N", "FAUX", "FALSE"}


def to_bool(value: Any) -> bool:
    """``0``/``1`` (also OUI/NON, VRAI/FAUX); an empty cell is ``False``."""
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = strip_accents(to_text(value)).upper()
    if text == "":
        return False
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise CellError(_("Valeur booléenne attendue : 0 ou 1 (ou OUI / NON)."))


def to_int(value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int | None:
    """A whole number from a number or a text cell (``"3"``, ``3.0``); ``None`` when empty."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise CellError(_("Nombre entier attendu."))
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not value.is_integer():
            raise CellError(_("Nombre entier attendu."))
        number = int(value)
    else:
        text = to_text(value).replace(",", ".").replace(" ", "")
        try:
            dec = Decimal(text)
        except InvalidOperation as exc:
            raise CellError(_("Nombre entier attendu.")) from exc
        if dec != dec.to_integral_value():
            raise CellError(_("Nombre entier attendu."))
        number = int(dec)
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise CellError(_("Valeur attendue entre %(min)s et %(max)s.") % {"min": minimum, "max": maximum})
    return number


_DMY = re.compile(r"^(\d{1,2})[/.](\d{1,2})[/.](\d{4})$")
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[ T]00:00(?::00)?)?$")


def to_date(value: Any) -> date | None:
    """A real date cell, or text ``JJ/MM/AAAA`` or ``AAAA-MM-JJ``; ``None`` when empty."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise CellError(_("Date attendue (cellule date Excel, ou texte JJ/MM/AAAA ou AAAA-MM-JJ) : "
                          "la cellule contient un nombre."))
    text = to_text(value)
    if text == "":
        return None
    match = _DMY.match(text)
    if match:
        day, month, year = (int(g) for g in match.groups())
    else:
        match = _ISO.match(text)
        if not match:
            raise CellError(_("Date attendue au format JJ/MM/AAAA (ou AAAA-MM-JJ)."))
        year, month, day = (int(g) for g in match.groups())
    try:
        return date(year, month, day)
    except ValueError as exc:
        raise CellError(_("Cette date n'existe pas.")) from exc


def strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def normalize_header(value: Any) -> str:
    """``" Date naissance *"`` → ``"DATE_NAISSANCE"``."""
    text = to_text(value) if not isinstance(value, str) else value.strip()
    text = strip_accents(text).upper().rstrip("*").strip()
    return re.sub(r"[\s\-]+", "_", text)


def column_letter(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


# ------------------------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class Column:
    name: str
    mandatory: bool = False
    help: str = ""
    example: Any = None


@dataclass
class Row:
    number: int  # row number as Excel shows it
    values: dict[str, Any]

    def get(self, name: str) -> Any:
        return self.values.get(name)


@dataclass
class Table:
    file: str
    sheet: str
    present: dict[str, int]  # header → 0-based column index
    rows: list[Row]

    def has(self, name: str) -> bool:
        return name in self.present


class FileProblem(Exception):
    """A file that cannot be read at all (message in French)."""


def _sniff(head: bytes, size: int, *, encrypted: bool = False) -> None:
    if size == 0:
        raise FileProblem(_("Le fichier est vide."))
    if size > MAX_FILE_BYTES:
        raise FileProblem(_("Le fichier fait %(size)s Mo : 20 Mo au plus sont acceptés. Découpez-le en plusieurs "
                            "fichiers.") % {"size": f"{size / 1024 / 1024:.1f}".replace(".", ",")})
    if head.startswith(OLE2_MAGIC):
        if encrypted:
            raise FileProblem(_("Le classeur est protégé par un mot de passe : enregistrez-le sans mot de passe "
                                "(Fichier › Informations › Protéger le classeur) puis importez-le à nouveau."))
        raise FileProblem(_("Ce fichier est au format Excel 97-2003 (.xls) : enregistrez-le au format « Classeur "
                            "Excel (.xlsx) » puis importez-le à nouveau."))
    if head.startswith(ZIP_MAGIC):
        return
    sample = head[:4096]
    if sample.startswith(b"%PDF"):
        raise FileProblem(_("Ce fichier est un PDF, pas un classeur Excel (.xlsx)."))
    try:
        text = sample.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = sample.decode("cp1252")
        except UnicodeDecodeError:
            text = ""
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    if text and printable / max(len(text), 1) > 0.95:
        if any(sep in text for sep in (";", ",", "\t")):
            raise FileProblem(_("Ce fichier est un fichier texte (CSV), pas un classeur Excel (.xlsx) : ouvrez-le dans "
                                "Excel et enregistrez-le au format « Classeur Excel (.xlsx) »."))
        raise FileProblem(_("Ce fichier est un fichier texte, pas un classeur Excel (.xlsx)."))
    raise FileProblem(_("Ce fichier n'est pas un classeur Excel (.xlsx) lisible."))


_FORMULA = re.compile(rb"<(?:\w+:)?f[\s>/]")
_MERGE = re.compile(rb"<(?:\w+:)?mergeCell\s[^>]*?ref=\"([A-Za-z]+\d+(?::[A-Za-z]+\d+)?)\"")


def _scan_sheet_xml(archive: zipfile.ZipFile, member: str) -> tuple[bool, list[str]]:
    """Does the sheet contain formulas, and which cell ranges are merged (streamed, C-speed regex)."""
    has_formula = False
    merged: list[str] = []
    tail = b""
    with archive.open(member) as stream:
        while True:
            chunk = stream.read(1 << 20)
            if not chunk:
                break
            buffer = tail + chunk
            if not has_formula and _FORMULA.search(buffer):
                has_formula = True
            if b"mergeCell" in buffer:
                merged.extend(m.decode("ascii") for m in _MERGE.findall(buffer))
            tail = buffer[-300:]  # a match across two chunks; duplicates are removed below
    return has_formula, list(dict.fromkeys(merged))


def check_archive_expansion(archive: zipfile.ZipFile) -> None:
    """Refuse a "zip bomb" before openpyxl parses anything: read from the ZIP directory alone, the
    uncompressed size of the workbook and its compression ratio must stay under the settings
    ``IMPORT_XLSX_MAX_UNCOMPRESSED_BYTES`` and ``IMPORT_XLSX_MAX_RATIO`` (zipfile never inflates a
    member beyond the size its directory entry declares)."""
    from django.conf import settings

    infos = archive.infolist()
    uncompressed = sum(info.file_size for info in infos)
    compressed = sum(info.compress_size for info in infos)
    limit = settings.IMPORT_XLSX_MAX_UNCOMPRESSED_BYTES
    max_ratio = settings.IMPORT_XLSX_MAX_RATIO
    if uncompressed > limit:
        raise FileProblem(_("Classeur refusé : une fois décompressé il ferait %(size)s Mo, %(limit)s Mo au plus "
                            "sont acceptés. Découpez-le en plusieurs fichiers.") % {
            "size": uncompressed // (1024 * 1024), "limit": limit // (1024 * 1024)})
    for info in infos:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > 1024 * 1024 and ratio > max_ratio:
            raise FileProblem(_("Classeur refusé : son contenu « %(member)s » est compressé %(ratio)s fois (%(max)s "
                                "au plus), ce qui ressemble à une « bombe de décompression ». Enregistrez le "
                                "classeur à nouveau depuis Excel.") % {
                "member": info.filename, "ratio": int(ratio), "max": max_ratio})
    if uncompressed > 1024 * 1024 and uncompressed / max(compressed, 1) > max_ratio:
        raise FileProblem(_("Classeur refusé : il est compressé %(ratio)s fois (%(max)s au plus), ce qui ressemble "
                            "à une « bombe de décompression ».") % {
            "ratio": int(uncompressed / max(compressed, 1)), "max": max_ratio})


def _open_source(source: Path | str | IO[bytes]) -> tuple[IO[bytes], bool]:
    if isinstance(source, (str, Path)):
        try:
            return open(source, "rb"), True  # noqa: SIM115 - closed by the caller
        except FileNotFoundError as exc:
            raise FileProblem(_("Fichier introuvable.")) from exc
        except OSError as exc:
            raise FileProblem(_("Fichier illisible : %(error)s.") % {"error": exc.strerror or exc}) from exc
    return source, False


def _size_of(handle: IO[bytes]) -> int:
    handle.seek(0, 2)
    size = handle.tell()
    handle.seek(0)
    return size


def _is_empty(values: Sequence[Any]) -> bool:
    return all(v is None or (isinstance(v, str) and v.strip() == "") for v in values)


def read_xlsx_table(source: Path | str | IO[bytes], *, filename: str, columns: Sequence[Column], report: Report,
                    progress: Callable[[int, int | None], None] | None = None,
                    max_rows: int = MAX_DATA_ROWS) -> Table | None:
    """Read the first sheet of an XLSX file into a :class:`Table` (header row 1, then data rows).

    Every problem goes to ``report`` (errors and warnings, in French). Returns ``None`` when the file
    cannot be used at all (not an XLSX, empty, no header row); otherwise the table, possibly with
    errors already reported (missing or duplicate columns, formulas without value, merged cells).
    Text cells are trimmed; empty cells and empty rows are dropped.
    """
    try:
        handle, owned = _open_source(source)
    except FileProblem as exc:
        report.error(filename, str(exc))
        return None
    try:
        return _read(handle, filename=filename, columns=columns, report=report, progress=progress,
                     max_rows=max_rows)
    except FileProblem as exc:
        report.error(filename, str(exc))
        return None
    finally:
        if owned:
            handle.close()


def _load(handle: IO[bytes], *, data_only: bool):
    import openpyxl

    handle.seek(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return openpyxl.load_workbook(handle, read_only=True, data_only=data_only)


def _open_archive(handle) -> tuple[zipfile.ZipFile, set[str]]:
    """Check the file is a usable XLSX container: not empty, not over 20 MB, not a password-protected
    workbook, an .xls, a PDF or a text file (:func:`_sniff`); a readable ZIP that is not an .ods and
    holds a workbook; not a decompression bomb. Returns the archive and its member names."""
    size = _size_of(handle)
    head = handle.read(8192)
    encrypted = False
    if head.startswith(OLE2_MAGIC) and size <= MAX_FILE_BYTES:
        # An encrypted OOXML workbook is an OLE2 container with an "EncryptionInfo" stream.
        encrypted = ENCRYPTION_MARKER in head + handle.read()
    handle.seek(0)
    _sniff(head, size, encrypted=encrypted)
    try:
        archive = zipfile.ZipFile(handle)
        names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise FileProblem(_("Le fichier est endommagé ou n'est pas un classeur Excel (.xlsx).")) from exc
    if "mimetype" in names and "content.xml" in names:
        raise FileProblem(_("Ce fichier est un classeur OpenDocument (.ods) : enregistrez-le au format « Classeur "
                            "Excel (.xlsx) »."))
    if "xl/workbook.xml" not in names and not any(n.endswith("workbook.xml") for n in names):
        raise FileProblem(_("Ce fichier est une archive ZIP mais pas un classeur Excel (.xlsx)."))
    check_archive_expansion(archive)
    return archive, names


def _open_workbook(handle):
    """The workbook with the values Excel saved (openpyxl read-only); any openpyxl failure becomes a
    French message."""
    try:
        return _load(handle, data_only=True)
    except Exception as exc:  # noqa: BLE001 - openpyxl raises anything on a broken file; never a traceback
        raise FileProblem(_("Le classeur est illisible (fichier endommagé ou format non pris en charge) : "
                            "ouvrez-le dans Excel et enregistrez-le à nouveau au format .xlsx.")) from exc


def _scan_first_sheet(archive: zipfile.ZipFile, names: set[str], sheet, *, filename, report) -> bool:
    """Scan the sheet's XML: each merged range is an error at its first row; returns whether the sheet
    has formulas (their cached values are then checked against the formulas)."""
    sheet_name = sheet.title
    member = getattr(sheet, "_worksheet_path", None)
    has_formula, merged = (False, [])
    if member and member in names:
        try:
            has_formula, merged = _scan_sheet_xml(archive, member)
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise FileProblem(_("Le classeur est endommagé (feuille « %(sheet)s » illisible).") % {
                "sheet": sheet_name}) from exc
    for ref in merged:
        first = ref.split(":")[0]
        report.error(filename, _("Cellules fusionnées (%(ref)s) : défusionnez-les et recopiez la valeur dans "
                                 "chaque cellule.") % {"ref": ref.upper()}, sheet=sheet_name,
                     row=int(re.sub(r"[^0-9]", "", first)))
    return has_formula


def _formula_rows(handle, books: list):
    """The first sheet's rows as formulas (a second read-only load, added to ``books`` to be closed)."""
    formula_book = _load(handle, data_only=False)
    books.append(formula_book)
    formula_sheet = formula_book.worksheets[0]
    formula_sheet.reset_dimensions()
    return formula_sheet.iter_rows(values_only=True)


def _read(handle, *, filename, columns, report, progress, max_rows) -> Table | None:
    """Read the first sheet of a checked container (:func:`_open_archive`); a sheet openpyxl cannot
    read is a French message; the workbooks are always closed."""
    archive, names = _open_archive(handle)
    books = [_open_workbook(handle)]
    try:
        workbook = books[0]
        if not workbook.worksheets:
            raise FileProblem(_("Le classeur ne contient aucune feuille de calcul."))
        sheet = workbook.worksheets[0]
        sheet_name = sheet.title
        has_formula = _scan_first_sheet(archive, names, sheet, filename=filename, report=report)
        estimate = sheet.max_row if isinstance(getattr(sheet, "max_row", None), int) else None
        sheet.reset_dimensions()
        try:
            formula_rows = _formula_rows(handle, books) if has_formula else None
            return _read_rows(sheet.iter_rows(values_only=True), formula_rows, filename=filename,
                              sheet_name=sheet_name, columns=columns, report=report, progress=progress,
                              estimate=estimate, max_rows=max_rows)
        except FileProblem:
            raise
        except Exception as exc:  # noqa: BLE001 - a broken sheet must give a message, not a traceback
            raise FileProblem(_("Le classeur est illisible (feuille « %(sheet)s » endommagée) : ouvrez-le dans "
                                "Excel et enregistrez-le à nouveau au format .xlsx.") % {"sheet": sheet_name}) from exc
    finally:
        for book in books:
            book.close()


def _header_map(header: Sequence[Any], *, filename, sheet_name, columns, report) -> dict[str, int] | None:
    known = {c.name: c for c in columns}
    present: dict[str, int] = {}
    unknown: list[tuple[int, str]] = []
    for index, raw in enumerate(header):
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            continue
        name = normalize_header(raw)
        if name in known:
            if name in present:
                report.error(filename, _("En-tête en double : la colonne %(name)s apparaît en %(first)s et en "
                                         "%(second)s.") % {"name": name, "first": column_letter(present[name]),
                                                           "second": column_letter(index)},
                             sheet=sheet_name, row=1, column=name, value=raw)
                continue
            present[name] = index
        else:
            unknown.append((index, display_value(raw)))
    if not present:
        return None
    for index, raw in unknown:
        guess = difflib.get_close_matches(normalize_header(raw), list(known), n=1, cutoff=0.75)
        hint = _(" (vouliez-vous écrire %(name)s ?)") % {"name": guess[0]} if guess and guess[0] not in present else ""
        report.warning(filename, _("Colonne inconnue en %(letter)s, ignorée%(hint)s.") % {
            "letter": column_letter(index), "hint": hint}, sheet=sheet_name, row=1, column=raw, value=raw)
    for column in columns:
        if column.mandatory and column.name not in present:
            guess = [raw for _i, raw in unknown
                     if difflib.get_close_matches(normalize_header(raw), [column.name], n=1, cutoff=0.75)]
            hint = _(" (en-tête « %(raw)s » mal orthographié ?)") % {"raw": guess[0]} if guess else ""
            report.error(filename, _("Colonne obligatoire %(name)s absente de la ligne d'en-têtes%(hint)s.") % {
                "name": column.name, "hint": hint}, sheet=sheet_name, row=1, column=column.name)
    return present


def _no_header_problem(header, iterator, *, sheet_name, known_names) -> FileProblem:
    """Why row 1 gives no known header: headers found in rows 2–6 (a title row above them), row 1
    empty, or no expected name in it."""
    for number, values in enumerate(iterator, start=2):
        if number > 6:
            break
        if values and any(normalize_header(v) in known_names for v in values if isinstance(v, str)):
            return FileProblem(_("Les en-têtes sont en ligne %(n)s de la feuille « %(sheet)s » : ils doivent être "
                                 "en ligne 1 (supprimez les lignes au-dessus).") % {"n": number, "sheet": sheet_name})
    if header is None or _is_empty(header):
        return FileProblem(_("La ligne 1 de la feuille « %(sheet)s » est vide : elle doit contenir les en-têtes de "
                             "colonnes en majuscules (%(names)s…).") % {
            "sheet": sheet_name, "names": ", ".join(known_names[:4])})
    return FileProblem(_("La ligne 1 de la feuille « %(sheet)s » ne contient aucun en-tête attendu : la première "
                         "ligne doit contenir les en-têtes de colonnes en majuscules (%(names)s…).") % {
        "sheet": sheet_name, "names": ", ".join(known_names[:4])})


def _read_header_row(iterator, formula_rows, *, filename, sheet_name, columns, report) -> dict[str, int]:
    """Row 1 (the formula rows kept in step): the known columns' positions (:func:`_header_map`), or a
    :class:`FileProblem` when it has none."""
    header = next(iterator, None)
    if formula_rows is not None:
        next(formula_rows, None)
    present = None
    if header is not None and not _is_empty(header):
        present = _header_map(header, filename=filename, sheet_name=sheet_name, columns=columns, report=report)
    if present is None:
        raise _no_header_problem(header, iterator, sheet_name=sheet_name, known_names=[c.name for c in columns])
    return present


def _row_values(number: int, values, formula_values, wanted, *, filename, sheet_name, report) -> dict[str, Any]:
    """The known columns' values of one row: text trimmed, empty cells dropped; a formula without a
    cached value is an error naming its cell (Excel reference), and the cell is dropped."""
    width = len(values)
    row_values: dict[str, Any] = {}
    for name, index in wanted:
        value = values[index] if index < width else None
        if value is None and formula_values is not None and index < len(formula_values) \
                and formula_values[index] is not None:
            report.error(filename, _("Formule sans valeur calculée en %(cell)s : ouvrez le fichier dans Excel, "
                                     "enregistrez-le, ou remplacez la formule par sa valeur.") % {
                "cell": f"{column_letter(index)}{number}"}, sheet=sheet_name, row=number, column=name,
                value=formula_values[index])
            continue
        if isinstance(value, str):
            value = value.strip()
            if value == "":
                continue
        if value is not None:
            row_values[name] = value
    return row_values


def _read_rows(rows: Iterable[Sequence[Any]], formula_rows, *, filename, sheet_name, columns, report, progress,
               estimate, max_rows) -> Table | None:
    """The data rows after the header, each keeping its Excel number; empty rows skipped; more than
    ``max_rows`` non-empty rows is a :class:`FileProblem`. ``progress`` every 500 rows and at the end."""
    iterator = iter(rows)
    present = _read_header_row(iterator, formula_rows, filename=filename, sheet_name=sheet_name, columns=columns,
                           report=report)
    wanted = sorted(present.items(), key=lambda kv: kv[1])
    table = Table(file=filename, sheet=sheet_name, present=present, rows=[])
    count = 0
    for number, values in enumerate(iterator, start=2):
        formula_values = next(formula_rows, None) if formula_rows is not None else None
        if progress and number % 500 == 0:
            progress(number, estimate)
        if not values:
            continue
        row_values = _row_values(number, values, formula_values, wanted, filename=filename, sheet_name=sheet_name,
                                 report=report)
        if not row_values:
            continue  # empty row (or only unknown columns, already warned about via the header)
        count += 1
        if count > max_rows:
            raise FileProblem(_("Le fichier contient plus de %(max)s lignes : découpez-le en plusieurs fichiers.") % {
                "max": f"{max_rows:_}".replace("_", " ")})
        table.rows.append(Row(number, row_values))
    if progress:
        progress(count + 1, count + 1)
    return table
