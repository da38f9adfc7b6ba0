"""Restes à recouvrer: ageing by days past the due date on a date, credits as negative rows, filters,
the export command (CSV / XLSX) and the page — with hand-computed delays.

Due dates are issue + 15 days. On 01/05/2026: A due 20/01 → 101 days (> 90); B due 20/02 → 70
(61–90); D (payer) due 16/03 → 46 (31–60); C due 04/04 → 27 (0–30)."""
import io
from datetime import date
from decimal import Decimal
from io import StringIO

import openpyxl
import pytest
from django.core.management import call_command
from django.urls import reverse

from billing.services import balances
from billing.services import payments as svc
from billing.services.payments import Debtor
from payers.models import Payer
from structures.models import SectionAccess
from tests.billing.payment_helpers import issued_invoice, resident_in
from tests.factories import SectionAccessFactory, SectionFactory, UserFactory

D = Decimal
pytestmark = pytest.mark.django_db
MAY = date(2026, 5, 1)


@pytest.fixture
def site():
    section = SectionFactory(alias="BAL-HP")
    durand = resident_in(section, last_name="DURAND", external_ref="R002")
    petit = resident_in(section, last_name="PETIT")
    cd = Payer.objects.create(organisation=section.establishment.organisation, code="CD69", name="Département",
                              kind="departement")
    a = issued_invoice(section, durand, "100.00", date(2026, 1, 5))
    b = issued_invoice(section, durand, "150.00", date(2026, 2, 5))
    d = issued_invoice(section, durand, "80.00", date(2026, 3, 1), payer=cd)
    c = issued_invoice(section, durand, "200.00", date(2026, 3, 20))
    pay_b = svc.payment_record(section=section, invoice=b, on=date(2026, 3, 1), amount=D("50.00"), mode="cheque")
    svc.payment_record(section=section, debtor=Debtor(section.pk, "resident", resident_id=petit.pk),
                       on=date(2026, 3, 2), amount=D("30.00"), mode="transfer", reference="VIR PETIT")
    return {"section": section, "a": a, "b": b, "c": c, "d": d, "pay_b": pay_b, "petit": petit}


def test_ageing_on_a_date_in_constant_queries(site, django_assert_num_queries):
    # Five whatever the size: allocations after the date, open invoices, payments left with credit (ids,
    # then rows), credit notes.
    with django_assert_num_queries(5):
        rows = balances.balances_rows(section=site["section"], on=MAY)
    by_number = {r.facture: r for r in rows if r.facture}
    assert [(by_number[site[k].number].reste, by_number[site[k].number].retard_jours) for k in "abdc"] == [
        (D("100.00"), 101), (D("100.00"), 70), (D("80.00"), 46), (D("200.00"), 27)]
    credits = [r for r in rows if not r.facture]
    assert [(c.debiteur, c.reste) for c in credits] == [(site["petit"].full_name, D("-30.00"))]
    summary = balances.balances_summary(rows)
    assert [b["total"] for b in summary["buckets"]] == [D("200.00"), D("80.00"), D("100.00"), D("100.00")]
    assert summary["owed"] == D("480.00") and summary["net"] == D("450.00")


def test_as_of_an_earlier_date_and_cancellation_after_it(site):
    rows = balances.balances_rows(section=site["section"], on=date(2026, 2, 25))
    by_number = {r.facture: r for r in rows if r.facture}
    assert set(by_number) == {site["a"].number, site["b"].number}  # C and D not issued yet
    assert by_number[site["b"].number].reste == D("150.00")  # the cheque came on 01/03
    assert by_number[site["a"].number].retard_jours == 36
    assert not [r for r in rows if not r.facture]
    svc.payment_cancel(payment=site["pay_b"], reason="Chèque impayé")
    rows = balances.balances_rows(section=site["section"], on=MAY)  # cancelled later: still paid on 01/05
    assert {r.facture: r.reste for r in rows}[site["b"].number] == D("100.00")
    rows = balances.balances_rows(section=site["section"], on=date(2099, 1, 1))
    assert {r.facture: r.reste for r in rows}[site["b"].number] == D("150.00")


def test_filters(site):
    rows = balances.balances_rows(section=site["section"], on=MAY, debtor_kind="payer")
    assert [r.facture for r in rows] == [site["d"].number]
    rows = balances.balances_rows(section=site["section"], on=MAY, payment_mode="transfer")
    # D is a payer's invoice (transfer); the credit came by transfer.
    assert [r.facture for r in rows] == [site["d"].number, ""]


def test_export_command_csv_and_xlsx(site, tmp_path):
    out = StringIO()
    call_command("export_balances", "--section", "BAL-HP", "--date", "2026-05-01", "--format", "csv", stdout=out)
    lines = out.getvalue().split("\r\n")
    assert lines[0] == ";".join(balances.HEADERS)
    assert f"{site['a'].number};Mme DURAND Jeanne;Résident;R002;05/01/2026;20/01/2026;100,00;0,00;100,00;101" in lines
    assert f";{site['petit'].full_name};Résident;;02/03/2026;;30,00;0,00;-30,00;" in lines
    path = tmp_path / "restes.xlsx"
    call_command("export_balances", "--section", "BAL-HP", "--date", "2026-05-01", "--format", "xlsx", "-o",
                 str(path), stderr=StringIO())
    sheet = openpyxl.load_workbook(path).active
    values = list(sheet.values)
    assert values[0] == balances.HEADERS and len(values) == 6
    assert values[1][0] == site["a"].number and values[1][8] == 100 and values[1][9] == 101


def test_page_and_export_are_scoped(client, site):
    reader = UserFactory(username="bal-reader")
    SectionAccessFactory(user=reader, section=site["section"], role=SectionAccess.Role.READER)
    client.force_login(reader)
    url = reverse("billing:balances", kwargs={"alias": "BAL-HP"})
    page = client.get(url, {"on": "2026-05-01", "debtor_kind": "resident"}).content.decode()
    assert site["a"].number in page and site["d"].number not in page and "Crédits non imputés" in page
    xlsx = client.get(reverse("billing:balances-export", kwargs={"alias": "BAL-HP", "fmt": "xlsx"}),
                      {"on": "2026-05-01"})
    assert xlsx.status_code == 200
    assert len(list(openpyxl.load_workbook(io.BytesIO(xlsx.content)).active.values)) == 6
    other = SectionFactory(alias="BAL-OTHER")
    assert client.get(reverse("billing:balances", kwargs={"alias": other.alias})).status_code == 404
