"""The residents import templates are written by the one writer of ``core.exports``: they keep their
comments, fills, merged cells and example rows, and a code typed like a formula stays text."""
from __future__ import annotations

import io
from datetime import date

import openpyxl
import pytest

from billing.models import Package
from imports.services import residents_templates
from imports.services.residents_import import RESIDENT_COLUMNS
from imports.services.residents_templates import MANDATORY_FILL, OPTIONAL_FILL, template_workbook
from structures.models import Section

from .conftest import RELATIVE_HEADERS, RESIDENT_HEADERS

pytestmark = pytest.mark.django_db

HOSTILE_STARTS = ("=", "+", "-", "@")


def _load(content: bytes):
    return openpyxl.load_workbook(io.BytesIO(content))


def test_template_keeps_comments_fills_merges_and_example_row(demo):
    book = _load(template_workbook("residents", section=Section.objects.get(alias="TIL-HP")))
    data, notes = book.worksheets
    assert data.title == "Résidents" and data.freeze_panes == "A2"
    assert [c.value for c in data[1]] == RESIDENT_HEADERS
    numero, civilite = data["A1"], data["D1"]
    assert numero.font.b and numero.fill.fgColor.rgb.endswith(MANDATORY_FILL)
    assert not civilite.font.b and civilite.fill.fgColor.rgb.endswith(OPTIONAL_FILL)
    assert numero.comment.text.startswith("* Obligatoire. Identifiant du résident")
    assert numero.comment.author == "Séjour" and civilite.comment.text == "M ou MME."
    assert data.column_dimensions["AB"].width == len("DATE_SIGNATURE_MANDAT") + 4

    example = {header: cell for header, cell in zip(RESIDENT_HEADERS, data[2])}
    assert example["SECTION"].value == "TIL-HP" and example["PAYEUR"].value == "CD69"
    assert example["NUMERO"].value == "1" and example["NUMERO"].number_format == "@"  # a text column
    assert example["DATE_NAISSANCE"].value.date() == date(1938, 4, 12)
    assert example["DATE_NAISSANCE"].number_format == "DD/MM/YYYY"
    assert example["GIR"].value == 3 and example["AIDE_SOCIALE"].value == 0  # numbers stay numbers
    assert example["EMAIL"].value is None  # no example

    assert notes.title == "Notes" and notes["A1"].font.b and notes["A1"].font.sz == 14
    assert sorted(str(r) for r in notes.merged_cells.ranges) == [f"B{row}:D{row}" for row in range(3, 10)]
    assert notes.row_dimensions[3].height == 30 and notes["B3"].alignment.wrap_text
    assert [c.value for c in notes[11]] == ["Colonne", "Obligatoire", "Règle", "Exemple"]
    assert [c.value for c in notes[12]] == ["NUMERO *", "Oui", RESIDENT_COLUMNS[0].help, "1"]
    assert notes["A12"].font.b and not notes["A14"].font.b
    assert [c.value for c in notes[19]][::3] == ["DATE_NAISSANCE *", "12/04/1938"]


def test_relatives_template_keeps_its_formats_on_empty_example_cells():
    data = _load(template_workbook("proches")).worksheets[0]
    example = {header: cell for header, cell in zip(RELATIVE_HEADERS, data[2])}
    assert example["IBAN"].value is None and example["IBAN"].number_format == "@"
    assert example["DATE_SIGNATURE_MANDAT"].number_format == "DD/MM/YYYY"


def test_hostile_section_alias_and_package_code_are_written_as_text(demo):
    section = Section.objects.get(alias="TIL-HP")
    Section.objects.filter(pk=section.pk).update(alias="=HYPERLINK(\"x\")")
    Package.objects.filter(section=section).exclude(code="STD").delete()
    Package.objects.filter(section=section, code="STD").update(code="+STD")
    section.refresh_from_db()
    book = _load(template_workbook("residents", section=section))
    cells = [c for sheet in book.worksheets for row in sheet.iter_rows() for c in row if c.value is not None]
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    data = book.worksheets[0]
    assert data["B2"].value == "'=HYPERLINK(\"x\")" and data["B2"].data_type == "s"
    assert data["Q2"].value == "'+STD"
    assert "'+STD" in [c.value for c in book.worksheets[1]["D"]]


@pytest.mark.parametrize("which", ["residents", "proches"])
def test_every_template_cell_goes_through_the_writer(monkeypatch, which):
    """Whatever the example of a column (text, text column, date column), a formula start is neutralised."""
    columns = residents_templates.TEMPLATES[which][1]
    hostile = {c.name: HOSTILE_STARTS[i % 4] + "1+" + c.name for i, c in enumerate(columns)}
    monkeypatch.setattr(residents_templates, "_example_values", lambda which, section=None: hostile)
    book = _load(template_workbook(which))
    data, notes = book.worksheets
    assert [c.value for c in data[2]] == ["'" + hostile[c.name] for c in columns]
    assert all(c.data_type == "s" for c in data[2])
    assert [c.value for c in notes["D"]][-len(columns):] == ["'" + hostile[c.name] for c in columns]
