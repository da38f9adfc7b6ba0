"""The one writer of every exported file (CSV and XLSX), safe against formula injection.

A name typed as ``=HYPERLINK("http://…"&A1,"Cliquez")`` must never become a live formula in a
spreadsheet that opens an export. Every text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab
or a carriage return is prefixed with a single quote (the OWASP "CSV injection" rule), in CSV and in
XLSX alike; XLSX text cells are moreover written with the *string* type, never as formulas.
Typed values stay typed: ``Decimal``/``int`` are numbers, ``date``/``datetime`` are dates, so a
negative amount (``-12,50``) is a number, not text to neutralise.

CSV: semicolon-separated, decimal comma, dates ``JJ/MM/AAAA``, UTF-8 with BOM, CRLF (what French
spreadsheets and accounting imports expect).
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal

from django.utils import timezone

DANGEROUS_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
MONEY_FORMAT = "#,##0.00"
DATE_FORMAT = "DD/MM/YYYY"
DATETIME_FORMAT = "DD/MM/YYYY HH:MM"
TEXT_FORMAT = "@"
COMMENT_AUTHOR = "Séjour"


def neutralize(value):
    """``value`` itself, or — a text starting like a formula — the text behind a single quote."""
    if isinstance(value, str) and value.startswith(DANGEROUS_PREFIXES):
        return "'" + value
    return value


def _naive_local(value: datetime) -> datetime:
    return timezone.localtime(value).replace(tzinfo=None) if timezone.is_aware(value) else value


# --- CSV ------------------------------------------------------------------------------------------

def csv_value(value) -> str:
    """One CSV field: numbers with a decimal comma (``Decimal`` on 2 places), French dates, safe text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Decimal):
        return f"{value:.2f}".replace(".", ",")
    if isinstance(value, (int, float)):
        return str(value).replace(".", ",")
    if isinstance(value, datetime):
        return _naive_local(value).strftime("%d/%m/%Y %H:%M")
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    return neutralize(str(value))


def csv_lines(rows: Iterable[Sequence]) -> Iterator[str]:
    """The CSV text line by line (the first one with the BOM): for a ``StreamingHttpResponse``."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    first = True
    for row in rows:
        writer.writerow([csv_value(value) for value in row])
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        yield ("\ufeff" + text) if first else text
        first = False


def csv_bytes(rows: Iterable[Sequence]) -> bytes:
    """The whole CSV file as bytes (UTF-8 with BOM)."""
    return "".join(csv_lines(rows)).encode("utf-8")


# --- XLSX -----------------------------------------------------------------------------------------

class XlsxWriter:
    """A streamed (write-only) workbook: ``writer.sheet(title)``, ``writer.append([...])``,
    ``writer.to_bytes()``. Values are cells made by :meth:`cell` or plain values (made into cells).

    Rows are written as they are appended (a large export never holds its cells in memory), so what
    shapes a row — its height, cells merged across columns — is given to :meth:`append` with the row.
    Cells may carry a bold/size font, a background ``fill`` and a ``comment`` (the import templates)."""

    def __init__(self):
        from openpyxl import Workbook

        self.workbook = Workbook(write_only=True)
        self.current = None
        self.row = 0

    def sheet(self, title: str, *, widths: Sequence[int] = (), freeze: str | None = None):
        from openpyxl.utils import get_column_letter

        self.current = self.workbook.create_sheet(title=str(title)[:31])
        self.row = 0
        for index, width in enumerate(widths, start=1):
            self.current.column_dimensions[get_column_letter(index)].width = width
        if freeze:
            self.current.freeze_panes = freeze
        return self.current

    def cell(self, value, *, number_format: str | None = None, bold: bool = False, size: int | None = None,
             wrap: bool = False, fill: str | None = None, comment: str | None = None):
        """One cell: typed values keep their type (``number_format=TEXT_FORMAT`` makes any value text),
        text is neutralised and never a formula; ``fill`` is an RGB colour (``"FFE2B6"``)."""
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.comments import Comment
        from openpyxl.styles import Alignment, Font, PatternFill

        if number_format == TEXT_FORMAT and value is not None:
            value = str(value)
        if isinstance(value, datetime):
            value = _naive_local(value)
            number_format = number_format or DATETIME_FORMAT
        elif isinstance(value, date):
            number_format = number_format or DATE_FORMAT
        elif isinstance(value, Decimal):
            number_format = number_format or MONEY_FORMAT
        elif value is not None and not isinstance(value, (int, float)):
            value = neutralize(str(value))
        cell = WriteOnlyCell(self.current, value=value)
        if isinstance(value, str):
            cell.data_type = "s"  # never a formula, whatever the text
        if number_format:
            cell.number_format = number_format
        if bold or size:
            cell.font = Font(bold=bold, size=size)
        if wrap:
            cell.alignment = Alignment(wrap_text=True, vertical="top")
        if fill:
            cell.fill = PatternFill("solid", fgColor=fill)
        if comment:
            cell.comment = Comment(comment, COMMENT_AUTHOR)
        return cell

    def append(self, values: Iterable, *, height: float | None = None, merge: tuple[int, int] | None = None) -> None:
        """Write the next row; ``height`` in points; ``merge=(first, last)`` merges those columns (1-based)."""
        from openpyxl.cell.cell import Cell
        from openpyxl.utils import get_column_letter

        self.row += 1
        if height:
            self.current.row_dimensions[self.row].height = height  # read when the row is written, so before
        if merge:
            first, last = (get_column_letter(index) for index in merge)
            self.current.merged_cells.add(f"{first}{self.row}:{last}{self.row}")
        self.current.append([self._safe(value) if isinstance(value, Cell) else self.cell(value) for value in values])

    @staticmethod
    def _safe(cell):
        """A cell made elsewhere than :meth:`cell` is neutralised the same way: text, never a formula."""
        if isinstance(cell.value, str):
            cell.value = neutralize(cell.value)
            cell.data_type = "s"
        return cell

    def to_bytes(self) -> bytes:
        output = io.BytesIO()
        self.workbook.save(output)
        return output.getvalue()


def xlsx_bytes(title: str, rows: Iterable[Sequence], *, headers: Sequence[str] = (),
               widths: Sequence[int] = ()) -> bytes:
    """A one-sheet workbook: a bold frozen header row, then ``rows``."""
    writer = XlsxWriter()
    writer.sheet(title, widths=widths, freeze="A2" if headers else None)
    if headers:
        writer.append([writer.cell(header, bold=True) for header in headers])
    for row in rows:
        writer.append(row)
    return writer.to_bytes()
