"""Accounting export of a month with invoices, a credit note, SEPA payments and a SEPA bank return
(a real pain.002 through ``sepa.services.returns``): a balanced, checked FEC, and the CSV / XLSX
layouts of Sage, Cegid and EBP (command ``--layout``, browser ``?layout=``)."""
import csv
import io
from datetime import date, datetime
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook

from billing.models import Payment
from billing.services import accounting as acc
from billing.services import payments as pay
from billing.services.issuing import credit_note_create
from core import fec
from sepa.services import debits
from sepa.services.returns import returns_apply
from tests.billing.payment_helpers import resident_in
from tests.factories import SectionAccessFactory, SectionFactory, UserFactory
from tests.sepa.helpers import active_mandate, creditor_for, debit_invoice, period_for

D = Decimal
pytestmark = pytest.mark.django_db
RANGE = (date(2026, 1, 1), date(2026, 2, 28))


def _pain002(e2e, code):
    return (f'<?xml version="1.0"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.002.001.03">'
            f"<CstmrPmtStsRpt><OrgnlPmtInfAndSts><TxInfAndSts><OrgnlEndToEndId>{e2e}</OrgnlEndToEndId>"
            f"<TxSts>RJCT</TxSts><StsRsnInf><Rsn><Cd>{code}</Cd></Rsn></StsRsnInf></TxInfAndSts>"
            f"</OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>").encode()


@pytest.fixture
def books():
    section = SectionFactory(alias="LIV-A", establishment__siret="73282932000074")
    creditor_for(section)
    period = period_for(section)
    invoices = []
    for name, total in (("Arnaud", "1500.00"), ("Bernard", "1200.00"), ("Colin", "900.00")):
        resident = resident_in(section, last_name=name)
        active_mandate(section, resident)
        invoices.append(debit_invoice(period, resident, total))
    # Colin's invoice is cancelled by a credit note before the collection.
    note = credit_note_create(invoice=invoices[2], reason="Départ non saisi", issue_date=date(2026, 2, 2))
    pay.credit_note_allocate(credit_note=note)
    batch = debits.debit_batch_create(period=period, collection_date=date(2026, 2, 20), today=date(2026, 2, 2))
    debits.debit_batch_mark_sent(batch=debits.debit_batch_generate(batch=batch))
    debits.debit_batch_settle(batch=batch, today=date(2026, 2, 20))
    # Bernard's direct debit comes back (AM04, insufficient funds) on the 24th.
    report = returns_apply(content=_pain002(invoices[1].number, "AM04"), on=date(2026, 2, 24))
    assert report.applied == [invoices[1].number]
    returned = Payment.objects.filter(allocations__invoice=invoices[1], kind=Payment.Kind.PAYMENT).distinct().get()
    Payment.objects.filter(pk=returned.pk).update(cancelled_at=timezone.make_aware(datetime(2026, 2, 24, 9)))
    export = acc.export_build(establishment=section.establishment, date_from=RANGE[0], date_to=RANGE[1])
    return {"section": section, "invoices": invoices, "note": note, "export": export, "returned": returned}


def _fec_rows(content: bytes):
    lines = content.decode(fec.ENCODING).split("\r\n")
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"))) for line in lines[1:] if line]


def _amount(text):
    return D(text.replace(",", ".")) if text else D("0")


def test_a_month_with_invoices_a_credit_note_debits_and_a_bank_return_gives_a_balanced_fec(books):
    content = acc.export_content(books["export"], "fec")
    assert fec.fec_check(content) == []
    rows = _fec_rows(content)
    sales = [r for r in rows if r["JournalCode"] == "VT"]
    bank = [r for r in rows if r["JournalCode"] == "BQ"]
    assert sorted({int(r["EcritureNum"]) for r in sales}) == [1, 2, 3, 4]  # 3 invoices + 1 credit note
    assert sorted({int(r["EcritureNum"]) for r in bank}) == [1, 2, 3]  # 2 debits collected + 1 bank return
    assert sum(_amount(r["Debit"]) for r in rows) == sum(_amount(r["Credit"]) for r in rows) == D("8400.00")
    back = [r for r in bank if "AM04" in r["EcritureLib"]]
    assert {(r["CompteNum"][:3], r["Debit"], r["Credit"]) for r in back} == {("411", "1200,00", "0,00"),
                                                                             ("512", "0,00", "1200,00")}
    assert back[0]["EcritureDate"] == "20260224"
    # Arnaud's invoice and his debit share a letter; Colin's invoice and its credit note another;
    # Bernard's debit and its return a third (his invoice stays open: unlettered).
    letters = {r["CompAuxLib"]: set() for r in rows if r["CompteNum"].startswith("411")}
    for r in rows:
        if r["CompteNum"].startswith("411"):
            letters[r["CompAuxLib"]].add((r["JournalCode"], r["EcritureLet"]))
    arnaud = next(v for k, v in letters.items() if "ARNAUD" in k.upper())
    assert len({letter for _j, letter in arnaud}) == 1 and "" not in {letter for _j, letter in arnaud}
    bernard = next(v for k, v in letters.items() if "BERNARD" in k.upper())
    assert ("VT", "") in bernard and any(j == "BQ" and letter for j, letter in bernard)


def _csv(content: bytes):
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig")), delimiter=";"))


@pytest.mark.parametrize("layout, header, debit_credit", [
    ("sage", ["Code journal", "Date", "N° de pièce", "Référence", "N° compte général", "N° compte tiers",
              "Libellé écriture", "Débit", "Crédit", "Lettrage"], (7, 8)),
    ("cegid", ["Journal", "Date", "N° pièce", "Compte général", "Type de compte", "Compte auxiliaire", "Référence",
               "Libellé", "Sens", "Montant", "Lettrage"], None),
    ("ebp", ["N° ligne", "Date", "Code journal", "N° compte", "Libellé automatique", "Libellé", "N° pièce",
             "Montant", "Sens", "Date d'échéance", "Devise"], None),
])
def test_csv_layouts_of_sage_cegid_and_ebp_balance_like_the_fec(books, layout, header, debit_credit):
    rows = _csv(acc.export_content(books["export"], "csv", layout))
    assert rows[0] == header
    body = rows[1:]
    assert len(body) == len(_fec_rows(acc.export_content(books["export"], "fec")))
    if debit_credit:
        debit = sum(_amount(r[debit_credit[0]]) for r in body)
        credit = sum(_amount(r[debit_credit[1]]) for r in body)
    else:
        sense, amount = header.index("Sens"), header.index("Montant")
        assert {r[sense] for r in body} == {"D", "C"}
        debit = sum(_amount(r[amount]) for r in body if r[sense] == "D")
        credit = sum(_amount(r[amount]) for r in body if r[sense] == "C")
    assert debit == credit == D("8400.00")
    assert all(r[header.index("Date")].count("/") == 2 for r in body)
    if layout == "ebp":
        assert [int(r[0]) for r in body] == list(range(1, len(body) + 1))
        accounts = {r[3] for r in body}
        assert "512" in accounts and not {"411"} & accounts  # third parties on their own 411 sub-accounts
    if layout == "cegid":
        assert {r[4] for r in body if r[5]} == {"X"}


def test_xlsx_layout_and_command_option(books, tmp_path):
    workbook = load_workbook(io.BytesIO(acc.export_content(books["export"], "xlsx", "ebp")))
    sheet = workbook.active
    assert [c.value for c in sheet[1]][:4] == ["N° ligne", "Date", "Code journal", "N° compte"]
    out = tmp_path / "cegid.csv"
    call_command("export_accounting", establishment=books["section"].establishment.code, date_from="2026-01-01",
                 date_to="2026-02-28", fmt="csv", layout="cegid", output=str(out))
    assert _csv(out.read_bytes())[0][:2] == ["Journal", "Date"]
    with pytest.raises(CommandError, match="Présentation inconnue : « quadra »"):
        call_command("export_accounting", establishment=books["section"].establishment.code,
                     date_from="2026-01-01", date_to="2026-02-28", fmt="csv", layout="quadra", output=str(out))
    with pytest.raises(CommandError, match="18 colonnes"):
        call_command("export_accounting", establishment=books["section"].establishment.code,
                     date_from="2026-01-01", date_to="2026-02-28", fmt="fec", layout="sage", output=str(out))


def test_browser_downloads_a_layout_and_refuses_an_unknown_one(client, books):
    reader = UserFactory(username="lecteur")
    SectionAccessFactory(user=reader, section=books["section"], role="reader")
    other = SectionFactory(alias="LIV-Z")
    client.force_login(reader)
    page = client.get(reverse("billing:accounting", kwargs={"alias": "LIV-A"}))
    assert b'data-layout="sage"' in page.content and b'data-layout="ebp"' in page.content
    url = reverse("billing:accounting-export-download", kwargs={"alias": "LIV-A", "pk": books["export"].pk,
                                                                  "fmt": "csv"})
    response = client.get(url + "?layout=sage")
    assert response.status_code == 200
    assert "-sage.csv" in response["Content-Disposition"]
    assert _csv(response.content)[0][0] == "Code journal"
    assert client.get(url + "?layout=quadra").status_code == 404
    fec_url = url.replace("fichier.csv", "fichier.fec")
    assert client.get(fec_url + "?layout=ebp").status_code == 404
    foreign = reverse("billing:accounting-export-download", kwargs={"alias": other.alias, "pk": books["export"].pk,
                                                                      "fmt": "csv"})
    assert client.get(foreign + "?layout=sage").status_code in (403, 404)
