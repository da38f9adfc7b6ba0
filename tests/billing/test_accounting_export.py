"""Accounting export (books.md §2): account map defaults, a balanced FEC for a month with invoices,
a credit note, payments and a cancelled payment, lettering, the checker, frozen transmitted exports.

January 2026, association EHPAD:
* Dupont: invoice 1 000,00 (hébergement 800 + dépendance GIR 5-6 200), paid by cheque 1 000,00 → lettered;
* the département: invoice 500,00 hébergement (aide sociale) → 735221 on the payer's own account 4112;
* Martin: invoice 300,00, fully cancelled by a credit note (allocated) → lettered;
  a transfer of 50,00 entered by mistake and cancelled the 25th → the payment and its reversal lettered.
"""
import hashlib
from datetime import date, datetime
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from billing.models import AccountingEntry, AccountingExport, AccountingLine, Invoice, InvoiceLine, Payment, Product
from billing.models.accounting import FrozenExportError
from billing.services import accounting as acc
from billing.services import payments as pay
from billing.services.issuing import credit_note_create, invoices_issue
from core import fec
from payers.models import Payer
from tests.billing.payment_helpers import resident_in
from tests.factories import SectionFactory

D = Decimal
pytestmark = pytest.mark.django_db
JAN = (date(2026, 1, 1), date(2026, 1, 31))


def _product(establishment, code, kind, account=""):
    return Product.objects.create(establishment=establishment, code=code, label=code, kind=kind,
                                  accounting_account=account)


def _invoice(section, resident, lines, on, *, payer=None):
    invoice = Invoice.objects.create(
        section=section, establishment=section.establishment,
        debtor_kind=Invoice.DebtorKind.PAYER if payer else Invoice.DebtorKind.RESIDENT,
        resident=resident, payer=payer, date_from=on.replace(day=1), date_to=on,
        total=sum((D(a) for _p, a in lines), D("0")))
    for product, amount in lines:
        InvoiceLine.objects.create(invoice=invoice, resident=resident, product=product, label=product.label,
                                   reason="manual", date_from=invoice.date_from, date_to=on, quantity=D("1"),
                                   unit_price=D(amount), amount=D(amount))
    invoices_issue(invoice_ids=[invoice.pk], issue_date=on)
    invoice.refresh_from_db()
    return invoice


@pytest.fixture
def month():
    section = SectionFactory(establishment__siret="73282932000074")
    establishment = section.establishment
    lodging = _product(establishment, "HEB", Product.Kind.ACCOMMODATION)
    talon = _product(establishment, "GIR56", Product.Kind.DEPENDENCY_56)
    dupont = resident_in(section, last_name="Dupont", first_name="Jeanne")
    martin = resident_in(section, last_name="Martin", first_name="Paul")
    departement = Payer.objects.create(organisation=establishment.organisation, code="CD69",
                                       name="Département du Rhône", kind="departement", accounting_account="4112")
    a = _invoice(section, dupont, [(lodging, "800.00"), (talon, "200.00")], date(2026, 1, 5))
    p = _invoice(section, dupont, [(lodging, "500.00")], date(2026, 1, 5), payer=departement)
    m = _invoice(section, martin, [(lodging, "300.00")], date(2026, 1, 5))
    note = credit_note_create(invoice=m, reason="Erreur de séjour", issue_date=date(2026, 1, 10))
    pay.credit_note_allocate(credit_note=note)
    cheque = pay.payment_record(section=section, on=date(2026, 1, 15), amount=D("1000.00"), mode="cheque",
                                invoice=a, reference="1234567")
    wrong = pay.payment_record(section=section, on=date(2026, 1, 20), amount=D("50.00"), mode="transfer",
                               debtor=pay.Debtor.of(a), reference="VIR ERREUR")
    pay.payment_cancel(payment=wrong, reason="Saisi deux fois")
    Payment.objects.filter(pk=wrong.pk).update(cancelled_at=timezone.make_aware(datetime(2026, 1, 25, 10)))
    return {"section": section, "establishment": establishment, "a": a, "p": p, "m": m, "note": note,
            "cheque": cheque, "wrong": wrong, "dupont": dupont, "departement": departement}


def _rows(content: bytes):
    lines = content.decode(fec.ENCODING).split("\r\n")
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"))) for line in lines[1:] if line]


def test_account_map_defaults_per_legal_status():
    association = SectionFactory().establishment
    public = SectionFactory(establishment__legal_status="public").establishment
    amap, pmap = acc.account_map_for(association), acc.account_map_for(public)
    assert (amap.customer_account, amap.cheque_account, amap.cash_account) == ("411", "512", "530")
    assert (pmap.cheque_account, pmap.cash_account) == ("515", "531")
    accounts = {(r.product_kind, r.financing): r.account for r in amap.revenue_accounts.all()}
    assert accounts[("accommodation", "resident")] == "73531"
    assert accounts[("accommodation", "departement")] == "735221"
    assert accounts[("dependency_12", "departement")] == "735222"
    assert accounts[("dependency_56", "resident")] == "73532"
    assert accounts[("", "health_insurance")] == "7351"


def test_balanced_fec_for_a_month(month):
    export = acc.export_build(establishment=month["establishment"], date_from=JAN[0], date_to=JAN[1])
    content = acc.export_content(export, "fec")
    assert fec.fec_check(content) == []
    assert acc.export_filename(export, "fec") == "732829320FEC20260131.txt"
    assert content.decode(fec.ENCODING).split("\r\n")[0] == "\t".join(fec.COLUMNS)
    assert '"' not in content.decode(fec.ENCODING)
    rows = _rows(content)
    # Sales journal: 3 invoices + 1 credit note numbered 1..4; payments journal: cheque, transfer, reversal 1..3.
    assert sorted({r["EcritureNum"] for r in rows if r["JournalCode"] == "VT"}, key=int) == ["1", "2", "3", "4"]
    assert sorted({r["EcritureNum"] for r in rows if r["JournalCode"] == "BQ"}, key=int) == ["1", "2", "3"]
    a = [r for r in rows if r["PieceRef"] == month["a"].number]
    assert {(r["CompteNum"], r["CompAuxNum"], r["Debit"], r["Credit"]) for r in a} == {
        ("411", f"R{month['dupont'].pk:06d}", "1000,00", "0,00"), ("73531", "", "0,00", "800,00"),
        ("73532", "", "0,00", "200,00")}
    assert {r["EcritureDate"] for r in a} == {"20260105"}
    # The département's invoice: its own account, revenue on the département's account (split by financing).
    p = [r for r in rows if r["PieceRef"] == month["p"].number]
    assert {(r["CompteNum"], r["Debit"], r["Credit"]) for r in p} == {("4112", "500,00", "0,00"),
                                                                      ("735221", "0,00", "500,00")}
    # The credit note: revenue debited, customer credited.
    note = [r for r in rows if r["PieceRef"] == month["note"].number]
    assert {(r["CompteNum"], r["Debit"], r["Credit"]) for r in note} == {("411", "0,00", "300,00"),
                                                                         ("73531", "300,00", "0,00")}
    # Lettering: invoice A with the cheque; Martin's invoice with its credit note; the cancelled transfer
    # with its reversal; the département's unpaid invoice stays open.
    letters = {(r["PieceRef"], r["EcritureDate"]): (r["EcritureLet"], r["DateLet"])
               for r in rows if r["CompteNum"].startswith("411")}
    assert letters[(month["a"].number, "20260105")] == letters[("1234567", "20260115")] == ("A", "20260115")
    assert letters[(month["m"].number, "20260105")] == letters[(month["note"].number, "20260110")] == ("B", "20260110")
    assert letters[("VIR ERREUR", "20260120")] == letters[("VIR ERREUR", "20260125")] == ("C", "20260125")
    assert [r["EcritureLet"] for r in p if r["CompteNum"] == "4112"] == [""]
    bank = {(r["EcritureDate"], r["CompteNum"], r["Debit"], r["Credit"]) for r in rows if r["JournalCode"] == "BQ"}
    assert ("20260115", "512", "1000,00", "0,00") in bank and ("20260125", "512", "0,00", "50,00") in bank


def test_without_split_by_financing_the_payer_share_goes_to_the_product_account(month):
    export = acc.export_build(establishment=month["establishment"], date_from=JAN[0], date_to=JAN[1],
                              split_by_financing=False)
    rows = _rows(acc.export_content(export, "fec"))
    assert {r["CompteNum"] for r in rows if r["PieceRef"] == month["p"].number} == {"4112", "73531"}


def test_product_account_and_edited_map_are_used(month):
    amap = acc.account_map_for(month["establishment"])
    amap.cheque_account = "5112"
    amap.save()
    amap.revenue_accounts.filter(product_kind="dependency_56", financing="resident").update(account="735320")
    export = acc.export_build(establishment=month["establishment"], date_from=JAN[0], date_to=JAN[1])
    rows = _rows(acc.export_content(export, "fec"))
    assert "735320" in {r["CompteNum"] for r in rows} and "5112" in {r["CompteNum"] for r in rows}


@pytest.mark.parametrize("tamper, message", [
    (lambda rows: rows[1].__setitem__(12, "999,00"), "déséquilibrée"),
    (lambda rows: [r.__setitem__(2, "9") for r in rows[1:] if r[0] == "VT" and r[2] == "2"], "discontinue"),
    (lambda rows: rows[1].__setitem__(4, "AB11"), "3 chiffres"),
    (lambda rows: rows[1].__setitem__(3, "2026-01-05"), "AAAAMMJJ"),
    (lambda rows: rows[1].__setitem__(11, "12.50"), "virgule"),
    (lambda rows: rows[0].reverse(), "en-tête"),
])
def test_checker_rejects_a_tampered_file(month, tamper, message):
    export = acc.export_build(establishment=month["establishment"], date_from=JAN[0], date_to=JAN[1])
    content = acc.export_content(export, "fec")
    rows = [line.split("\t") for line in content.decode(fec.ENCODING).split("\r\n") if line]
    tamper(rows)
    tampered = "\r\n".join("\t".join(r) for r in rows).encode(fec.ENCODING)
    errors = fec.fec_check(tampered)
    assert errors and any(message in e for e in errors), errors
    with pytest.raises(fec.FecError):
        fec.fec_assert_valid(tampered)


def test_fec_writer_neutralises_formulas_without_quotes():
    row = ["VT", "Ventes", "1", date(2026, 1, 5), "411", "Clients", "R1", "=HYPERLINK(\"x\")", "F1",
           date(2026, 1, 5), "-moins\tavec tab", D("12.50"), D("0"), "", None, date(2026, 1, 5), None, ""]
    text = fec.fec_bytes([row]).decode(fec.ENCODING)
    values = text.split("\r\n")[1].split("\t")
    assert values[7] == "'=HYPERLINK(\"x\")" and values[10] == "'-moins avec tab"
    assert values[11:13] == ["12,50", "0,00"] and values[3] == "20260105"
    assert fec.fec_bytes([row], separator="|").decode(fec.ENCODING).startswith("JournalCode|JournalLib|")


def test_transmitted_export_is_frozen_and_later_entries_go_to_the_next(month):
    establishment = month["establishment"]
    export = acc.export_build(establishment=establishment, date_from=JAN[0], date_to=JAN[1])
    before = acc.export_content(export, "fec")
    acc.export_transmit(export=export)
    export.refresh_from_db()
    assert export.is_transmitted and export.fec_sha256 == hashlib.sha256(before).hexdigest()
    # A payment keyed later but dated in January: not in the transmitted file, in the next export.
    late = pay.payment_record(section=month["section"], on=date(2026, 1, 28), amount=D("500.00"), mode="payer",
                              invoice=month["p"])
    assert acc.export_content(export, "fec") == before
    with pytest.raises(FrozenExportError):
        export.entries.first().delete()
    with pytest.raises(FrozenExportError):
        AccountingLine.objects.filter(entry__export=export).update(debit=D("1"))
    with pytest.raises(FrozenExportError):
        AccountingEntry.objects.filter(export=export).delete()
    with pytest.raises(FrozenExportError):
        export.delete()
    with pytest.raises(FrozenExportError):
        acc.export_transmit(export=export)
    following = acc.export_build(establishment=establishment, date_from=date(2026, 2, 1), date_to=date(2026, 2, 28))
    rows = _rows(acc.export_content(following, "fec"))
    assert {r["EcritureNum"] for r in rows} == {"4"} and {r["JournalCode"] for r in rows} == {"BQ"}
    assert {r["EcritureDate"] for r in rows} == {"20260128"}
    assert f"payment:{late.pk}" in set(following.entries.values_list("source_key", flat=True))
    # Rebuilding a draft replaces it (numbers unchanged, nothing exported twice).
    again = acc.export_build(establishment=establishment, date_from=date(2026, 2, 1), date_to=date(2026, 2, 28))
    assert not AccountingExport.objects.filter(pk=following.pk).exists()
    assert list(again.entries.values_list("number", flat=True)) == [4]


def test_csv_and_xlsx_through_the_shared_writer(month):
    export = acc.export_build(establishment=month["establishment"], date_from=JAN[0], date_to=JAN[1])
    text = acc.export_content(export, "csv").decode("utf-8-sig")
    header, first = text.split("\r\n")[:2]
    assert header.split(";") == list(acc.CSV_HEADERS)
    assert first.split(";")[:2] == ["VT", "05/01/2026"]
    assert acc.export_content(export, "xlsx")[:2] == b"PK"


def test_command_writes_a_checked_fec_and_marks_transmitted(month, tmp_path):
    output = tmp_path / "out.txt"
    call_command("export_accounting", establishment=month["establishment"].code, date_from="2026-01-01",
                 date_to="2026-01-31", fmt="fec", output=str(output), mark_transmitted=True)
    assert fec.fec_check(output.read_bytes()) == []
    assert AccountingExport.objects.get(establishment=month["establishment"]).is_transmitted
    with pytest.raises(CommandError, match="Format inconnu"):
        call_command("export_accounting", establishment=month["establishment"].code, date_from="2026-02-01",
                     date_to="2026-02-28", fmt="pdf")
    with pytest.raises(CommandError, match="Établissement inconnu"):
        call_command("export_accounting", establishment="NOPE", date_from="2026-02-01", date_to="2026-02-28",
                     fmt="fec")


def test_command_refuses_a_file_the_checker_rejects(month, tmp_path, monkeypatch):
    monkeypatch.setattr(acc, "export_fec", lambda export, separator="\t": fec.fec_bytes(
        [["VT", "Ventes", "1", date(2026, 1, 5), "411", "", "", "", "F1", date(2026, 1, 5), "x", D("1"), D("0"),
          "", None, date(2026, 1, 5), None, ""]]))
    output = tmp_path / "out.txt"
    with pytest.raises(CommandError, match="déséquilibrée"):
        call_command("export_accounting", establishment=month["establishment"].code, date_from="2026-01-01",
                     date_to="2026-01-31", fmt="fec", output=str(output))
    assert not output.exists()


def test_a_registered_bank_return_source_is_booked_and_lettered(month, monkeypatch):
    """The hook the SEPA app will use: a returned direct debit books 411 / bank and letters with the payment."""
    section = month["section"]
    debit = pay.payment_record(section=section, on=date(2026, 1, 12), amount=D("500.00"), mode="direct_debit",
                               invoice=month["p"])
    pay.payment_cancel(payment=debit, reason="Rejet SEPA AM04")
    Payment.objects.filter(pk=debit.pk).update(cancel_reason="Rejet SEPA AM04")

    def bank_returns(*, establishment, account_map, customer, date_from, date_to, exported):
        account, aux, aux_label = customer(debit)
        label = "Rejet de prélèvement AM04"
        return [acc.EntryDraft(acc.BANK, date(2026, 1, 14), "RJ-AM04", date(2026, 1, 14), label,
                               f"bank-return:{debit.pk}", [
            acc.LineDraft(account=account, aux_account=aux, aux_label=aux_label, label=label, debit=D("500.00"),
                          node=f"payment:{debit.pk}"),
            acc.LineDraft(account=account_map.direct_debit_account, label=label, credit=D("500.00"))])]

    monkeypatch.setattr(acc, "_ENTRY_SOURCES", [])
    acc.register_entry_source(bank_returns)
    # The cancellation made by the SEPA app itself is its bank return: keep only the return entry.
    Payment.objects.filter(pk=debit.pk).update(cancelled_at=None, cancel_reason="")
    export = acc.export_build(establishment=month["establishment"], date_from=JAN[0], date_to=JAN[1])
    content = acc.export_content(export, "fec")
    assert fec.fec_check(content) == []
    rows = _rows(content)
    returned = [r for r in rows if r["PieceRef"] == "RJ-AM04"]
    assert {(r["CompteNum"], r["Debit"], r["Credit"]) for r in returned} == {("4112", "500,00", "0,00"),
                                                                             ("512", "0,00", "500,00")}
    debit_rows = [r for r in rows if r["PieceRef"] == f"REG{debit.pk:06d}" and r["CompteNum"] == "4112"]
    assert debit_rows[0]["EcritureLet"] == [r for r in returned if r["CompteNum"] == "4112"][0]["EcritureLet"] != ""
    assert sorted(int(r["EcritureNum"]) for r in rows if r["JournalCode"] == "BQ" and r["CompteNum"] == "512"
                  ) == [1, 2, 3, 4, 5]
