"""*Restes à recouvrer* of the association: every section the user may read, in the same
queries as one section (five), totals equal to the sections' own, one line per debtor, the export with a
SECTION column, ``export_balances --all-sections`` and the link from the tableau de bord."""
import io
from datetime import date
from decimal import Decimal
from io import StringIO

import openpyxl
import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from billing.services import balances
from billing.services import payments as svc
from billing.services.payments import Debtor
from structures.models import SectionAccess
from tests.billing.payment_helpers import issued_invoice, paying_relative, resident_in
from tests.factories import SectionAccessFactory, SectionFactory, UserFactory

D = Decimal
pytestmark = pytest.mark.django_db
MAY = date(2026, 5, 1)


@pytest.fixture
def site():
    north = SectionFactory(alias="ASSO-N")
    south = SectionFactory(alias="ASSO-S", establishment=north.establishment)
    alone = SectionFactory(alias="ASSO-X")  # another association
    durand = resident_in(north, last_name="DURAND")
    martin = resident_in(south, last_name="MARTIN")
    son = paying_relative(martin, last_name="MARTIN", first_name="Luc")
    petit = resident_in(south, last_name="PETIT")
    other = resident_in(alone, last_name="AILLEURS")
    a = issued_invoice(north, durand, "100.00", date(2026, 1, 5))
    c = issued_invoice(south, martin, "300.00", date(2026, 2, 5), relative=son)
    b = issued_invoice(north, durand, "150.00", date(2026, 3, 20))
    d = issued_invoice(south, martin, "80.00", date(2026, 4, 10), relative=son)
    issued_invoice(alone, other, "999.00", date(2026, 4, 10))
    svc.payment_record(section=north, invoice=b, on=date(2026, 4, 1), amount=D("50.00"), mode="cheque")
    svc.payment_record(section=south, invoice=c, on=date(2026, 3, 1), amount=D("120.00"), mode="transfer")
    svc.payment_record(section=south, debtor=Debtor(south.pk, "resident", resident_id=petit.pk), on=date(2026, 3, 2),
                       amount=D("30.00"), mode="transfer", reference="VIR PETIT")
    return {"north": north, "south": south, "alone": alone, "a": a, "b": b, "c": c, "d": d, "son": son,
            "petit": petit}


def _key(row):
    return (row.facture, row.debiteur, row.reste, row.retard_jours, row.date_emission)


def test_association_rows_equal_the_sections_in_constant_queries(site, django_assert_num_queries):
    with django_assert_num_queries(5):  # as many as for one section (tests/billing/test_balances.py)
        rows = balances.balances_rows_for_sections(sections=[site["north"], site["south"]], on=MAY)
    per_section = {alias: balances.balances_rows(section=site[alias], on=MAY) for alias in ("north", "south")}
    assert sorted(map(_key, rows)) == sorted(_key(r) for rs in per_section.values() for r in rs)
    assert {r.section for r in rows} == {"ASSO-N", "ASSO-S"}
    summary = balances.balances_summary(rows)
    parts = [balances.balances_summary(rs) for rs in per_section.values()]
    for i, bucket in enumerate(summary["buckets"]):
        assert bucket["total"] == sum(p["buckets"][i]["total"] for p in parts)
        assert bucket["count"] == sum(p["buckets"][i]["count"] for p in parts)
    assert summary["owed"] == sum(p["owed"] for p in parts) == D("460.00")  # 100 + 100 + 180 + 80
    assert summary["credits"]["total"] == D("-30.00") and summary["net"] == D("430.00")
    by_section = {s["section"]: s for s in balances.balances_by_section(rows)}
    assert by_section["ASSO-N"]["owed"] == parts[0]["owed"] and by_section["ASSO-S"]["net"] == parts[1]["net"]
    # Hand-computed ageing: A due 20/01 → 101 days; C due 20/02 → 70; D due 25/04 → 6; B due 04/04 → 27.
    ages = {r.facture: (r.reste, r.retard_jours) for r in rows if r.facture}
    assert ages == {site["a"].number: (D("100.00"), 101), site["c"].number: (D("180.00"), 70),
                    site["d"].number: (D("80.00"), 6), site["b"].number: (D("100.00"), 27)}


def test_credits_read_in_chunks_give_the_same_rows(site, monkeypatch):
    svc.payment_record(section=site["north"], debtor=Debtor(site["north"].pk, "resident",
                                                            resident_id=site["a"].resident_id),
                       on=date(2026, 3, 3), amount=D("500.00"), mode="cheque")  # a second credit
    sections = [site["north"], site["south"]]
    whole = sorted(map(_key, balances.balances_rows_for_sections(sections=sections, on=MAY)))
    monkeypatch.setattr(balances, "ID_CHUNK", 1)  # one query per credit: SQLite's parameter cap never hit
    assert sorted(map(_key, balances.balances_rows_for_sections(sections=sections, on=MAY))) == whole
    assert sum(1 for k in whole if not k[0]) == 2


def test_one_line_per_debtor(site):
    rows = balances.balances_rows_for_sections(sections=[site["north"], site["south"]], on=MAY)
    debtors = balances.balances_by_debtor(rows)
    assert [(d["section"], d["debiteur"]) for d in debtors] == [
        ("ASSO-N", "Mme DURAND Jeanne"), ("ASSO-S", str(site["son"])), ("ASSO-S", site["petit"].full_name)]
    durand, son, petit = debtors
    assert (durand["90_plus"], durand["0_30"], durand["net"]) == (D("100.00"), D("100.00"), D("200.00"))
    assert (son["61_90"], son["0_30"], son["net"]) == (D("180.00"), D("80.00"), D("260.00"))
    assert (petit["credits"], petit["net"]) == (D("-30.00"), D("-30.00"))


def test_page_shows_only_the_users_sections(client, site):
    reader = UserFactory(username="asso-reader")
    SectionAccessFactory(user=reader, section=site["north"], role=SectionAccess.Role.READER)
    client.force_login(reader)
    url = reverse("association-balances")
    page = client.get(url, {"on": "2026-05-01"}).content.decode()
    assert "DURAND" in page and 'data-section="ASSO-N"' in page
    assert "MARTIN" not in page and "PETIT" not in page and "ASSO-S" not in page and "AILLEURS" not in page
    csv = client.get(reverse("association-balances-export", kwargs={"fmt": "csv"}), {"on": "2026-05-01"})
    lines = csv.content.decode("utf-8-sig").split("\r\n")
    assert lines[0] == ";".join(balances.HEADERS_ALL)
    assert {ln.split(";")[0] for ln in lines[1:] if ln} == {"ASSO-N"}
    # A clerk of both sections sees both, the association's totals and a link to each section's page.
    both = UserFactory(username="asso-both")
    for alias in ("north", "south"):
        SectionAccessFactory(user=both, section=site[alias], role=SectionAccess.Role.CLERK)
    client.force_login(both)
    page = client.get(url, {"on": "2026-05-01"}).content.decode()
    assert "MARTIN" in page and "PETIT" in page and "AILLEURS" not in page
    assert reverse("billing:balances", kwargs={"alias": "ASSO-S"}) in page
    assert "460,00" in page and "430,00" in page
    xlsx = client.get(reverse("association-balances-export", kwargs={"fmt": "xlsx"}), {"on": "2026-05-01"})
    values = list(openpyxl.load_workbook(io.BytesIO(xlsx.content)).active.values)
    assert values[0] == balances.HEADERS_ALL and len(values) == 1 + 4 + 1
    assert client.get(reverse("association-balances-export", kwargs={"fmt": "pdf"})).status_code == 404
    client.logout()
    assert client.get(url).status_code == 302  # login required


def test_linked_from_the_dashboard_and_the_section_page(client, site):
    reader = UserFactory(username="asso-dash")
    SectionAccessFactory(user=reader, section=site["north"], role=SectionAccess.Role.READER)
    client.force_login(reader)
    home = client.get(reverse("home")).content.decode()
    assert f'href="{reverse("association-balances")}" data-link="association_balances"' in home
    page = client.get(reverse("billing:balances", kwargs={"alias": "ASSO-N"})).content.decode()
    assert reverse("association-balances") in page
    nobody = UserFactory(username="asso-nobody")
    client.force_login(nobody)
    assert 'data-link="association_balances"' not in client.get(reverse("home")).content.decode()


def test_export_command_all_sections(site, tmp_path):
    with pytest.raises(CommandError, match="plusieurs associations"):
        call_command("export_balances", "--all-sections", "--date", "2026-05-01", stdout=StringIO())
    organisation = site["north"].establishment.organisation
    out = StringIO()
    call_command("export_balances", "--all-sections", "--association", organisation.name, "--date", "2026-05-01",
                 "--format", "csv", stdout=out)
    lines = out.getvalue().split("\r\n")
    assert lines[0] == ";".join(balances.HEADERS_ALL)
    assert f"ASSO-N;{site['a'].number};Mme DURAND Jeanne;Résident;;05/01/2026;20/01/2026;100,00;0,00;100,00;101" in lines
    assert {ln.split(";")[0] for ln in lines[1:] if ln} == {"ASSO-N", "ASSO-S"}
    with pytest.raises(CommandError, match="Association inconnue"):
        call_command("export_balances", "--all-sections", "--association", "Nulle part", stdout=StringIO())
    with pytest.raises(CommandError):
        call_command("export_balances", "--all-sections", "--section", "ASSO-N", stdout=StringIO())
