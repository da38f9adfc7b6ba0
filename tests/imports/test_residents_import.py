"""Residents and relatives import (XLSX): every rule of formats.md with the exact report line, nothing
written on error, success, dry run, exit codes, malformed files, template workbooks, and the browser
flow (upload → report → confirm) run as Celery jobs."""
from __future__ import annotations

import io
import zipfile
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from billing.models import StayPackage
from imports.models import ImportRun
from imports.services import residents_import as service
from imports.services.xlsx import OLE2_MAGIC, ENCRYPTION_MARKER, to_bool, to_date, to_int, to_text, CellError
from payers.models import CoverageRule
from residents.models import GirAssessment, Relative, Resident, Stay
from sepa.models import Mandate
from tests.factories import ResidentFactory

from .conftest import (BAD_RIB_KEY_IBAN, RELATIVE_HEADERS, RESIDENT_HEADERS, VALID_IBAN, nir, relative_row,
                       resident_row, write_xlsx)

pytestmark = pytest.mark.django_db

MODELS = (Resident, Stay, GirAssessment, StayPackage, CoverageRule, Relative, Mandate)


def counts():
    return {m.__name__: m.objects.count() for m in MODELS}


def run(*args):
    """call_command → (exit code, stdout, stderr) like the shell would see them."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("import_residents", *[str(a) for a in args], stdout=out, stderr=err)
    except CommandError as exc:
        err.write(f"CommandError: {exc}\n")
        return exc.returncode, out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def line(row, column, value, message, *, file="residents.xlsx", sheet="Résidents"):
    return f"{file} › {sheet} › {row} › {column} › {value} › {message}"


# ----------------------------------------------------------------------------------------- success
def test_import_creates_residents_stays_relatives_and_mandates(demo, files):
    before_count = Mandate.objects.count()
    residents = files.residents([
        resident_row(1, MODE_REGLEMENT="PRELEVEMENT", IBAN="FR76 3000 6000 0112 3456 7890 189", BIC="AGRIFRPPXXX",
                     RUM="TIL-2019-0042", DATE_SIGNATURE_MANDAT="15/03/2019", EMAIL="helene@example.org"),
        resident_row(2, NOM="Lefèvre", PRENOM="Zoé", CIVILITE="Mme", MODE_REGLEMENT="Prélèvement", AIDE_SOCIALE=1,
                     GIR=2, HEBERGEMENT="std-tv", REF_EXTERNE="", CHAMBRE=""),
        resident_row(3, SECTION="TIL-HT", HEBERGEMENT="HT", PAYEUR="MUTSAN", GIR=None, DATE_ENTREE="2026-11-10",
                     NIR=""),
    ])
    relatives = files.relatives([
        relative_row(1),
        relative_row(2, NOM="Lefèvre", PRENOM="Anaïs", LIEN="FILLE", PAYEUR=1, TUTEUR=1, IBAN=VALID_IBAN,
                     DESTINATAIRE_FACTURES="OUI"),
        relative_row(2, NOM="Lefèvre", PRENOM="Marc", LIEN="FILS", DESTINATAIRE_FACTURES=0, EMAIL=""),
    ])
    code, out, err = run(residents, "--relatives", relatives)
    assert code == 0, err
    assert "Import terminé." in out
    assert "3 résident(s) créé(s), avec 3 séjour(s)" in out
    assert "2 mandat(s) SEPA dont 1 actif(s)" in out

    helene = Resident.objects.get(external_ref="EXT-0001")
    assert (helene.last_name, helene.first_name, helene.birth_name) == ("Müller-Élodie d'Arçy", "Hélène", "Dupont")
    assert helene.birth_date == date(1938, 4, 12) and helene.nir == nir(1)
    assert helene.payment_mode == "direct_debit" and helene.email == "helene@example.org"
    assert helene.organisation == demo["organisation"]
    stay = helene.stays.get()
    assert (stay.section.alias, stay.entry_date, stay.room) == ("TIL-HP", date(2026, 11, 2), "101")
    assert StayPackage.objects.get(stay=stay).package.code == "STD"
    assert helene.gir_assessments.get().gir == 3
    rule = CoverageRule.objects.get(stay=stay)
    assert (rule.payer.code, rule.group.code, rule.scope, rule.mode, rule.valid_from) == (
        "CD69", "APA", "dependency", "above_talon", date(2026, 11, 2))
    mandate = Mandate.objects.get(resident=helene)
    assert (mandate.rum, mandate.iban, mandate.bic, mandate.status, mandate.signature_date, mandate.relative) == (
        "TIL-2019-0042", VALID_IBAN, "AGRIFRPPXXX", "active", date(2019, 3, 15), None)
    assert mandate.establishment.code == "TIL" and mandate.account_holder == "MÜLLER-ÉLODIE D'ARÇY Hélène"
    assert helene.relatives.get().receives_invoices

    zoe = Resident.objects.get(first_name="Zoé")
    assert zoe.civility == "MME" and zoe.external_ref == "" and zoe.payment_mode == "direct_debit"
    zoe_stay = zoe.stays.get()
    assert StayPackage.objects.get(stay=zoe_stay).package.code == "STD-TV"
    rules = {(r.group.code, r.scope, r.mode) for r in CoverageRule.objects.filter(stay=zoe_stay)}
    assert rules == {("APA", "dependency", "above_talon"), ("ASH", "accommodation", "all")}
    anais, marc = zoe.relatives.order_by("first_name")
    assert (anais.is_payer, anais.is_guardian, anais.receives_invoices, anais.relationship) == (True, True, True,
                                                                                               "FILLE")
    assert not marc.receives_invoices
    pending = Mandate.objects.get(resident=zoe)
    assert pending.relative == anais and pending.status == "pending" and pending.signature_date is None
    assert pending.rum == f"TIL-R{zoe.pk}-P{anais.pk}" and pending.iban == VALID_IBAN and pending.bic == ""
    assert pending.account_holder == "LEFÈVRE Anaïs"

    third = Resident.objects.get(external_ref="EXT-0003")
    third_stay = third.stays.get()
    assert third_stay.section.alias == "TIL-HT" and third_stay.entry_date == date(2026, 11, 10)
    assert not third.gir_assessments.exists()
    rule = CoverageRule.objects.get(stay=third_stay)
    assert (rule.payer.code, rule.group, rule.scope, rule.mode) == ("MUTSAN", None, "all", "all")
    assert Mandate.objects.count() == before_count + 2

    run_record = ImportRun.objects.get()
    assert run_record.status == "imported" and run_record.kind == "residents"
    assert [f["name"] for f in run_record.files] == ["residents.xlsx", "proches.xlsx"]
    assert all(len(f["sha256"]) == 64 for f in run_record.files)
    assert run_record.summary["residents"] == 3


def test_bic_is_proposed_not_imposed(demo, files):
    residents = files.residents([resident_row(1, MODE_REGLEMENT="PRELEVEMENT", IBAN=VALID_IBAN)])
    code, out, err = run(residents)
    assert code == 0, err
    assert line(2, "BIC", "(vide)", "BIC non renseigné : d'après l'IBAN, ce pourrait être AGRIFRPPXXX. Vérifiez-le "
                "et ajoutez-le au besoin (le mandat est créé sans BIC).") in out
    mandate = Mandate.objects.get()
    assert mandate.bic == "" and mandate.status == "pending" and mandate.rum == "TIL-EXT-0001"


def test_dry_run_validates_and_writes_nothing(demo, files):
    residents = files.residents([resident_row(1), resident_row(2)])
    relatives = files.relatives([relative_row(1)])
    before = counts()
    code, out, err = run(residents, "--relatives", relatives, "--dry-run")
    assert code == 0, err
    assert "Simulation : fichiers valides, rien n'a été écrit." in out
    assert "2 résident(s) à créer, avec 2 séjour(s)" in out
    assert counts() == before and not ImportRun.objects.exists()


# ------------------------------------------------------------------------------- one rule, one line
TOMORROW = "tomorrow"
WITH_IBAN = {"MODE_REGLEMENT": "PRELEVEMENT", "IBAN": VALID_IBAN}
WITH_RUM = {**WITH_IBAN, "RUM": "TIL-2019-0042", "DATE_SIGNATURE_MANDAT": date(2019, 3, 15)}

RULES = [
    # (overrides of resident 1 on row 2, column, value shown, message)
    ({"NOM": None}, "NOM", "(vide)", "Valeur obligatoire."),
    ({"PRENOM": "   "}, "PRENOM", "(vide)", "Valeur obligatoire."),
    ({"SECTION": ""}, "SECTION", "(vide)", "Valeur obligatoire."),
    ({"NUMERO": None}, "NUMERO", "(vide)", "Valeur obligatoire."),
    ({"DATE_NAISSANCE": None}, "DATE_NAISSANCE", "(vide)", "Valeur obligatoire."),
    ({"DATE_ENTREE": None}, "DATE_ENTREE", "(vide)", "Valeur obligatoire."),
    ({"HEBERGEMENT": None}, "HEBERGEMENT", "(vide)", "Valeur obligatoire."),
    ({"DATE_NAISSANCE": "31/02/1938"}, "DATE_NAISSANCE", "31/02/1938", "Cette date n'existe pas."),
    ({"DATE_NAISSANCE": "12 avril 1938"}, "DATE_NAISSANCE", "12 avril 1938",
     "Date attendue au format JJ/MM/AAAA (ou AAAA-MM-JJ)."),
    ({"DATE_NAISSANCE": 14000}, "DATE_NAISSANCE", "14000",
     "Date attendue (cellule date Excel, ou texte JJ/MM/AAAA ou AAAA-MM-JJ) : la cellule contient un nombre."),
    ({"DATE_NAISSANCE": TOMORROW}, "DATE_NAISSANCE", TOMORROW, "La date est dans le futur."),
    ({"DATE_NAISSANCE": "01/01/1850"}, "DATE_NAISSANCE", "01/01/1850", "Date invraisemblable (avant 1900)."),
    ({"DATE_ENTREE": "2026-13-01"}, "DATE_ENTREE", "2026-13-01", "Cette date n'existe pas."),
    ({"DATE_ENTREE": "01/01/1930"}, "DATE_ENTREE", "01/01/1930",
     "La date d'entrée précède la date de naissance (12/04/1938)."),
    ({"GIR": 7}, "GIR", "7", "Valeur attendue entre 1 et 6."),
    ({"GIR": "3,5"}, "GIR", "3,5", "Nombre entier attendu."),
    ({"GIR": "GIR 3"}, "GIR", "GIR 3", "Nombre entier attendu."),
    ({"NIR": "1234"}, "NIR", "1234", "NIR invalide : 15 caractères avec la clé, clé vérifiée."),
    ({"NIR": nir(1)[:-2] + "00"}, "NIR", nir(1)[:-2] + "00",
     "NIR invalide : 15 caractères avec la clé, clé vérifiée."),
    ({"EMAIL": "helene@"}, "EMAIL", "helene@", "Adresse e-mail invalide."),
    ({"EMAIL": "hélène dupont@example.org"}, "EMAIL", "hélène dupont@example.org", "Adresse e-mail invalide."),
    ({"CIVILITE": "DR"}, "CIVILITE", "DR", "Civilité attendue : M ou MME."),
    ({"MODE_REGLEMENT": "CARTE"}, "MODE_REGLEMENT", "CARTE",
     "Mode de règlement attendu : CHEQUE, VIREMENT, PRELEVEMENT ou ESPECES."),
    ({"AIDE_SOCIALE": "peut-être"}, "AIDE_SOCIALE", "peut-être",
     "Valeur booléenne attendue : 0 ou 1 (ou OUI / NON)."),
    ({"REF_EXTERNE": "R" * 61}, "REF_EXTERNE", "R" * 61, "Trop long : 61 caractères pour 60 au plus."),
    ({"CODE_POSTAL": "690030000000"}, "CODE_POSTAL", "690030000000", "Trop long : 12 caractères pour 10 au plus."),
    ({"VILLE": "#N/A"}, "VILLE", "#N/A", "Valeur d'erreur Excel « #N/A » : corrigez la cellule."),
    ({"SECTION": "XXX-HP"}, "SECTION", "XXX-HP",
     "Section inconnue : aucune section de facturation n'a l'alias « XXX-HP »."),
    ({"HEBERGEMENT": "HT"}, "HEBERGEMENT", "HT",
     "Aucun forfait d'hébergement « HT » dans la section TIL-HP (forfaits : M60, STD, STD-TV, STD-TVL)."),
    ({"PAYEUR": "CD99"}, "PAYEUR", "CD99", "Payeur inconnu : aucun payeur n'a le code « CD99 »."),
    ({"DOMICILE_SECOURS": "99"}, "DOMICILE_SECOURS", "99",
     "Code de département invalide : 01 à 95, 2A, 2B ou 971 à 976."),
    ({"PAYEUR": "CD01", "AIDE_SOCIALE": 1}, "PAYEUR", "CD01",
     "Le payeur CD01 n'a pas de groupe ASH (aide sociale à l'hébergement) : AIDE_SOCIALE = 1 impossible avec ce "
     "payeur."),
    ({"PAYEUR": "", "AIDE_SOCIALE": "1"}, "AIDE_SOCIALE", "1",
     "AIDE_SOCIALE = 1 demande le PAYEUR (le département) qui prend l'hébergement en charge."),
    # IBAN: country, length, IBAN key, French RIB key
    ({**WITH_IBAN, "IBAN": "FR7630006000011234567890180"}, "IBAN", "FR7630006000011234567890180",
     "IBAN invalide : clé de contrôle de l'IBAN incorrecte (faute de frappe ?)."),
    ({**WITH_IBAN, "IBAN": BAD_RIB_KEY_IBAN}, "IBAN", BAD_RIB_KEY_IBAN, "IBAN invalide : clé RIB incorrecte."),
    ({**WITH_IBAN, "IBAN": "FR763000600001123456789018"}, "IBAN", "FR763000600001123456789018",
     "IBAN invalide : longueur incorrecte pour ce pays."),
    ({**WITH_IBAN, "IBAN": "XX7630006000011234567890189"}, "IBAN", "XX7630006000011234567890189",
     "IBAN invalide : code pays inconnu."),
    ({"MODE_REGLEMENT": "PRELEVEMENT"}, "IBAN", "(vide)",
     "IBAN obligatoire quand MODE_REGLEMENT vaut PRELEVEMENT (sur la ligne du résident ou d'un proche PAYEUR = 1)."),
    ({**WITH_IBAN, "BIC": "AGRI"}, "BIC", "AGRI", "BIC invalide : 8 ou 11 caractères (banque, pays, localité, agence)."),
    ({**WITH_RUM, "TITULAIRE_COMPTE": "T" * 71}, "TITULAIRE_COMPTE", "T" * 71,
     "Trop long : 71 caractères pour 70 au plus."),
    # RUM: characters, length, signature date mandatory and not in the future, IBAN needed
    ({**WITH_RUM, "RUM": "RUM_2026#1"}, "RUM", "RUM_2026#1",
     "RUM invalide : caractères autorisés A-Z a-z 0-9 / - ? : ( ) . , ' + et espace, sans « / » au début ou à la "
     "fin ni « // » (refusés ici : _#)."),
    ({**WITH_RUM, "RUM": "/TIL-2019"}, "RUM", "/TIL-2019",
     "RUM invalide : caractères autorisés A-Z a-z 0-9 / - ? : ( ) . , ' + et espace, sans « / » au début ou à la "
     "fin ni « // »."),
    ({**WITH_RUM, "RUM": "R" * 36}, "RUM", "R" * 36, "RUM trop longue : 36 caractères pour 35 au plus."),
    ({**WITH_RUM, "DATE_SIGNATURE_MANDAT": None}, "DATE_SIGNATURE_MANDAT", "(vide)",
     "Obligatoire quand une RUM est indiquée."),
    ({**WITH_RUM, "DATE_SIGNATURE_MANDAT": TOMORROW}, "DATE_SIGNATURE_MANDAT", TOMORROW, "La date est dans le futur."),
    ({"RUM": "TIL-2019-0042", "DATE_SIGNATURE_MANDAT": "15/03/2019"}, "RUM", "TIL-2019-0042",
     "Une RUM est indiquée sans IBAN : indiquez l'IBAN du mandat."),
    # DERNIER_PRELEVEMENT: a real date, not in the future, not before the signature
    ({**WITH_RUM, "DERNIER_PRELEVEMENT": "31/09/2025"}, "DERNIER_PRELEVEMENT", "31/09/2025",
     "Cette date n'existe pas."),
    ({**WITH_RUM, "DERNIER_PRELEVEMENT": "le 5 octobre"}, "DERNIER_PRELEVEMENT", "le 5 octobre",
     "Date attendue au format JJ/MM/AAAA (ou AAAA-MM-JJ)."),
    ({**WITH_RUM, "DERNIER_PRELEVEMENT": TOMORROW}, "DERNIER_PRELEVEMENT", TOMORROW, "La date est dans le futur."),
    ({**WITH_RUM, "DERNIER_PRELEVEMENT": "01/02/2019"}, "DERNIER_PRELEVEMENT", "01/02/2019",
     "Le dernier prélèvement ne peut pas précéder la signature du mandat (15/03/2019)."),
]


@pytest.mark.parametrize("overrides,column,value,message", RULES,
                         ids=[f"{r[1]}-{i}" for i, r in enumerate(RULES)])
def test_each_rule_reports_its_line_and_writes_nothing(demo, files, overrides, column, value, message):
    tomorrow = timezone.localdate() + timedelta(days=1)
    overrides = {k: (tomorrow if v == TOMORROW else v) for k, v in overrides.items()}
    value = tomorrow.strftime("%d/%m/%Y") if value == TOMORROW else value
    residents = files.residents([resident_row(1, **overrides), resident_row(2)])
    before = counts()
    code, out, err = run(residents)
    assert code == 1
    assert line(2, column, value, message) in err.splitlines()
    assert "rien n'a été importé" in err
    assert counts() == before
    assert not ImportRun.objects.exists()


def test_every_error_of_the_file_is_reported_not_only_the_first(demo, files):
    residents = files.residents([resident_row(1, NIR="1234", EMAIL="x@"), resident_row(2, GIR=9),
                                 resident_row(3), resident_row(4, SECTION="NOPE")])
    code, out, err = run(residents)
    assert code == 1
    assert "4 erreur(s)" in err
    for expected in (line(2, "NIR", "1234", "NIR invalide : 15 caractères avec la clé, clé vérifiée."),
                     line(2, "EMAIL", "x@", "Adresse e-mail invalide."),
                     line(3, "GIR", "9", "Valeur attendue entre 1 et 6."),
                     line(5, "SECTION", "NOPE", "Section inconnue : aucune section de facturation n'a l'alias "
                                                "« NOPE ».")):
        assert expected in err


def test_numero_unique_in_the_file(demo, files):
    residents = files.residents([resident_row(1), resident_row(2, NUMERO="1")])
    code, _out, err = run(residents)
    assert code == 1
    assert line(3, "NUMERO", "1", "NUMERO en double : déjà utilisé ligne 2.") in err


def test_external_ref_unique_in_the_file_and_in_the_association(demo, files):
    ResidentFactory(organisation=demo["organisation"], external_ref="EXT-0005")
    ResidentFactory(external_ref="EXT-0006")  # another association: no clash
    residents = files.residents([resident_row(1), resident_row(2, REF_EXTERNE="EXT-0001"), resident_row(5),
                                 resident_row(6)])
    before = counts()
    code, _out, err = run(residents)
    assert code == 1
    assert line(3, "REF_EXTERNE", "EXT-0001", "REF_EXTERNE en double : déjà utilisée ligne 2.") in err
    assert line(4, "REF_EXTERNE", "EXT-0005", "Un résident de l'association a déjà cette référence externe : "
                                              "l'import ne crée que de nouveaux résidents.") in err
    assert "EXT-0006" not in err
    assert counts() == before


def test_rum_unique_for_the_creditor_in_the_files_and_the_database(demo, files):
    existing = ResidentFactory(organisation=demo["organisation"])
    Mandate.objects.create(establishment=demo["establishments"]["TIL"], resident=existing, rum="TIL-OLD-1",
                           iban=VALID_IBAN, account_holder="X", signature_date=date(2020, 1, 1), status="active")
    residents = files.residents([
        resident_row(1, **{**WITH_RUM, "RUM": "R-1"}),
        resident_row(2, **{**WITH_RUM, "RUM": "r-1"}),  # same RUM, other case
        resident_row(3, **{**WITH_RUM, "RUM": "TIL-OLD-1"}),
        resident_row(4, **{**WITH_RUM, "RUM": "R-1"}, SECTION="VER-HP"),  # another creditor: allowed
    ])
    relatives = files.relatives([relative_row(1, PAYEUR=1, IBAN=VALID_IBAN, RUM="R-1",
                                              DATE_SIGNATURE_MANDAT="01/02/2020")])
    code, _out, err = run(residents, "--relatives", relatives)
    assert code == 1
    assert line(3, "RUM", "r-1", "RUM en double pour le même créancier (déjà en residents.xlsx ligne 2).") in err
    assert line(4, "RUM", "TIL-OLD-1", "Cette RUM est déjà celle d'un mandat de l'établissement créancier.") in err
    assert line(2, "RUM", "R-1", "RUM en double pour le même créancier (déjà en residents.xlsx ligne 2).",
                file="proches.xlsx", sheet="Proches") in err
    assert "› 5 › RUM" not in err
    assert Mandate.objects.count() == 1


def test_section_must_have_a_generated_calendar(demo, files):
    for calendar in demo["sections"]["TIL-HP"].calendars.all():
        calendar.sections.remove(demo["sections"]["TIL-HP"])
    code, _out, err = run(files.residents([resident_row(1), resident_row(2)]))
    assert code == 1
    message = ("La section « TIL-HP » n'a pas de calendrier généré (prérequis de l'import : forfait, payeurs et "
               "calendrier).")
    assert line(2, "SECTION", "TIL-HP", message) in err
    assert err.count(message) == 1  # once per section, not once per row


def test_section_must_be_managed_by_the_user(demo, files, manager):
    residents = files.residents([resident_row(1), resident_row(2, SECTION="VER-HP"), resident_row(3, SECTION="TIL-HT",
                                                                                                  HEBERGEMENT="HT")])
    plan = service.residents_validate(residents=service.ImportFile(residents, "residents.xlsx"), user=manager)
    lines = [i.as_line() for i in plan.report.errors]
    assert lines == [line(3, "SECTION", "VER-HP", "Vous n'êtes pas responsable de la section « VER-HP » : import "
                                                  "impossible dans cette section.")]
    clerk = demo["users"]["tilleuls"]  # clerk (facturation) of TIL-HP: not a manager
    plan = service.residents_validate(residents=service.ImportFile(residents, "residents.xlsx"), user=clerk)
    assert {i.value for i in plan.report.errors} == {"TIL-HP", "VER-HP", "TIL-HT"}


# ------------------------------------------------------------------------------------------ relatives
def test_relatives_point_to_a_resident_of_the_file(demo, files):
    residents = files.residents([resident_row(1)])
    relatives = files.relatives([relative_row(1), relative_row(9, DESTINATAIRE_FACTURES=0)])
    code, _out, err = run(residents, "--relatives", relatives)
    assert code == 1
    assert line(3, "NUMERO", "9", "Aucun résident n'a ce NUMERO dans le fichier des résidents.", file="proches.xlsx",
                sheet="Proches") in err
    assert not Relative.objects.exists() and not Resident.objects.exists()


def test_at_most_one_invoice_recipient_per_resident(demo, files):
    residents = files.residents([resident_row(1), resident_row(2)])
    relatives = files.relatives([relative_row(1), relative_row(2), relative_row(1, PRENOM="Paul")])
    code, _out, err = run(residents, "--relatives", relatives)
    assert code == 1
    assert line(4, "DESTINATAIRE_FACTURES", "1", "Le résident 1 a déjà un proche destinataire des factures (ligne 2) : "
                "un seul proche peut l'être.", file="proches.xlsx", sheet="Proches") in err
    assert "› 3 › DESTINATAIRE_FACTURES" not in err


@pytest.mark.parametrize("overrides,column,value,message", [
    ({"NOM": None}, "NOM", "(vide)", "Valeur obligatoire."),
    ({"EMAIL": "etienne@@example.org"}, "EMAIL", "etienne@@example.org", "Adresse e-mail invalide."),
    ({"TUTEUR": 2}, "TUTEUR", "2", "Valeur booléenne attendue : 0 ou 1 (ou OUI / NON)."),
    ({"IBAN": BAD_RIB_KEY_IBAN, "PAYEUR": 1}, "IBAN", BAD_RIB_KEY_IBAN, "IBAN invalide : clé RIB incorrecte."),
    ({"IBAN": VALID_IBAN, "RUM": "P-1"}, "DATE_SIGNATURE_MANDAT", "(vide)", "Obligatoire quand une RUM est indiquée."),
])
def test_relative_rules(demo, files, overrides, column, value, message):
    code, _out, err = run(files.residents([resident_row(1)]), "--relatives", files.relatives([relative_row(1,
                                                                                                          **overrides)]))
    assert code == 1
    assert line(2, column, value, message, file="proches.xlsx", sheet="Proches") in err
    assert not Resident.objects.exists()


def test_direct_debit_needs_an_iban_of_a_paying_relative_when_none_on_the_resident(demo, files):
    residents = files.residents([resident_row(1, MODE_REGLEMENT="PRELEVEMENT")])
    not_payer = files.relatives([relative_row(1, IBAN=VALID_IBAN)], name="p1.xlsx")
    code, out, err = run(residents, "--relatives", not_payer)
    assert code == 1
    assert line(2, "IBAN", "(vide)", "IBAN obligatoire quand MODE_REGLEMENT vaut PRELEVEMENT (sur la ligne du résident "
                "ou d'un proche PAYEUR = 1).") in err
    assert "Avertissement : p1.xlsx › Proches › 2 › IBAN" in out
    payer = files.relatives([relative_row(1, IBAN=VALID_IBAN, PAYEUR=1)], name="p2.xlsx")
    code, _out, err = run(residents, "--relatives", payer)
    assert code == 0, err
    assert Mandate.objects.get().relative.is_payer


def test_unused_iban_and_unknown_columns_are_warnings(demo, files):
    headers = RESIDENT_HEADERS + ["COMMENTAIRE"]
    residents = files.residents([{**resident_row(1, IBAN=VALID_IBAN, MODE_REGLEMENT="VIREMENT"),
                                  "COMMENTAIRE": "à voir"}], headers=headers)
    code, out, err = run(residents)
    assert code == 0, err
    assert ("Avertissement : residents.xlsx › Résidents › 1 › COMMENTAIRE › COMMENTAIRE › Colonne inconnue en AD, "
            "ignorée.") in out
    assert ("Avertissement : " + line(2, "IBAN", VALID_IBAN, "IBAN non utilisé : ni RUM ni mode de règlement "
                                      "PRELEVEMENT, aucun mandat n'est créé.")) in out
    assert Resident.objects.count() == 1 and not Mandate.objects.exists()


# -------------------------------------------------------------------------------------- exit codes
def test_exit_codes_and_usage(demo, files, tmp_path):
    assert run(files.residents([resident_row(1)]))[0] == 0
    code, _out, err = run(files.residents([resident_row(2, NOM=None)], name="bad.xlsx"))
    assert code == 1 and "1 erreur(s)" in err
    code, _out, err = run()
    assert code == 2 and "Indiquez le fichier des résidents" in err
    code, _out, err = run(tmp_path / "absent.xlsx")
    assert code == 1 and "absent.xlsx › — › — › — › (vide) › Fichier introuvable." in err


def test_command_line_exit_status_in_a_real_process(tmp_path):
    """The shell sees status 1 and the French report on stderr, no traceback."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "SEJOUR_VAR_DIR": str(tmp_path / "var"), "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3"}
    (tmp_path / "var").mkdir()
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], check=True, cwd=root, env=env)
    bad = write_xlsx(tmp_path / "bad.xlsx", [["1", "TIL-HP"]], ["NUMERO", "SECTION"])
    result = subprocess.run([sys.executable, "manage.py", "import_residents", str(bad), "--dry-run"],
                            capture_output=True, text=True, cwd=root, env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert ("bad.xlsx › Résidents › 1 › NOM › (vide) › Colonne obligatoire NOM absente de la ligne d'en-têtes."
            in result.stderr)
    assert "Section inconnue" in result.stderr  # empty database: no section at all
    empty = tmp_path / "empty.xlsx"
    empty.write_bytes(b"")
    result = subprocess.run([sys.executable, "manage.py", "import_residents", str(empty)],
                            capture_output=True, text=True, cwd=root, env=env)
    assert result.returncode == 1 and "empty.xlsx › — › — › — › (vide) › Le fichier est vide." in result.stderr


def test_database_refusal_at_write_time_rolls_everything_back(demo, files, monkeypatch):
    """A resident created by someone else between the checks and the writes: the unique constraint
    refuses it, the whole transaction is rolled back and the report says so in French."""
    original = service.Lookups.__init__

    def blind(self, **kwargs):
        original(self, **kwargs)
        self.refs = set()

    monkeypatch.setattr(service.Lookups, "__init__", blind)
    ResidentFactory(organisation=demo["organisation"], external_ref="EXT-0002")
    before = counts()
    code, _out, err = run(files.residents([resident_row(1), resident_row(2)]),
                          "--relatives", files.relatives([relative_row(1)]))
    assert code == 1
    assert "residents.xlsx › — › — › — › (vide) › Import annulé, rien n'a été écrit : la base a refusé les données" in err
    assert "Traceback" not in err
    assert counts() == before


# ------------------------------------------------------------------------------------- robustness
def _file_error(path: Path, message: str):
    code, _out, err = run(path)
    assert code == 1
    assert f"{path.name} › — › — › — › (vide) › {message}" in err.splitlines(), err
    assert "Traceback" not in err
    assert counts()["Resident"] == 0


@pytest.mark.parametrize("name,content,message", [
    ("vide.xlsx", b"", "Le fichier est vide."),
    ("bruit.xlsx", bytes(range(256)) * 8, "Ce fichier n'est pas un classeur Excel (.xlsx) lisible."),
    ("export.xlsx", "NUMERO;SECTION;NOM;PRENOM\n1;TIL-HP;Müller;Hélène\n".encode("cp1252"),
     "Ce fichier est un fichier texte (CSV), pas un classeur Excel (.xlsx) : ouvrez-le dans Excel et enregistrez-le "
     "au format « Classeur Excel (.xlsx) »."),
    ("notes.xlsx", "Résidents à importer\n".encode(), "Ce fichier est un fichier texte, pas un classeur Excel (.xlsx)."),
    ("scan.xlsx", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "Ce fichier est un PDF, pas un classeur Excel (.xlsx)."),
    ("protege.xlsx", OLE2_MAGIC + b"\x00" * 600 + ENCRYPTION_MARKER + b"\x00" * 600,
     "Le classeur est protégé par un mot de passe : enregistrez-le sans mot de passe (Fichier › Informations › "
     "Protéger le classeur) puis importez-le à nouveau."),
    ("ancien.xlsx", OLE2_MAGIC + b"\x00" * 2000,
     "Ce fichier est au format Excel 97-2003 (.xls) : enregistrez-le au format « Classeur Excel (.xlsx) » puis "
     "importez-le à nouveau."),
])
def test_unusable_files_get_a_french_message(demo, files, name, content, message):
    _file_error(files.raw(name, content), message)


def test_zip_that_is_not_a_workbook(demo, files):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("lisezmoi.txt", "bonjour")
    _file_error(files.raw("archive.xlsx", buffer.getvalue()),
                "Ce fichier est une archive ZIP mais pas un classeur Excel (.xlsx).")


def test_damaged_and_truncated_workbooks(demo, files):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types")
        archive.writestr("xl/workbook.xml", "<<< pas du XML")
    _file_error(files.raw("abime.xlsx", buffer.getvalue()),
                "Le classeur est illisible (fichier endommagé ou format non pris en charge) : ouvrez-le dans Excel "
                "et enregistrez-le à nouveau au format .xlsx.")
    good = files.residents([resident_row(1)]).read_bytes()
    _file_error(files.raw("tronque.xlsx", good[: len(good) // 2]),
                "Le fichier est endommagé ou n'est pas un classeur Excel (.xlsx).")


def test_file_over_20_mb(demo, tmp_path):
    big = tmp_path / "gros.xlsx"
    with open(big, "wb") as handle:
        handle.write(b"PK\x03\x04")
        handle.truncate(21 * 1024 * 1024)  # sparse: instant
    _file_error(big, "Le fichier fait 21,0 Mo : 20 Mo au plus sont acceptés. Découpez-le en plusieurs fichiers.")


def test_empty_sheet_and_headers_only(demo, files):
    _file_error(write_xlsx(files.residents([]).parent / "rien.xlsx", []),
                "La ligne 1 de la feuille « Résidents » est vide : elle doit contenir les en-têtes de colonnes en "
                "majuscules (NUMERO, SECTION, REF_EXTERNE, CIVILITE…).")
    code, _out, err = run(files.residents([]))
    assert code == 1
    assert "residents.xlsx › Résidents › — › — › (vide) › Aucun résident dans le fichier (seulement la ligne " \
           "d'en-têtes)." in err


def test_header_row_missing(demo, files, tmp_path):
    row = resident_row(1)
    no_header = write_xlsx(tmp_path / "sans_entete.xlsx", [[row[h] for h in RESIDENT_HEADERS]])
    _file_error(no_header, "La ligne 1 de la feuille « Résidents » ne contient aucun en-tête attendu : la première "
                           "ligne doit contenir les en-têtes de colonnes en majuscules (NUMERO, SECTION, REF_EXTERNE, "
                           "CIVILITE…).")
    titled = write_xlsx(tmp_path / "titre.xlsx", [row], RESIDENT_HEADERS,
                        before=lambda ws: (ws.append(["Résidents à importer — novembre"]), ws.append([])))
    _file_error(titled, "Les en-têtes sont en ligne 3 de la feuille « Résidents » : ils doivent être en ligne 1 "
                        "(supprimez les lignes au-dessus).")


def test_misspelt_and_missing_headers(demo, files):
    headers = [("PRENON" if h == "PRENOM" else h) for h in RESIDENT_HEADERS if h != "DATE_ENTREE"]
    residents = files.residents([{("PRENON" if k == "PRENOM" else k): v for k, v in resident_row(1).items()}],
                                headers=headers)
    code, out, err = run(residents)
    assert code == 1
    assert line(1, "PRENOM", "(vide)", "Colonne obligatoire PRENOM absente de la ligne d'en-têtes (en-tête « PRENON » "
                                       "mal orthographié ?).") in err
    assert line(1, "DATE_ENTREE", "(vide)", "Colonne obligatoire DATE_ENTREE absente de la ligne d'en-têtes.") in err
    assert "Avertissement : " + line(1, "PRENON", "PRENON", "Colonne inconnue en G, ignorée (vouliez-vous écrire "
                                                            "PRENOM ?).") in out
    assert "Valeur obligatoire" not in err  # no noise on every row for a missing column


def test_duplicate_headers(demo, files):
    headers = RESIDENT_HEADERS + ["NOM", "#N/A"]
    residents = files.residents([resident_row(1)], headers=headers)
    code, out, err = run(residents)
    assert code == 1
    assert line(1, "NOM", "NOM", "En-tête en double : la colonne NOM apparaît en E et en AD.") in err
    assert "Avertissement : " + line(1, "#N/A", "#N/A", "Colonne inconnue en AE, ignorée.") in out


def test_headers_in_any_order_case_and_accents(demo, files):
    headers = list(reversed(RESIDENT_HEADERS))
    row = resident_row(1)
    pretty = {"PRENOM": "Prénom", "NOM": " nom ", "DATE_NAISSANCE": "Date naissance *", "REF_EXTERNE": "Réf_externe"}
    residents = write_xlsx(files.residents([]).parent / "libre.xlsx", [[row[h] for h in headers]],
                           [pretty.get(h, h) for h in headers])
    code, out, err = run(residents)
    assert code == 0, err
    assert "Avertissement" not in out
    assert Resident.objects.get().first_name == "Hélène"


def test_text_dates_numbers_as_text_spaces_and_accents(demo, files):
    residents = files.residents([
        resident_row(1, DATE_NAISSANCE="12/04/1938", DATE_ENTREE=" 2026-11-02 ", GIR=" 3 ", NIR=int(nir(1)),
                     CODE_POSTAL=1000, TELEPHONE=478000000, NUMERO=1, SECTION="  til-hp ", HEBERGEMENT=" std",
                     NOM="  Müller-Élodie d'Arçy  ", PRENOM="\u0048e\u0301le\u0300ne", AIDE_SOCIALE="non",
                     CIVILITE="Madame", MODE_REGLEMENT=" virement ", PAYEUR="cd69"),
        resident_row(2, DATE_NAISSANCE="1940-01-31", DATE_ENTREE="2/11/2026", GIR=4.0, NIR=f"  {nir(2)[:1]} "
                     f"{nir(2)[1:3]} {nir(2)[3:5]} {nir(2)[5:7]} {nir(2)[7:10]} {nir(2)[10:13]} {nir(2)[13:]} "),
    ], title="Résidents été")
    code, out, err = run(residents)
    assert code == 0, err
    first = Resident.objects.get(external_ref="EXT-0001")
    assert (first.last_name, first.first_name) == ("Müller-Élodie d'Arçy", "Hélène")
    assert first.first_name == "H\u00e9l\u00e8ne"  # composed (NFC)
    assert first.birth_date == date(1938, 4, 12) and first.nir == nir(1)
    assert (first.postal_code, first.phone, first.civility, first.payment_mode) == ("01000", "0478000000", "MME",
                                                                                    "transfer")
    assert first.gir_assessments.get().gir == 3
    stay = first.stays.get()
    assert stay.entry_date == date(2026, 11, 2) and stay.section.alias == "TIL-HP"
    second = Resident.objects.get(external_ref="EXT-0002")
    assert second.nir == nir(2) and second.stays.get().entry_date == date(2026, 11, 2)


def test_formula_without_cached_value_names_the_cell(demo, files):
    from imports.services.xlsx import column_letter

    letter = column_letter(RESIDENT_HEADERS.index("GIR"))
    residents = files.residents([resident_row(1, GIR="=1+2"), resident_row(2)])
    code, _out, err = run(residents)
    assert code == 1
    assert line(2, "GIR", "=1+2", f"Formule sans valeur calculée en {letter}2 : ouvrez le fichier dans Excel, "
                                  "enregistrez-le, ou remplacez la formule par sa valeur.") in err


def test_formula_with_its_value_saved_by_excel_is_accepted(demo, files, tmp_path):
    path = files.residents([resident_row(1, GIR="=1+2"), resident_row(2, NOM='=UPPER("martin")')])
    data = io.BytesIO()
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(data, "w") as dst:
        for item in src.infolist():
            content = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                content = content.replace(b"<f>1+2</f><v></v>", b"<f>1+2</f><v>3</v>")
                content = content.replace(b"<f>1+2</f><v />", b"<f>1+2</f><v>3</v>")
                for empty in (b"<v />", b"<v></v>"):  # openpyxl writes either, with or without lxml
                    content = content.replace(b'<f>UPPER("martin")</f>' + empty, b'<f>UPPER("martin")</f><v>MARTIN</v>')
                content = content.replace(b'<c r="E3">', b'<c r="E3" t="str">')
            dst.writestr(item, content)
    saved = files.raw("calcule.xlsx", data.getvalue())
    code, _out, err = run(saved)
    assert code == 0, err
    assert Resident.objects.get(external_ref="EXT-0001").gir_assessments.get().gir == 3
    assert Resident.objects.get(external_ref="EXT-0002").last_name == "MARTIN"


def test_merged_cells_are_reported(demo, files):
    residents = files.residents([resident_row(1), resident_row(2, SECTION=None), resident_row(3)],
                                after=lambda ws: ws.merge_cells("B2:B3"))
    code, _out, err = run(residents)
    assert code == 1
    assert line(2, "—", "(vide)", "Cellules fusionnées (B2:B3) : défusionnez-les et recopiez la valeur dans chaque "
                                  "cellule.") in err
    assert not Resident.objects.exists()


def test_empty_rows_are_ignored_and_rows_keep_their_excel_number(demo, files):
    residents = files.residents([resident_row(1), {}, {}, resident_row(2, NIR="12")])
    code, _out, err = run(residents)
    assert code == 1
    assert line(5, "NIR", "12", "NIR invalide : 15 caractères avec la clé, clé vérifiée.") in err


def test_30000_rows_stream_with_bounded_memory(demo, tmp_path):
    """A 30 000-row file is read in openpyxl's read-only mode: it validates (dry run) with memory well below
    what a loaded workbook would take, and reports errors with their row numbers."""
    import tracemalloc

    from openpyxl import Workbook

    headers = ["NUMERO", "SECTION", "NOM", "PRENOM", "DATE_NAISSANCE", "DATE_ENTREE", "HEBERGEMENT", "GIR"]
    book = Workbook(write_only=True)
    sheet = book.create_sheet("Résidents")
    sheet.append(headers)
    for n in range(1, 30_001):
        sheet.append([n, "TIL-HP", f"Nom{n}", "Anne", date(1940, 1, 1 + n % 28), "01/11/2026", "STD",
                      7 if n == 29_999 else 1 + n % 6])
    path = tmp_path / "gros_fichier.xlsx"
    book.save(path)
    tracemalloc.start()
    plan = service.residents_validate(residents=service.ImportFile(path, path.name))
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert [i.as_line() for i in plan.report.errors] == [
        "gros_fichier.xlsx › Résidents › 30000 › GIR › 7 › Valeur attendue entre 1 et 6."]
    assert len(plan.residents) == 30_000
    assert peak < 80 * 1024 * 1024, f"peak {peak / 1e6:.0f} MB"  # ~40 MB measured
    assert not Resident.objects.exists()


# ------------------------------------------------------------------------------------ converters
def test_converters():
    assert to_text(" \u00a0Müller \u00a0") == "Müller"
    assert to_text(12.0) == "12" and to_text(3.25) == "3.25" and to_text(None) == ""
    assert to_bool("OUI") is True and to_bool("non") is False and to_bool(None) is False and to_bool(1.0) is True
    assert to_date("2026-11-02") == to_date("02/11/2026") == to_date("2.11.2026") == date(2026, 11, 2)
    assert to_int("4") == 4 and to_int(4.0) == 4 and to_int(None) is None
    with pytest.raises(CellError):
        to_date("11/2026")
    with pytest.raises(CellError):
        to_bool("2")


# ------------------------------------------------------------------------------------ templates
def test_template_command_writes_importable_workbooks(demo, tmp_path):
    from openpyxl import load_workbook

    code, out, err = run("--template", tmp_path / "modeles", "--section", "TIL-HP")
    assert code == 0, err
    residents, relatives = tmp_path / "modeles" / "modele_residents.xlsx", tmp_path / "modeles" / "modele_proches.xlsx"
    assert f"Modèle écrit : {residents}" in out
    book = load_workbook(residents)
    data, notes = book.worksheets
    assert [c.value for c in data[1]] == RESIDENT_HEADERS
    assert data["B2"].value == "TIL-HP" and data["U2"].value == "CD69"
    assert data["T2"].value == "69"  # DOMICILE_SECOURS: the section's establishment's département
    assert notes.title == "Notes"
    texts = [r for r in notes.iter_rows(values_only=True)]
    assert ("NUMERO *", "Oui") == texts[[i for i, r in enumerate(texts) if r[0] == "NUMERO *"][0]][:2]
    assert any(r[0] == "IBAN" and "clé RIB" in r[2] for r in texts)
    assert [c.value for c in load_workbook(relatives).worksheets[0][1]] == RELATIVE_HEADERS
    # The example rows import as they are.
    code, out, err = run(residents, "--relatives", relatives)
    assert code == 0, err
    resident = Resident.objects.get()
    assert resident.last_name == "Müller-Élodie d'Arçy" and resident.relatives.get().first_name == "Étienne"
    assert Mandate.objects.get().status == "active"


def test_template_without_section_and_unknown_section(demo, tmp_path):
    assert run("--template", tmp_path)[0] == 0
    assert (tmp_path / "modele_residents.xlsx").exists() and (tmp_path / "modele_proches.xlsx").exists()
    code, _out, err = run("--template", tmp_path, "--section", "NOPE")
    assert code == 2 and "Section inconnue : NOPE." in err


# --------------------------------------------------------------------------------------- browser
def _upload(client, url, residents: Path, relatives: Path | None = None):
    data = {"residents": open(residents, "rb")}
    if relatives:
        data["relatives"] = open(relatives, "rb")
    try:
        return client.post(url, data)
    finally:
        for f in data.values():
            f.close()


def test_browser_upload_report_confirm(client, demo, files, manager, eager_celery, django_capture_on_commit_callbacks,
                                       settings):
    client.force_login(manager)
    url = reverse("imports:residents", kwargs={"alias": "TIL-HP"})
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert reverse("imports:residents-template", kwargs={"alias": "TIL-HP", "which": "residents"}) in html
    assert 'enctype="multipart/form-data"' in html

    residents = files.residents([resident_row(1, MODE_REGLEMENT="PRELEVEMENT", IBAN=VALID_IBAN),
                                 resident_row(2, SECTION="TIL-HT", HEBERGEMENT="HT")], name="résidents été.xlsx")
    relatives = files.relatives([relative_row(1), relative_row(2)])
    with django_capture_on_commit_callbacks(execute=True):
        response = _upload(client, url, residents, relatives)
    run_record = ImportRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("imports:residents-run", kwargs={"alias": "TIL-HP", "pk": run_record.pk})
    run_record.refresh_from_db()
    assert run_record.status == "validated" and run_record.created_by == manager and run_record.dry_run
    assert run_record.job.status == "succeeded" and run_record.job.kind == "imports.residents"
    assert [f["name"] for f in run_record.files] == ["résidents été.xlsx", "proches.xlsx"]
    import hashlib
    assert run_record.files[0]["sha256"] == hashlib.sha256(residents.read_bytes()).hexdigest()
    for stored in run_record.stored_files:
        assert (Path(settings.MEDIA_ROOT) / stored).is_file() and stored.startswith(f"imports/{run_record.pk}/")
    assert not Resident.objects.exists()  # validation writes nothing

    page = client.get(response["Location"]).content.decode()
    assert "Les fichiers sont valides" in page
    assert '<table class="import-report">' in page  # the BIC warning
    assert "BIC non renseigné" in page and "résidents été.xlsx" in page
    assert 'id="confirm-import" ' in page and 'id="confirm-import" disabled' not in page
    assert "MÜLLER-ÉLODIE D&#x27;ARÇY Hélène" in page  # preview with ages
    assert "<td class=\"num\">88</td>" in page

    confirm = reverse("imports:residents-confirm", kwargs={"alias": "TIL-HP", "pk": run_record.pk})
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(confirm)
    assert response.status_code == 302
    run_record.refresh_from_db()
    assert run_record.status == "imported" and not run_record.dry_run
    assert run_record.summary["residents"] == 2 and run_record.summary["confirmed_by"] == manager.username
    assert Resident.objects.count() == 2 and Relative.objects.count() == 2 and Mandate.objects.count() == 1
    page = client.get(response["Location"]).content.decode()
    assert "2 résidents créés." in page and "confirm-import" not in page
    # Confirming twice does nothing more.
    with django_capture_on_commit_callbacks(execute=True):
        client.post(confirm)
    assert Resident.objects.count() == 2
    listing = client.get(url).content.decode()
    assert "Importé" in listing and run_record.files[0]["sha256"][:12] in listing


def test_browser_errors_disable_confirm_and_nothing_is_written(client, demo, files, manager, eager_celery,
                                                              django_capture_on_commit_callbacks):
    client.force_login(manager)
    url = reverse("imports:residents", kwargs={"alias": "TIL-HP"})
    residents = files.residents([resident_row(1), resident_row(2, SECTION="VER-HP"),
                                 resident_row(3, IBAN=BAD_RIB_KEY_IBAN, MODE_REGLEMENT="PRELEVEMENT")])
    with django_capture_on_commit_callbacks(execute=True):
        response = _upload(client, url, residents)
    run_record = ImportRun.objects.get()
    assert run_record.status == "rejected"
    assert {(i["row"], i["column"], i["value"]) for i in run_record.report if i["level"] == "error"} == {
        (3, "SECTION", "VER-HP"), (4, "IBAN", BAD_RIB_KEY_IBAN)}
    page = client.get(response["Location"]).content.decode()
    assert "Vous n&#x27;êtes pas responsable de la section « VER-HP »" in page
    assert "IBAN invalide : clé RIB incorrecte." in page
    assert 'id="confirm-import" disabled' in page
    assert "2 erreurs : rien n'a été importé." in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("imports:residents-confirm", kwargs={"alias": "TIL-HP", "pk": run_record.pk}))
    assert response.status_code == 302
    assert not Resident.objects.exists()
    run_record.refresh_from_db()
    assert run_record.status == "rejected"


def test_browser_unreadable_file_is_a_rejected_run(client, demo, files, manager, eager_celery,
                                                  django_capture_on_commit_callbacks):
    client.force_login(manager)
    csv = files.raw("export.xlsx", b"NUMERO;SECTION\n1;TIL-HP\n")
    with django_capture_on_commit_callbacks(execute=True):
        response = _upload(client, reverse("imports:residents", kwargs={"alias": "TIL-HP"}), csv)
    page = client.get(response["Location"]).content.decode()
    assert "Ce fichier est un fichier texte (CSV)" in page
    assert ImportRun.objects.get().status == "rejected"


def test_browser_progress_fragment_polls_while_the_job_runs(client, demo, files, manager, monkeypatch):
    from core.tasks import run_job

    sent = []
    monkeypatch.setattr(run_job, "delay", lambda job_id: sent.append(job_id))
    client.force_login(manager)
    with_callbacks = _upload(client, reverse("imports:residents", kwargs={"alias": "TIL-HP"}),
                             files.residents([resident_row(1)]))
    run_record = ImportRun.objects.get()
    fragment = client.get(reverse("imports:residents-run-status", kwargs={"alias": "TIL-HP", "pk": run_record.pk}),
                          HTTP_HX_REQUEST="true").content.decode()
    assert 'hx-trigger="every 1s"' in fragment and 'data-state="pending"' in fragment and "<html" not in fragment
    assert "confirm-import" not in fragment
    assert with_callbacks.status_code == 302
    # One line of text for the job: its message, or the count when it has none (not both).
    import re

    from core.models import Job

    Job.objects.filter(pk=Job.objects.latest("pk").pk).update(status="running", progress_current=12, progress_total=12,
                                          message="12 / 12 ligne(s) lues")
    fragment = client.get(reverse("imports:residents-run-status", kwargs={"alias": "TIL-HP", "pk": run_record.pk}),
                          HTTP_HX_REQUEST="true").content.decode()
    text = " ".join(re.sub(r"<[^>]+>", " ", fragment).split())
    assert text.count("12 / 12") == 1 and "En cours · 12 / 12 ligne(s) lues" in text


def test_browser_refusals(client, demo, files, manager):
    clerk = demo["users"]["tilleuls"]
    client.force_login(clerk)
    url = reverse("imports:residents", kwargs={"alias": "TIL-HP"})
    assert client.get(url).status_code == 403
    assert _upload(client, url, files.residents([resident_row(1)])).status_code == 403
    assert not ImportRun.objects.exists()
    client.force_login(manager)
    assert client.get(reverse("imports:residents", kwargs={"alias": "VER-AJ"})).status_code == 404  # no access
    assert client.get(reverse("imports:residents", kwargs={"alias": "VER-HP"})).status_code == 403  # reader
    other = ImportRun.objects.create(kind="residents", status="validated", section=demo["sections"]["TIL-HT"])
    assert client.get(reverse("imports:residents-run", kwargs={"alias": "TIL-HP", "pk": other.pk})).status_code == 404
    client.logout()
    assert client.get(url).status_code == 302  # login


def test_browser_rejects_oversized_upload_without_a_run(client, demo, manager, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(manager)
    big = SimpleUploadedFile("gros.xlsx", b"PK\x03\x04" + b"\x00" * (20 * 1024 * 1024 + 1))
    response = client.post(reverse("imports:residents", kwargs={"alias": "TIL-HP"}), {"residents": big})
    assert response.status_code == 200
    assert "20 Mo au plus" in response.content.decode()
    assert not ImportRun.objects.exists()


@pytest.mark.parametrize("which,header", [("residents", RESIDENT_HEADERS), ("proches", RELATIVE_HEADERS)])
def test_browser_template_download(client, demo, which, header):
    from openpyxl import load_workbook

    client.force_login(demo["users"]["direction"])  # reading the section is enough for a template
    response = client.get(reverse("imports:residents-template", kwargs={"alias": "VER-HP", "which": which}))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    assert f'filename="modele_{which}.xlsx"' in response["Content-Disposition"]
    book = load_workbook(io.BytesIO(response.content))
    assert [c.value for c in book.worksheets[0][1]] == header and book.worksheets[1].title == "Notes"
    if which == "residents":
        assert book.worksheets[0]["B2"].value == "VER-HP" and book.worksheets[0]["U2"].value == "CD57"
        assert book.worksheets[0]["T2"].value == "57"
    assert client.get(reverse("imports:residents-template", kwargs={"alias": "VER-HP", "which": "autre"})
                      ).status_code == 404


# -------------------------------------------------------------------------------- domicile de secours
def test_domicile_secours_column_and_its_default(demo, files):
    residents = files.residents([resident_row(1, DOMICILE_SECOURS="2a"), resident_row(2, DOMICILE_SECOURS=1),
                                 resident_row(3, DOMICILE_SECOURS="")])
    code, _out, err = run(residents)
    assert code == 0, err
    by_number = {r.external_ref: r.domicile_secours for r in Resident.objects.all()}
    establishment_dept = Stay.objects.get(resident__external_ref="EXT-0003").section.establishment.departement
    assert by_number == {"EXT-0001": "2A", "EXT-0002": "01", "EXT-0003": establishment_dept}


def test_at_most_one_paying_relative_per_resident(demo, files):
    residents = files.residents([resident_row(1)])
    relatives = files.relatives([relative_row(1, PAYEUR=1), relative_row(1, PRENOM="Paul", PAYEUR=1)])
    code, _out, err = run(residents, "--relatives", relatives)
    assert code == 1
    assert line(3, "PAYEUR", "1", "Le résident 1 a déjà un proche payeur (ligne 2) : un seul proche peut être "
                "payeur.", file="proches.xlsx", sheet="Proches") in err
    assert not Relative.objects.exists() and not Resident.objects.exists()


def test_taken_over_mandate_keeps_its_sequence(demo, files):
    """DERNIER_PRELEVEMENT with the RUM: RCUR and the last collection date kept; without it: FRST. Given
    without RUM: ignored with a warning naming the cell."""
    residents = files.residents([
        resident_row(1, **WITH_RUM, DERNIER_PRELEVEMENT="05/10/2025"),
        resident_row(2, **{**WITH_RUM, "RUM": "TIL-2019-0043"}),
        resident_row(3, **WITH_IBAN, DERNIER_PRELEVEMENT=date(2025, 10, 5)),
    ])
    code, out, err = run(residents)
    assert code == 0, err
    taken_over = Mandate.objects.get(rum="TIL-2019-0042")
    assert (taken_over.next_sequence_type, taken_over.last_collection_date) == ("RCUR", date(2025, 10, 5))
    first = Mandate.objects.get(rum="TIL-2019-0043")
    assert (first.next_sequence_type, first.last_collection_date) == ("FRST", None)
    generated = Mandate.objects.get(resident__external_ref="EXT-0003")
    assert (generated.status, generated.next_sequence_type, generated.last_collection_date) == ("pending", "FRST", None)
    assert line(4, "DERNIER_PRELEVEMENT", "05/10/2025", "Date du dernier prélèvement ignorée sans RUM : seul un "
                "mandat repris (avec sa RUM) garde sa séquence.") in (out + err)


def test_social_aid_with_a_payer_other_than_a_departement_gives_only_the_ash_rule(demo, files):
    """AIDE_SOCIALE = 1 with a non-département payer having an ASH group: no « everything » rule, only
    the accommodation taken in full by the ASH group (priority 20)."""
    from payers.models import Payer, PayerGroup

    mutual = Payer.objects.get(organisation=demo["organisation"], code="MUTSAN")
    ash = PayerGroup.objects.create(payer=mutual, code="ASH", label="Aide sociale")
    code, _out, err = run(files.residents([resident_row(1, PAYEUR="MUTSAN", AIDE_SOCIALE=1)]))
    assert code == 0, err
    rules = [(r.payer.code, r.group, r.scope, r.mode, r.priority, r.valid_from)
             for r in CoverageRule.objects.filter(stay__resident__external_ref="EXT-0001")]
    assert rules == [("MUTSAN", ash, "accommodation", "all", 20, date(2026, 11, 2))]


def test_generated_rum_avoids_the_rums_of_the_database_and_of_the_files(demo, files):
    """A pending mandate's RUM ``<ESTABLISHMENT>-<REF_EXTERNE>`` already taken (by a mandate of the
    establishment or a RUM of the file, any case) gets ``-2``, ``-3``…; the holder defaults to the
    resident."""
    existing = ResidentFactory(organisation=demo["organisation"])
    for rum in ("TIL-EXT-0001", "TIL-EXT-0001-2"):
        Mandate.objects.create(establishment=demo["establishments"]["TIL"], resident=existing, rum=rum,
                               iban=VALID_IBAN, account_holder="X", signature_date=date(2020, 1, 1), status="active")
    residents = files.residents([
        resident_row(1, **WITH_IBAN),
        resident_row(2, **WITH_IBAN),
        resident_row(3, **{**WITH_RUM, "RUM": "til-ext-0002"}),
    ])
    code, _out, err = run(residents)
    assert code == 0, err
    generated = {m.resident.external_ref: (m.rum, m.status, m.account_holder)
                 for m in Mandate.objects.filter(resident__external_ref__in=["EXT-0001", "EXT-0002"])}
    assert generated == {"EXT-0001": ("TIL-EXT-0001-3", "pending", "MÜLLER-ÉLODIE D'ARÇY Hélène"),
                         "EXT-0002": ("TIL-EXT-0002-2", "pending", "MÜLLER-ÉLODIE D'ARÇY Hélène")}
