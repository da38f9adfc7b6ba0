"""The streaming XLSX reader on its own (``read_xlsx_table``): the file-level refusals that the
residents import tests do not reach — an .ods, a workbook without sheet, a damaged sheet, too many
rows — and the progress it reports. Each refusal is one French error and no table."""
from __future__ import annotations

import io
import re
import zipfile

from openpyxl import Workbook

from imports.services.xlsx import Column, Report, read_xlsx_table

COLUMNS = [Column("NOM", mandatory=True), Column("AGE")]


def _book(rows: list[list]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Feuille"
    sheet.append(["NOM", "AGE"])
    for row in rows:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _rewrite(data: bytes, member: str, change) -> bytes:
    """The same archive with ``member`` replaced by ``change(content)``."""
    source, buffer = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as target:
        for info in source.infolist():
            content = source.read(info.filename)
            target.writestr(info.filename, change(content) if info.filename == member else content)
    return buffer.getvalue()


def _read(data: bytes, **kwargs):
    report = Report()
    table = read_xlsx_table(io.BytesIO(data), filename="f.xlsx", columns=COLUMNS, report=report, **kwargs)
    return table, [issue.as_line() for issue in report.errors]


def _refused(data: bytes, message: str, **kwargs) -> None:
    table, errors = _read(data, **kwargs)
    assert table is None
    assert errors == [f"f.xlsx › — › — › — › (vide) › {message}"]


def test_opendocument_spreadsheet_is_refused():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        archive.writestr("content.xml", "<office:document-content/>")
    _refused(buffer.getvalue(), "Ce fichier est un classeur OpenDocument (.ods) : enregistrez-le au format « Classeur "
                                "Excel (.xlsx) ».")


def test_workbook_without_sheet_is_refused():
    data = _rewrite(_book([["a", 1]]), "xl/workbook.xml", lambda c: re.sub(rb"<sheets>.*</sheets>", b"<sheets/>", c))
    _refused(data, "Le classeur ne contient aucune feuille de calcul.")


def test_damaged_sheet_names_the_sheet():
    data = _rewrite(_book([["a", 1], ["b", 2]]), "xl/worksheets/sheet1.xml", lambda c: c[: len(c) // 2])
    _refused(data, "Le classeur est illisible (feuille « Feuille » endommagée) : ouvrez-le dans Excel et "
                   "enregistrez-le à nouveau au format .xlsx.")


def test_more_rows_than_allowed_is_refused_empty_rows_not_counted():
    data = _book([["a", 1], [None, None], ["b", 2], ["c", 3]])
    table, errors = _read(data, max_rows=3)
    assert not errors and [(r.number, r.values) for r in table.rows] == [
        (2, {"NOM": "a", "AGE": 1}), (4, {"NOM": "b", "AGE": 2}), (5, {"NOM": "c", "AGE": 3})]
    _refused(_book([[f"n{i}", i] for i in range(1001)]),
             "Le fichier contient plus de 1 000 lignes : découpez-le en plusieurs fichiers.", max_rows=1000)


def test_progress_every_500_rows_then_done():
    calls = []
    table, errors = _read(_book([[f"n{i}", i] for i in range(1200)]),
                          progress=lambda n, total: calls.append((n, total)))
    assert not errors and len(table.rows) == 1200
    assert calls == [(500, 1201), (1000, 1201), (1201, 1201)]


def test_a_failure_reading_the_formulas_is_a_french_message(monkeypatch):
    """A sheet with formulas is read a second time (the formulas beside their cached values); if that
    read fails, the user gets the damaged-sheet message, never a traceback."""
    from imports.services import xlsx

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Feuille"
    sheet.append(["NOM", "AGE"])
    sheet.append(["Martin", "=40+2"])
    buffer = io.BytesIO()
    workbook.save(buffer)
    real_load = xlsx._load

    def load(handle, *, data_only):
        if not data_only:
            raise KeyError("xl/worksheets/sheet1.xml")
        return real_load(handle, data_only=data_only)

    monkeypatch.setattr(xlsx, "_load", load)
    _refused(buffer.getvalue(), "Le classeur est illisible (feuille « Feuille » endommagée) : ouvrez-le dans Excel et "
                                "enregistrez-le à nouveau au format .xlsx.")
