"""Hostile workbooks: a small .xlsx that expands to gigabytes is refused from the ZIP directory,
before openpyxl parses it (French message), and an import job cannot swell past its memory limit.
The bombs are generated here (never committed)."""
from __future__ import annotations

import io
import zipfile

import openpyxl
import pytest

from core.limits import memory_limit
from imports.services.residents_import import RESIDENT_COLUMNS
from imports.services.xlsx import Report, read_xlsx_table

MB = 1024 * 1024


def _workbook_with(member: str, size: int, filler: bytes) -> bytes:
    """A real workbook whose ``member`` is replaced by ``size`` bytes of repetitive XML."""
    book = openpyxl.Workbook()
    book.active.append(["NOM", "PRENOM"])
    plain = io.BytesIO()
    book.save(plain)
    out = io.BytesIO()
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        names = source.namelist()
        for name in names:
            if name != member:
                target.writestr(name, source.read(name))
        with target.open(member, "w", force_zip64=True) as stream:
            head = b'<?xml version="1.0"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
            stream.write(head)
            chunk = filler * (MB // len(filler))
            written = len(head)
            while written < size:
                stream.write(chunk)
                written += len(chunk)
    return out.getvalue()


def _read(content: bytes) -> Report:
    report = Report()
    assert read_xlsx_table(io.BytesIO(content), filename="bombe.xlsx", columns=RESIDENT_COLUMNS, report=report) is None
    return report


def test_huge_sheet_xml_is_refused_on_its_uncompressed_size(settings, monkeypatch):
    settings.IMPORT_XLSX_MAX_UNCOMPRESSED_BYTES = 16 * MB
    settings.IMPORT_XLSX_MAX_RATIO = 10_000  # only the size speaks here
    content = _workbook_with("xl/worksheets/sheet1.xml", 24 * MB, b'<row r="1"><c t="s"><v>0</v></c></row>')
    assert len(content) < 1 * MB
    parsed = []
    monkeypatch.setattr(openpyxl, "load_workbook", lambda *a, **k: parsed.append(1))
    message = _read(content).errors[0].message
    assert "16 Mo au plus sont acceptés" in message
    assert not parsed  # refused before openpyxl opened anything


def test_huge_shared_strings_are_refused_on_their_ratio(settings):
    # Default limits: 256 Mo and a ratio of 200. 8 Mo of one repeated string compress ~1000 times.
    content = _workbook_with("xl/sharedStrings.xml", 8 * MB, b"<si><t>AAAAAAAAAAAAAAAA</t></si>")
    message = _read(content).errors[0].message
    assert "xl/sharedStrings.xml" in message and "bombe de décompression" in message


def test_an_ordinary_workbook_still_reads(settings):
    book = openpyxl.Workbook()
    book.active.append(["NOM"])
    book.active.append(["Martin"])
    out = io.BytesIO()
    book.save(out)
    report = Report()
    table = read_xlsx_table(io.BytesIO(out.getvalue()), filename="ok.xlsx", columns=RESIDENT_COLUMNS, report=report)
    assert table is not None
    assert not any("refusé" in issue.message for issue in report.errors)


def test_memory_limit_stops_a_runaway_job():
    with pytest.raises(MemoryError):
        with memory_limit(64 * MB):
            bytearray(512 * MB)
    assert len(bytearray(128 * MB)) == 128 * MB  # the limit is lifted afterwards
