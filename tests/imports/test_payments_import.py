"""manage.py import_payments and its browser upload: columns, French report (row, column, value),
all or nothing, duplicates, REF_EXTERNE → the debtor of the resident's invoices, PAYEUR."""
from datetime import date
from decimal import Decimal
from io import StringIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse

from billing.models import Invoice, Payment
from billing.services.payments import Debtor, debtor_credit
from imports.models import ImportRun
from payers.models import Payer
from structures.models import SectionAccess
from tests.billing.payment_helpers import issued_invoice, paying_relative, resident_in
from tests.factories import SectionAccessFactory, SectionFactory, UserFactory

D = Decimal
pytestmark = pytest.mark.django_db
HEADER = "DATE;MONTANT;MODE;FACTURE;REF_EXTERNE;PAYEUR;REFERENCE;TIREUR;COMMENTAIRE\n"


@pytest.fixture
def site():
    section = SectionFactory(alias="IMP-HP")
    martin = resident_in(section, last_name="MARTIN", external_ref="R001")
    son = paying_relative(martin, last_name="MARTIN", first_name="Luc")
    durand = resident_in(section, last_name="DURAND", external_ref="R002")
    cd = Payer.objects.create(organisation=section.establishment.organisation, code="CD69", name="Département",
                              kind="departement")
    a = issued_invoice(section, durand, "100.00", date(2026, 1, 5))
    b = issued_invoice(section, durand, "150.00", date(2026, 2, 5))
    m = issued_invoice(section, martin, "300.00", date(2026, 2, 5), relative=son)
    p = issued_invoice(section, martin, "420.00", date(2026, 2, 5), payer=cd)
    foreign = issued_invoice(SectionFactory(alias="IMP-OTHER", establishment=section.establishment),
                             resident_in(section), "10.00", date(2026, 2, 5))
    return {"section": section, "martin": martin, "son": son, "durand": durand, "cd": cd, "a": a, "b": b, "m": m,
            "p": p, "foreign": foreign}


def _file(tmp_path, text, name="reglements.csv"):
    path = tmp_path / name
    path.write_bytes(text.encode("cp1252"))
    return str(path)


def _run(path, *extra):
    out, err = StringIO(), StringIO()
    try:
        call_command("import_payments", path, "--section", "IMP-HP", *extra, stdout=out, stderr=err)
    except CommandError as exc:
        return False, out.getvalue(), err.getvalue() + str(exc)
    return True, out.getvalue(), err.getvalue()


def test_import_allocates_each_kind_of_line(tmp_path, site):
    text = HEADER + (
        f"01/03/2026;180,00;CHEQUE;{site['b'].number};;;1234567;M. DURAND;\n"
        "02/03/2026;350,00;virement;;R001;;VIR MARTIN MARS;;trop-perçu\n"
        "03/03/2026;420,00;PAYEUR;;;cd69;BORD-2026-02;;\n")
    ok, out, err = _run(_file(tmp_path, text))
    assert ok, err
    assert "3 règlement(s)" in out and "950,00" in out
    a, b, m, p = (Invoice.objects.get(pk=site[k].pk) for k in "abmp")
    # B named: 150, excess 30 → A (oldest due); R001 → the son's invoice (300) and 50 credit; payer paid.
    assert (b.paid_amount, a.paid_amount, m.paid_amount, p.paid_amount) == (D("150"), D("30"), D("300"), D("420"))
    assert debtor_credit(Debtor.of(m)) == D("50.00")
    assert Payment.objects.get(reference="VIR MARTIN MARS").relative == site["son"]
    run = ImportRun.objects.get(kind="payments")
    assert run.status == "imported" and run.summary["lines"] == 3
    assert run.summary["credit"] == "50.00" and "non imputé (crédit) : 50,00" in out


def test_errors_are_reported_in_french_and_nothing_is_written(tmp_path, site):
    text = HEADER + (
        f"31/02/2026;10,00;CHEQUE;{site['a'].number};;;1;;\n"
        f"01/03/2026;-5;CHEQUE;{site['a'].number};;;2;;\n"
        f"01/03/2026;5,00;CARTE;{site['a'].number};;;3;;\n"
        f"01/03/2026;5,00;CHEQUE;{site['a'].number};R001;;4;;\n"
        f"01/03/2026;5,00;CHEQUE;{site['foreign'].number};;;5;;\n"
        "01/03/2026;5,00;CHEQUE;;R999;;6;;\n"
        "01/03/2026;5,00;CHEQUE;;;XX;7;;\n"
        f"01/03/2026;5,00;CHEQUE;{site['a'].number};;;8;;\n")
    ok, out, err = _run(_file(tmp_path, text))
    assert not ok
    assert "ligne 2 › DATE › 31/02/2026 › Date invalide" in err
    assert "ligne 3 › MONTANT › -5 › Le montant doit être positif" in err
    assert "ligne 4 › MODE › CARTE › Mode inconnu" in err
    assert "ligne 5 › FACTURE" in err and "une et une seule" in err
    assert f"ligne 6 › FACTURE › {site['foreign'].number} › Facture inconnue dans la section IMP-HP" in err
    assert "ligne 7 › REF_EXTERNE › R999" in err
    assert "ligne 8 › PAYEUR › XX › Code payeur inconnu" in err
    assert "7 erreur(s)" in err
    assert not Payment.objects.exists()
    assert ImportRun.objects.get(kind="payments").status == "rejected"


def test_missing_column_and_dry_run(tmp_path, site):
    ok, out, err = _run(_file(tmp_path, "DATE;MONTANT;FACTURE\n01/03/2026;5;X\n"))
    assert not ok and "Colonne obligatoire absente : MODE" in err
    ok, out, err = _run(_file(tmp_path, HEADER + f"01/03/2026;5,00;CHEQUE;{site['a'].number};;;1;;\n"), "--dry-run")
    assert ok and "Simulation réussie" in out and not Payment.objects.exists()


def test_duplicates_refused_unless_allowed(tmp_path, site):
    line = f"01/03/2026;50,00;CHEQUE;{site['a'].number};;;1234;;\n"
    assert _run(_file(tmp_path, HEADER + line))[0]
    ok, out, err = _run(_file(tmp_path, HEADER + line))
    assert not ok and "Un règlement identique existe déjà" in err
    ok, out, err = _run(_file(tmp_path, HEADER + line.replace("1234", "9") * 2))
    assert not ok and "ligne 3" in err and "ligne précédente" in err
    assert Payment.objects.count() == 1
    assert _run(_file(tmp_path, HEADER + line), "--allow-duplicates")[0]
    assert Payment.objects.count() == 2


def test_browser_upload(client, site):
    manager = UserFactory(username="imp-manager")
    SectionAccessFactory(user=manager, section=site["section"], role=SectionAccess.Role.MANAGER)
    clerk = UserFactory(username="imp-clerk")
    SectionAccessFactory(user=clerk, section=site["section"], role=SectionAccess.Role.CLERK)
    url = reverse("imports:payments", kwargs={"alias": "IMP-HP"})
    text = HEADER + f"01/03/2026;100,00;CHEQUE;{site['a'].number};;;77;;\n"
    client.force_login(clerk)
    assert client.get(url).status_code == 403
    client.force_login(manager)
    assert client.get(url).status_code == 200
    bad = client.post(url, {"file": SimpleUploadedFile("r.csv", (HEADER + "01/03/2026;x;CHEQUE;;R001;;;;\n").encode())})
    assert bad.status_code == 400 and "Montant invalide" in bad.content.decode()
    response = client.post(url, {"file": SimpleUploadedFile("r.csv", text.encode())})
    assert response.status_code == 200 and "Import réussi" in response.content.decode()
    assert Invoice.objects.get(pk=site["a"].pk).paid_amount == D("100.00")
    other = reverse("imports:payments", kwargs={"alias": "IMP-OTHER"})
    assert client.get(other).status_code == 404
