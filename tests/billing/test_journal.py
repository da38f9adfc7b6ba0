"""Invoice journal: selection and totals, CSV / XLSX exports, the export_journal command, the pages."""
import io
from datetime import date, datetime
from decimal import Decimal

import openpyxl
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from billing.models import BillingPeriod, Invoice, InvoiceLine
from billing.services.generation import period_generate
from billing.services.issuing import invoices_issue
from billing.services.journal import (HEADERS, journal_csv, journal_invoices, journal_queryset, journal_rows,
                                      journal_xlsx)
from residents.models import Resident

D = Decimal
BOM = b"\xef\xbb\xbf"
HEADER = ("NUMERO_FACTURE;STATUT;DEBITEUR;REF_EXTERNE;PRODUIT;LIBELLE;DU;AU;QUANTITE;PRIX_UNITAIRE;MONTANT;"
          "DATE_EMISSION;ECHEANCE;MODE_REGLEMENT;COMPTE_PRODUIT;COMPTE_TIERS")
ISSUED_TAIL = ";02/05/2026;17/05/2026;Chèque;;"
DRAFT_TAIL = ";;;Virement;;"


def total_row(amount: str) -> str:
    return (';;;;;"TOTAL — Total des factures, factures de rappel et avoirs (en négatif) de la période, brouillons '
            f"compris ; une facture annulée et son avoir s'annulent.\";;;;;{amount};;;;;")


@pytest.fixture
def journal(billing_setup):
    """April 2026, three GIR 6 residents: Alpha (full month), Bravo (hospital 6–15 April), Charlie
    (pays by transfer). Alpha and Bravo are issued (numbers 1 and 2), Charlie stays a draft."""
    setup = billing_setup
    stays = {}
    for name, ref, mode in [("Alpha", "EXT-A", "cheque"), ("Bravo", "EXT-B", "cheque"),
                            ("Charlie", "EXT-C", "transfer")]:
        stay = setup.stay(gir=6)
        Resident.objects.filter(pk=stay.resident_id).update(last_name=name, first_name="Jeanne", civility="MME",
                                                            external_ref=ref, payment_mode=mode)
        stays[name] = stay
    setup.absence(stays["Bravo"], "H", date(2026, 4, 6), date(2026, 4, 15))
    period = setup.period(date(2026, 4, 1), date(2026, 4, 30), label="Avril 2026")
    period_generate(period=period)
    invoices = {name: Invoice.objects.get(period=period, resident=stay.resident) for name, stay in stays.items()}
    invoices_issue(invoice_ids=[invoices["Alpha"].pk, invoices["Bravo"].pk], issue_date=date(2026, 5, 2))
    for invoice in invoices.values():
        invoice.refresh_from_db()
    return {"setup": setup, "period": period, "invoices": invoices, "stays": stays}


EXPECTED_ROWS = [
    "EXA-2026-000001;Émise;Mme ALPHA Jeanne;EXT-A;DEP56;Dépendance GIR 5-6 (talon);"
    "01/04/2026;30/04/2026;30,00;6,00;180,00" + ISSUED_TAIL,
    "EXA-2026-000001;Émise;Mme ALPHA Jeanne;EXT-A;HEB;Hébergement;01/04/2026;30/04/2026;30,00;65,00;1950,00" + ISSUED_TAIL,
    "EXA-2026-000002;Émise;Mme BRAVO Jeanne;EXT-B;DEP56;Dépendance GIR 5-6 (talon);"
    "01/04/2026;05/04/2026;5,00;6,00;30,00" + ISSUED_TAIL,
    "EXA-2026-000002;Émise;Mme BRAVO Jeanne;EXT-B;DEP56;Dépendance GIR 5-6 (talon);"
    "16/04/2026;30/04/2026;15,00;6,00;90,00" + ISSUED_TAIL,
    "EXA-2026-000002;Émise;Mme BRAVO Jeanne;EXT-B;HEB;Hébergement;01/04/2026;08/04/2026;8,00;65,00;520,00" + ISSUED_TAIL,
    "EXA-2026-000002;Émise;Mme BRAVO Jeanne;EXT-B;HEB;Hébergement – absence hospitalisation (à partir du 4e jour);"
    "09/04/2026;15/04/2026;7,00;42,00;294,00" + ISSUED_TAIL,
    "EXA-2026-000002;Émise;Mme BRAVO Jeanne;EXT-B;HEB;Hébergement;16/04/2026;30/04/2026;15,00;65,00;975,00" + ISSUED_TAIL,
    ";Brouillon;CHARLIE Jeanne;EXT-C;DEP56;Dépendance GIR 5-6 (talon);01/04/2026;30/04/2026;30,00;6,00;180,00" + DRAFT_TAIL,
    ";Brouillon;CHARLIE Jeanne;EXT-C;HEB;Hébergement;01/04/2026;30/04/2026;30,00;65,00;1950,00" + DRAFT_TAIL,
]


def _csv_lines(content: bytes) -> list[str]:
    assert content.startswith(BOM)
    text = content[len(BOM):].decode("utf-8")
    assert text.endswith("\r\n") and "\n" not in text.replace("\r\n", "")
    lines = text.split("\r\n")[:-1]
    assert lines[-1].startswith(';;;;;"TOTAL — ')  # the last row gives the total and says what it includes
    return lines[:-1]


# --- service ---------------------------------------------------------------------------------------

def test_csv_exact_bytes(journal):
    content = journal_csv(journal["period"])
    assert content == BOM + "".join(f"{line}\r\n" for line in [HEADER, *EXPECTED_ROWS, total_row("6169,00")]
                                    ).encode("utf-8")
    assert ";".join(HEADERS) == HEADER


def test_csv_filters(journal):
    period = journal["period"]
    assert _csv_lines(journal_csv(period, status="draft")) == [HEADER, *EXPECTED_ROWS[7:]]
    assert _csv_lines(journal_csv(period, status="issued")) == [HEADER, *EXPECTED_ROWS[:7]]
    assert _csv_lines(journal_csv(period, debtor_kind="payer")) == [HEADER]
    assert _csv_lines(journal_csv(period, debtor_kind="resident")) == [HEADER, *EXPECTED_ROWS]
    # Drafts follow the resident's payment mode; issued invoices keep their snapshot.
    assert _csv_lines(journal_csv(period, payment_mode="transfer")) == [HEADER, *EXPECTED_ROWS[7:]]
    Resident.objects.filter(pk=journal["invoices"]["Alpha"].resident_id).update(payment_mode="direct_debit")
    assert _csv_lines(journal_csv(period, payment_mode="direct_debit")) == [HEADER]
    assert _csv_lines(journal_csv(period, payment_mode="cheque")) == [HEADER, *EXPECTED_ROWS[:7]]
    with pytest.raises(ValueError, match="inconnu"):
        journal_csv(period, status="paid")


def test_csv_quotes_semicolons_and_negative_amounts(journal):
    """A label holding the separator is quoted; a credit note's negative amounts keep the comma."""
    from billing.services.issuing import credit_note_create

    alpha = journal["invoices"]["Alpha"]
    credit_note_create(invoice=alpha, lines={alpha.lines.get(product__code="DEP56").pk: D("12.50")},
                       issue_date=date(2026, 5, 3))
    Resident.objects.filter(pk=alpha.resident_id).update(external_ref="EXT;A")
    lines = _csv_lines(journal_csv(journal["period"], status="issued"))
    assert lines[-1] == ('EXA-AV-2026-000001;Émise;Mme ALPHA Jeanne;"EXT;A";DEP56;'
                         "Avoir sur EXA-2026-000001 : Dépendance GIR 5-6 (talon);01/04/2026;30/04/2026;"
                         "1,00;-12,50;-12,50;03/05/2026;;Chèque;;")  # a credit note has no due date


def test_totals_and_bounded_queries(journal):
    invoices, totals = journal_invoices(period=journal["period"])
    assert totals["count"] == 3
    assert str(totals["total"]) == "6169.00"  # 2130 + 1909 + 2130, two places whatever the database
    by_status = {line["status"]: line for line in totals["by_status"]}
    assert (by_status["issued"]["count"], by_status["issued"]["total"]) == (2, D("4039.00"))
    assert (by_status["draft"]["count"], by_status["draft"]["total"]) == (1, D("2130.00"))
    assert (by_status["cancelled"]["count"], by_status["cancelled"]["total"]) == (0, D("0.00"))
    assert by_status["issued"]["label"] == "Émise"
    assert [i.number for i in invoices] == ["EXA-2026-000001", "EXA-2026-000002", ""]
    _, drafts = journal_invoices(period=journal["period"], status="draft")
    assert (drafts["count"], drafts["total"]) == (1, D("2130.00"))

    # Many more invoices: still two queries for the rows, one for the totals.
    setup = journal["setup"]
    for _ in range(6):
        setup.stay(gir=6)
    period_generate(period=journal["period"])
    queryset = journal_queryset(period=journal["period"])
    with CaptureQueriesContext(connection) as rows_queries:
        rows = list(journal_rows(queryset))
    assert len(rows) == InvoiceLine.objects.filter(invoice__period=journal["period"]).count() > len(EXPECTED_ROWS)
    assert len(rows_queries) <= 2
    with CaptureQueriesContext(connection) as totals_queries:
        journal_invoices(period=journal["period"])
    assert len(totals_queries) == 1


def test_other_period_not_included(journal):
    setup = journal["setup"]
    may = setup.period(date(2026, 5, 1), date(2026, 5, 31), label="Mai 2026")
    period_generate(period=may)
    april_lines = _csv_lines(journal_csv(journal["period"]))
    assert all("/05/2026" not in ";".join(line.split(";")[6:8]) for line in april_lines)  # DU, AU
    assert len(_csv_lines(journal_csv(may))) == 1 + 6


def test_xlsx_round_trip(journal):
    content = journal_xlsx(journal["period"], status="issued")
    workbook = openpyxl.load_workbook(io.BytesIO(content))
    sheet = workbook.active
    assert [c.value for c in sheet[1]] == list(HEADERS)
    assert all(c.font.bold for c in sheet[1])
    assert sheet.freeze_panes == "A2"
    assert sheet.column_dimensions["F"].width > sheet.column_dimensions["E"].width
    assert sheet.max_row == 1 + 7 + 1
    assert sheet.cell(row=9, column=6).value.startswith("TOTAL — ")
    assert D(str(sheet.cell(row=9, column=11).value)) == D("4039")  # the journal's issued total
    row = [c for c in sheet[3]]  # Alpha's Hébergement line
    assert [c.value for c in row[:6]] == ["EXA-2026-000001", "Émise", "Mme ALPHA Jeanne", "EXT-A", "HEB",
                                          "Hébergement"]
    assert row[6].value == datetime(2026, 4, 1) and row[6].number_format == "DD/MM/YYYY"
    assert row[7].value == datetime(2026, 4, 30)
    assert isinstance(row[10].value, (int, float)) and D(str(row[10].value)) == D("1950")
    assert row[10].number_format == "#,##0.00"
    assert D(str(row[8].value)) == D("30") and D(str(row[9].value)) == D("65")
    assert D(str(sheet.cell(row=7, column=10).value)) == D("42")  # hospital-absence price


# --- management command ---------------------------------------------------------------------------

def test_command_csv_to_file_and_stdout(journal, tmp_path):
    target = tmp_path / "journal.csv"
    out = io.StringIO()
    call_command("export_journal", "--section", "EXA-HP", "--month", "2026-04", "--format", "csv",
                 "-o", str(target), stdout=out)
    assert target.read_bytes() == journal_csv(journal["period"])
    assert "exporté" in out.getvalue()
    out = io.StringIO()
    call_command("export_journal", section="EXA-HP", month="2026-04", stdout=out)
    assert out.getvalue().encode("utf-8") == journal_csv(journal["period"])


def test_command_xlsx_and_period_containing_month(journal, tmp_path):
    quarter = journal["setup"].period(date(2026, 7, 1), date(2026, 9, 30), label="T3 2026")
    target = tmp_path / "journal.xlsx"
    call_command("export_journal", "--section", "EXA-HP", "--month", "2026-04", "--format", "xlsx",
                 "-o", str(target), stdout=io.StringIO())
    assert openpyxl.load_workbook(target).active.max_row == 1 + len(EXPECTED_ROWS) + 1
    out = io.StringIO()
    call_command("export_journal", section="EXA-HP", month="2026-08", stdout=out)
    assert out.getvalue() == "\ufeff" + HEADER + "\r\n" + total_row("0,00") + "\r\n"
    assert BillingPeriod.objects.filter(pk=quarter.pk).exists()


@pytest.mark.parametrize(("options", "message"), [
    ({"section": "NOPE", "month": "2026-04"}, "Section inconnue : « NOPE »"),
    ({"section": "EXA-HP", "month": "2026-13"}, "Mois invalide : « 2026-13 »"),
    ({"section": "EXA-HP", "month": "avril"}, "Mois invalide"),
    ({"section": "EXA-HP", "month": "2026-06"}, "Aucune période de facturation de la section EXA-HP"),
    ({"section": "EXA-HP", "month": "2026-04", "format": "pdf"}, "Format inconnu : « pdf »"),
    ({"section": "EXA-HP", "month": "2026-04", "format": "xlsx"}, "indiquez le fichier à écrire avec -o"),
])
def test_command_errors_in_french(journal, options, message):
    with pytest.raises(CommandError, match=message):
        call_command("export_journal", stdout=io.StringIO(), **options)


def test_command_error_exits_non_zero(journal, capsys):
    from django.core.management import ManagementUtility

    with pytest.raises(SystemExit) as exc:
        ManagementUtility(["manage.py", "export_journal", "--section", "NOPE", "--month", "2026-04"]).execute()
    assert exc.value.code == 1
    assert "Section inconnue" in capsys.readouterr().err


# --- pages ----------------------------------------------------------------------------------------

@pytest.fixture
def demo_period(demo_with_residents):
    demo = demo_with_residents
    section = demo["sections"]["TIL-HP"]
    period = BillingPeriod.objects.create(section=section, start=date(2026, 11, 1), end=date(2026, 11, 30),
                                          accounting_date=date(2026, 11, 30), label="Novembre 2026")
    period_generate(period=period)
    invoices = list(period.invoices.order_by("pk"))
    assert len(invoices) >= 2
    invoices_issue(invoice_ids=[invoices[0].pk])
    sent = Invoice.objects.get(pk=invoices[0].pk)
    sent.last_sent_at = timezone.make_aware(datetime(2026, 12, 3, 10, 0))
    sent.save()
    return {"demo": demo, "section": section, "period": period, "issued": sent}


@pytest.fixture(autouse=True)
def _fast_pages(settings, tmp_path):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {**settings.STORAGES,
                         "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}


def _url(period, name="billing:journal", alias=None, **kwargs):
    return reverse(name, kwargs={"alias": alias or period.section.alias, "period_pk": period.pk, **kwargs})


def test_journal_page_for_reader(client, demo_period):
    period, issued = demo_period["period"], demo_period["issued"]
    client.force_login(demo_period["demo"]["users"]["direction"])  # lecture on TIL-HP
    response = client.get(_url(period))
    assert response.status_code == 200
    html = response.content.decode()
    count = period.invoices.count()
    assert f'data-total-count="{count}"' in html
    assert issued.number in html and "brouillon" in html
    assert "✉ 03/12/2026" in html
    try:
        pdf_url = reverse("billing:invoice-pdf", kwargs={"alias": "TIL-HP", "pk": issued.pk})
    except NoReverseMatch:  # the PDF view is another module's; its planned path until then
        pdf_url = f"/s/TIL-HP/facturation/factures/{issued.pk}/pdf/"
    assert f'href="{pdf_url}"' in html
    assert _url(period, "billing:journal-export", fmt="csv") in html
    assert "Exporter Excel" in html


def test_journal_page_filters_and_totals(client, demo_period):
    period, issued = demo_period["period"], demo_period["issued"]
    client.force_login(demo_period["demo"]["users"]["tilleuls"])
    html = client.get(_url(period), {"status": "issued"}).content.decode()
    assert 'data-total-count="1"' in html
    assert f'data-total-amount="{issued.total}"' in html
    assert 'data-invoice="' in html and html.count('data-invoice="') == 1
    assert f"{_url(period, 'billing:journal-export', fmt='xlsx')}?status=issued" in html
    drafts = period.invoices.filter(status="draft").count()
    html = client.get(_url(period), {"status": "draft"}).content.decode()
    assert f'data-total-count="{drafts}"' in html and issued.number not in html
    html = client.get(_url(period), {"debtor_kind": "relative", "payment_mode": "cash"}).content.decode()
    assert "Aucune facture ne correspond à ces filtres." in html
    response = client.get(_url(period), {"status": "paid"})  # unknown value: ignored, error shown
    assert response.status_code == 200 and f'data-total-count="{period.invoices.count()}"' in response.content.decode()


def test_journal_page_queries_do_not_grow_with_invoices(client, demo_period):
    period = demo_period["period"]
    client.force_login(demo_period["demo"]["users"]["tilleuls"])
    client.get(_url(period))  # the first page of a section stores it in the session (3 statements, once)
    counts = []
    for params in ({"status": "issued"}, {}):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(_url(period), params).status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1] and period.invoices.count() > 2


def test_journal_scoped_to_section(client, demo_period):
    period = demo_period["period"]
    users = demo_period["demo"]["users"]
    client.force_login(users["verger"])  # no access to TIL-HP
    assert client.get(_url(period)).status_code == 404
    assert client.get(_url(period, "billing:journal-export", fmt="csv")).status_code == 404
    client.force_login(users["tilleuls"])  # TIL-HT is theirs, but the period belongs to TIL-HP
    assert client.get(_url(period, alias="TIL-HT")).status_code == 404
    assert client.get(_url(period, "billing:journal-export", alias="TIL-HT", fmt="csv")).status_code == 404
    client.logout()
    assert client.get(_url(period)).status_code == 302


def test_export_views(client, demo_period):
    period, issued = demo_period["period"], demo_period["issued"]
    client.force_login(demo_period["demo"]["users"]["direction"])
    response = client.get(_url(period, "billing:journal-export", fmt="csv"), {"status": "issued"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="journal_TIL-HP_2026-11.csv"'
    assert response.content == journal_csv(period, status="issued")
    lines = _csv_lines(response.content)
    assert lines[0] == HEADER and len(lines) == 1 + issued.lines.count()
    assert all(line.startswith(f"{issued.number};Émise;") for line in lines[1:])

    response = client.get(_url(period, "billing:journal-export", fmt="xlsx"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert response["Content-Disposition"] == 'attachment; filename="journal_TIL-HP_2026-11.xlsx"'
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    assert [c.value for c in sheet[1]] == list(HEADERS)

    assert client.get(_url(period, "billing:journal-export", fmt="pdf")).status_code == 404
    assert client.get(_url(period, "billing:journal-export", fmt="csv"), {"status": "paid"}).status_code == 400


def test_large_export_runs_as_a_job_and_is_downloaded_with_job_access(client, demo_period, settings, eager_celery,
                                                                       django_capture_on_commit_callbacks):
    from core.models import Job

    settings.JOURNAL_SYNC_EXPORT_LIMIT = 1
    period = demo_period["period"]
    client.force_login(demo_period["demo"]["users"]["direction"])
    with django_capture_on_commit_callbacks(execute=True):
        response = client.get(_url(period, "billing:journal-export", fmt="csv"))
    job = Job.objects.get(kind="billing.export_journal")
    assert response.status_code == 302 and response.url == reverse("job-detail", kwargs={"pk": job.pk})
    assert job.status == "succeeded", job.error
    page = client.get(response.url).content.decode()
    assert "Télécharger le fichier" in page
    download = client.get(reverse("job-download", kwargs={"pk": job.pk}))
    content = b"".join(download.streaming_content)
    assert content.startswith("\ufeffNUMERO_FACTURE;STATUT".encode())
    assert 'filename="journal_TIL-HP_2026-11.csv"' in download["Content-Disposition"]
    client.force_login(demo_period["demo"]["users"]["verger"])  # no access to TIL-HP
    assert client.get(reverse("job-download", kwargs={"pk": job.pk})).status_code == 404
