"""manage.py import_payments and its browser upload: columns, French report (row, column, value),
all or nothing, duplicates, REF_EXTERNE → the debtor of the resident's invoices, PAYEUR."""
from datetime import date
from decimal import Decimal
from io import StringIO

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from billing.models import Invoice, Payment
from billing.services.payments import Debtor, debtor_credit
from imports.models import ImportRun
from imports.services.payments_import import payments_import_validate
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


def _errors(site, text: str, **kwargs) -> list[tuple]:
    """Validation only: every error as ``(row, column, value, message)``, in report order."""
    validation = payments_import_validate(section=site["section"], data=text.encode(), **kwargs)
    return [(e["row"], p["column"], p["value"], p["message"]) for e in validation.report for p in e["errors"]]


def test_each_column_rule_reports_its_own_message(site):
    a = site["a"].number
    text = HEADER + (
        f";5,00;CHEQUE;{a};;;1;;\n"
        f"01/03/2026;;CHEQUE;{a};;;2;;\n"
        f"01/03/2026;5,001;CHEQUE;{a};;;3;;\n"
        f"01/03/2026;5,00;;{a};;;4;;\n"
        f"01/03/2026;5,00;CHEQUE;{a};;;{'R' * 81};{'T' * 121};{'C' * 251}\n"
        ";;;;;;;;seul un commentaire\n")
    assert _errors(site, text) == [
        (2, "DATE", "", "La date est obligatoire."),
        (3, "MONTANT", "", "Le montant est obligatoire."),
        (4, "MONTANT", "5,001", "Au plus deux décimales."),
        (5, "MODE", "", "Le mode est obligatoire."),
        (6, "REFERENCE", "R" * 80, "Au plus 80 caractères."),
        (6, "TIREUR", "T" * 80, "Au plus 120 caractères."),
        (6, "COMMENTAIRE", "C" * 80, "Au plus 250 caractères."),
        (7, "DATE", "", "La date est obligatoire."),
        (7, "MONTANT", "", "Le montant est obligatoire."),
        (7, "MODE", "", "Le mode est obligatoire."),
        (7, "FACTURE", "", "Indiquez une et une seule des colonnes FACTURE, REF_EXTERNE ou PAYEUR."),
    ]


def test_invoice_must_be_an_issued_invoice_and_its_number_any_case(site):
    from billing.services.issuing import credit_note_create

    credit = credit_note_create(invoice=site["a"])  # the whole of A: A is cancelled
    text = HEADER + (f"01/03/2026;5,00;CHEQUE;{credit.number};;;1;;\n"
                     f"01/03/2026;5,00;CHEQUE;{site['a'].number};;;2;;\n")
    assert _errors(site, text) == [
        (2, "FACTURE", credit.number, "Ce n'est pas une facture émise à régler (avoir)."),
        (3, "FACTURE", site["a"].number, "Ce n'est pas une facture émise à régler (Annulée)."),
    ]
    validation = payments_import_validate(section=site["section"], data=(
        HEADER + f"01/03/2026;5,00;chq;;;;1;;\n01/03/2026;5,00;CHEQUE;{site['b'].number.lower()};;;1;;\n").encode())
    assert [(e["row"], [p["column"] for p in e["errors"]]) for e in validation.report] == [(2, ["FACTURE"])]
    assert [(p.invoice, p.mode) for p in validation.planned] == [(site["b"], Payment.Mode.CHEQUE)]


def test_external_ref_without_invoice_goes_to_the_paying_relative_else_the_resident(site):
    alone = resident_in(site["section"], last_name="SEUL", external_ref="R003")
    helped = resident_in(site["section"], last_name="AIDE", external_ref="R004")
    daughter = paying_relative(helped, last_name="AIDE", first_name="Lise")
    validation = payments_import_validate(section=site["section"], data=(
        HEADER + "01/03/2026;5,00;ESP;;R003;;;;\n01/03/2026;6,00;VIR;;R004;;;;\n").encode())
    assert validation.ok
    assert [(p.debtor, p.debtor_label, p.mode) for p in validation.planned] == [
        (Debtor(site["section"].pk, Invoice.DebtorKind.RESIDENT, resident_id=alone.pk), alone.full_name,
         Payment.Mode.CASH),
        (Debtor(site["section"].pk, Invoice.DebtorKind.RELATIVE, resident_id=helped.pk, relative_id=daughter.pk),
         str(daughter), Payment.Mode.TRANSFER)]


def test_file_level_errors(site):
    assert _errors(site, "DATE;MONTANT;MODE;FACTURE;BANQUE\n01/03/2026;5;CHEQUE;X;Y\n") == [
        (1, "BANQUE", "BANQUE", "Colonne inconnue (colonnes attendues : DATE, MONTANT, MODE, FACTURE, REF_EXTERNE, "
                                "PAYEUR, REFERENCE, TIREUR, COMMENTAIRE).")]
    assert _errors(site, HEADER) == [(None, "", "", "Le fichier ne contient aucune ligne de règlement.")]


def test_duplicate_lines_are_accepted_when_allowed_and_cancelled_payments_do_not_count(site):
    line = f"01/03/2026;50,00;CHEQUE;{site['a'].number};;;1234;;\n"
    assert not _errors(site, HEADER + line * 2, allow_duplicates=True)
    assert _errors(site, HEADER + line * 2)[0][:2] == (3, "REFERENCE")
    Payment.objects.create(section=site["section"], debtor_kind="resident", resident=site["durand"],
                           date=date(2026, 3, 1), amount=D("50.00"), mode=Payment.Mode.CHEQUE, reference="1234",
                           cancelled_at=timezone.now(), cancel_reason="Saisie en double")
    assert not _errors(site, HEADER + line)
