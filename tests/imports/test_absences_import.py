"""Monthly absences import: file rules, correspondence table, replacement and joining across months,
drafts regenerated, the manage.py command and the browser views (formats.md, issue 4)."""
from __future__ import annotations

from datetime import date
from html import unescape
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from billing.models import Invoice, InvoiceLine, Package, StayPackage
from billing.services.generation import period_generate
from billing.services.periods import period_create
from imports.models import AbsenceCodeMapping, ImportRun
from imports.services import absences_import as svc
from imports.services.csvfiles import CsvFileError, decode, detect_delimiter
from residents.models import Absence, GirAssessment, Stay
from tests.factories import ResidentFactory, UserFactory

HEADER = ["ANNEE", "MOIS", "IDPERSONNE", "SECTION"] + [str(d) for d in range(1, 32)]
NOV = (2026, 11)


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------
def line(ref, codes=None, *, year=2026, month=11, alias="TIL-HP", ndays=31):
    """One file line; ``codes`` is {day: external code} or a string of day codes (space = present)."""
    if isinstance(codes, str):
        codes = {i + 1: c for i, c in enumerate(codes) if c != " "}
    codes = codes or {}
    return [str(year), str(month), ref, alias] + [codes.get(d, " ") for d in range(1, ndays + 1)]


def csv_bytes(rows, *, header=None, delimiter=";", encoding="utf-8", bom=False, newline="\r\n") -> bytes:
    lines = [delimiter.join(header or HEADER)] + [delimiter.join(r) if isinstance(r, list) else r for r in rows]
    text = newline.join(lines) + newline
    data = text.encode(encoding)
    return (b"\xef\xbb\xbf" + data) if bom else data


def mapping_bytes(rows, header="CODEMR;CODEEXT") -> bytes:
    return ("\r\n".join([header] + rows) + "\r\n").encode()


def validate(section, data, *, year=2026, month=11, mapping=None):
    return svc.absences_import_validate(section=section, year=year, month=month, data=data, name="absences.csv",
                                        mapping_data=mapping)


def apply(section, data, *, year=2026, month=11, mapping=None, user=None, regenerate="inline"):
    return svc.absences_import_apply(section=section, year=year, month=month, data=data, name="absences.csv",
                                     mapping_data=mapping, user=user, regenerate=regenerate)


def all_errors(validation) -> list[dict]:
    return [e for entry in validation.report for e in entry["errors"]]


def messages_of(validation) -> str:
    return "\n".join(e["message"] for e in all_errors(validation))


def spans(stay):
    return [(a.reason.code, a.first_day, a.last_day, a.source) for a in stay.absences.order_by("first_day")]


@pytest.fixture
def til(demo):
    return demo["sections"]["TIL-HP"]


@pytest.fixture
def make_stay(demo):
    """A resident with an external ref and a stay (with the standard package and a GIR) in a section."""

    def make(ref, *, alias="TIL-HP", entry=date(2026, 1, 1), end=None, last_name=None):
        section = demo["sections"][alias]
        resident = ResidentFactory(organisation=demo["organisation"], external_ref=ref,
                                   last_name=last_name or f"Nom-{ref}")
        stay = Stay.objects.create(resident=resident, section=section, entry_date=entry, end_date=end,
                                   end_reason="departure" if end else "")
        package = Package.objects.filter(section=section).order_by("code").first()
        StayPackage.objects.create(stay=stay, package=package, valid_from=entry)
        GirAssessment.objects.create(resident=resident, gir=2, valid_from=entry)
        return stay

    return make


def reason(stay, code):
    return stay.section.establishment.absence_reasons.get(code=code)


# ------------------------------------------------------------------------------------------------
# CSV reading: encodings, delimiters, empty lines, malformed files
# ------------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_demo_seed_saves_the_default_correspondence_table(demo):
    for establishment in demo["establishments"].values():
        table = {m.external_code: m.reason.code for m in AbsenceCodeMapping.objects.filter(establishment=establishment)}
        assert table == {"1": "C", "2": "H", "3": "P", "4": "S"}
    from demo.services.seed import demo_seed

    demo_seed(residents=0)  # idempotent
    assert AbsenceCodeMapping.objects.count() == 8


@pytest.mark.django_db
def test_a_valid_file_becomes_imported_absences(til, make_stay):
    stay = make_stay("EXT-1")
    run = apply(til, csv_bytes([line("EXT-1", {3: "2", 4: "2", 5: "2"})]))
    assert run.status == ImportRun.Status.IMPORTED
    absence = stay.absences.get()
    assert (absence.reason.code, absence.first_day, absence.last_day) == ("H", date(2026, 11, 3), date(2026, 11, 5))
    assert absence.source == Absence.Source.IMPORT and absence.import_month == date(2026, 11, 1)


@pytest.mark.django_db
@pytest.mark.parametrize("encoding,bom", [("utf-8", False), ("utf-8", True), ("cp1252", False)])
def test_encodings_utf8_with_and_without_bom_and_windows_1252(til, make_stay, encoding, bom):
    stay = make_stay("MÜLLER-ÉLODIE-D'ARÇY", last_name="Müller-Élodie d'Arçy")
    data = csv_bytes([line("MÜLLER-ÉLODIE-D'ARÇY", {1: "1"})], encoding=encoding, bom=bom)
    if encoding == "cp1252":
        with pytest.raises(UnicodeDecodeError):
            data.decode("utf-8")
    validation = validate(til, data)
    assert validation.ok, messages_of(validation)
    assert validation.file["encoding"] == {"utf-8": "UTF-8 (BOM)" if bom else "UTF-8", "cp1252": "Windows-1252"}[
        encoding]
    assert validation.rows[0]["resident"] == f"Müller-Élodie d'Arçy {stay.resident.first_name}"


@pytest.mark.django_db
@pytest.mark.parametrize("delimiter,name", [(";", "point-virgule"), (",", "virgule"), ("\t", "tabulation")])
def test_delimiters_are_detected(til, make_stay, delimiter, name):
    make_stay("EXT-1")
    validation = validate(til, csv_bytes([line("EXT-1", {2: "2"})], delimiter=delimiter))
    assert validation.ok, messages_of(validation)
    assert validation.file["delimiter"] == name
    assert validation.rows[0]["absences"][0]["first"] == "2026-11-02"


@pytest.mark.django_db
def test_empty_lines_are_ignored_and_rows_numbered_as_in_the_file(til, make_stay):
    make_stay("EXT-1")
    make_stay("EXT-2")
    data = csv_bytes(["", line("EXT-1", {1: "2"}), "   ", ";;;;", line("EXT-2", {1: "9"}), ""], newline="\n")
    validation = validate(til, b"\n" + data)
    assert len(validation.rows) == 2
    assert [r["row"] for r in validation.rows] == [4, 7]  # header on line 2, blank lines counted
    error = validation.rows[1]["errors"][0]
    assert (error["column"], error["value"]) == ("1", "9")


def test_decode_and_delimiter_helpers_give_french_messages():
    assert decode("é;à".encode("cp1252")) == ("é;à", "Windows-1252")
    assert decode(b"\xef\xbb\xbfa;b")[1] == "UTF-8 (BOM)"
    for data, expected in [(b"", "vide"), (b"  \r\n ", "vide"), (b"PK\x03\x04rest", "classeur Excel"),
                           (b"\xd0\xcf\x11\xe0rest", "XLS"), (b"\xff\xfea\x00", "UTF-16"),
                           (b"a;b\x00c", "binaires"), (b"caf\x81;x", "Encodage")]:
        with pytest.raises(CsvFileError, match=expected):
            decode(data)
    with pytest.raises(CsvFileError, match="Séparateur"):
        detect_delimiter("ANNEE MOIS")
    assert detect_delimiter("CODEMR CODEEXT", allow_space=True) == " "


@pytest.mark.django_db
@pytest.mark.parametrize("data,expected", [
    (b"", "Le fichier est vide."),
    (b"PK\x03\x04\x14\x00\x06\x00", "classeur Excel"),
    (b"ANNEE MOIS IDPERSONNE", "Séparateur de colonnes non reconnu"),
    ("ANNÉE;MOIS;IDPERSONNE;SECTION;1".encode(), "ANNEE"),
    (b"2026;11;EXT-1;TIL-HP;2\r\n", "En-tête manquant"),
    (";".join(HEADER).encode() + b"\r\n", "aucune ligne"),
])
def test_malformed_files_get_a_french_message_not_a_traceback(til, data, expected):
    validation = validate(til, data)
    assert not validation.ok
    assert expected in messages_of(validation)
    with pytest.raises(svc.AbsencesImportError):
        apply(til, data)
    assert not Absence.objects.exists()


@pytest.mark.django_db
def test_header_in_any_order_lower_case_and_duplicate_or_unknown_columns(til, make_stay):
    make_stay("EXT-1")
    header = ["idpersonne", "section", "annee", "mois"] + [f"{d:02d}" for d in range(1, 32)] + ["COMMENTAIRE"]
    row = ["EXT-1", "TIL-HP", "2026", "11", "2"] + [" "] * 30 + ["rien"]
    validation = validate(til, csv_bytes([row], header=header))
    assert validation.ok, messages_of(validation)
    assert "COMMENTAIRE" in validation.report[0]["warnings"][0]["message"]
    dup = validate(til, csv_bytes([line("EXT-1")], header=HEADER + ["MOIS"]))
    assert "La colonne « MOIS » figure deux fois" in messages_of(dup)
    missing = validate(til, csv_bytes([line("EXT-1")[:-5]], header=HEADER[:-5]))  # no columns 27 to 31
    assert "Colonne obligatoire « 27 » absente" in messages_of(missing)
    assert "« 31 »" not in messages_of(missing)  # checked only up to the month's last day (30 November)


@pytest.mark.django_db
def test_a_november_file_may_omit_column_31(til, make_stay):
    make_stay("EXT-1")
    validation = validate(til, csv_bytes([line("EXT-1", {30: "2"}, ndays=30)], header=HEADER[:-1]))
    assert validation.ok, messages_of(validation)


# ------------------------------------------------------------------------------------------------
# Line rules
# ------------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_year_month_and_section_must_be_those_imported(til, make_stay):
    make_stay("EXT-1")
    validation = validate(til, csv_bytes([line("EXT-1", year=2025, month=10, alias="TIL-HT"),
                                          ["", "onze", "EXT-1", ""] + [" "] * 31]))
    errors = {(e["column"], e["value"]) for e in validation.rows[0]["errors"]}
    assert errors == {("ANNEE", "2025"), ("MOIS", "10"), ("SECTION", "TIL-HT")}
    assert "ne correspond pas à la période importée (novembre 2026)" in messages_of(validation)
    second = {(e["column"], e["message"]) for e in validation.rows[1]["errors"]}
    assert ("ANNEE", "L'année est obligatoire.") in second
    assert ("MOIS", "Le mois doit être un nombre.") in second
    assert ("SECTION", "La section est obligatoire.") in second
    assert "figure déjà ligne 2" in messages_of(validation)  # same resident twice


@pytest.mark.django_db
def test_idpersonne_unknown_too_long_or_missing(til, make_stay, demo):
    make_stay("EXT-1")
    validation = validate(til, csv_bytes([line("INCONNU"), line("X" * 61), line("")]))
    text = messages_of(validation)
    assert "Aucun résident n'a la référence externe « INCONNU »" in text
    assert "dépasse 60 caractères" in text
    assert "IDPERSONNE) est obligatoire" in text
    assert [len(r["errors"]) for r in validation.rows] == [1, 1, 1]


@pytest.mark.django_db
def test_resident_without_a_stay_in_the_section_that_month(til, make_stay):
    make_stay("PARTI", entry=date(2026, 1, 1), end=date(2026, 10, 15))
    make_stay("VERGER", alias="VER-HP")
    validation = validate(til, csv_bytes([line("PARTI"), line("VERGER")]))
    assert [e["message"] for r in validation.rows for e in r["errors"]] == [
        "Nom-PARTI Jeanne n'a pas de séjour dans la section TIL-HP en novembre 2026.",
        "Nom-VERGER Jeanne n'a pas de séjour dans la section TIL-HP en novembre 2026."]


@pytest.mark.django_db
def test_an_absence_outside_the_stay_is_an_error(til, make_stay):
    make_stay("ENTRE", entry=date(2026, 11, 10))
    make_stay("SORTI", entry=date(2025, 1, 1), end=date(2026, 11, 20))
    validation = validate(til, csv_bytes([line("ENTRE", {5: "2", 10: "2"}), line("SORTI", {20: "1", 21: "1"})]))
    first, second = validation.rows
    assert [(e["column"], e["value"]) for e in first["errors"]] == [("5", "2")]
    assert "Absence le 05/11/2026, en dehors du séjour" in first["errors"][0]["message"]
    assert "depuis le 10/11/2026" in first["errors"][0]["message"]
    assert [(e["column"], e["value"]) for e in second["errors"]] == [("21", "1")]
    assert "du 01/01/2025 au 20/11/2026" in second["errors"][0]["message"]


@pytest.mark.django_db
def test_31_november_must_be_empty(til, make_stay):
    make_stay("EXT-1")
    validation = validate(til, csv_bytes([line("EXT-1", {30: "2", 31: "2"})]))
    assert [(e["column"], e["value"], e["message"]) for e in all_errors(validation)] == [
        ("31", "2", "Le 31 novembre 2026 n'existe pas : la colonne doit rester vide.")]
    assert validate(til, csv_bytes([line("EXT-1", {30: "2"})])).ok


@pytest.mark.django_db
def test_february_29_in_a_non_leap_year(demo, make_stay):
    make_stay("EXT-1")
    section = demo["sections"]["TIL-HP"]
    validation = validate(section, csv_bytes([line("EXT-1", {29: "2"}, year=2026, month=2)]), year=2026, month=2)
    assert "Le 29 février 2026 n'existe pas" in messages_of(validation)


@pytest.mark.django_db
def test_codes_missing_from_the_table_or_longer_than_one_character(til, make_stay):
    make_stay("EXT-1")
    validation = validate(til, csv_bytes([line("EXT-1", {1: "9", 2: "22", 3: "h"})]))
    assert [(e["column"], e["value"], e["message"]) for e in all_errors(validation)] == [
        ("1", "9", "Le code « 9 » est absent du tableau de correspondance."),
        ("2", "22", "Le code d'absence doit tenir en 1 caractère."),
        ("3", "h", "Le code « h » est absent du tableau de correspondance.")]


@pytest.mark.django_db
def test_extra_cells_beyond_the_header(til, make_stay):
    make_stay("EXT-1")
    assert validate(til, csv_bytes([line("EXT-1") + ["", ""]])).ok  # trailing delimiters are harmless
    validation = validate(til, csv_bytes([line("EXT-1") + ["X"]]))
    assert "plus de colonnes que l'en-tête" in messages_of(validation)


@pytest.mark.django_db
def test_short_lines_count_missing_days_as_presence(til, make_stay):
    stay = make_stay("EXT-1")
    apply(til, csv_bytes(["2026;11;EXT-1;TIL-HP;2;2"]))
    assert spans(stay) == [("H", date(2026, 11, 1), date(2026, 11, 2), "import")]


# ------------------------------------------------------------------------------------------------
# Correspondence table
# ------------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_correspondence_file_rules(til, demo):
    establishment = til.establishment
    result = svc.absence_mapping_parse(establishment=establishment, data=mapping_bytes(
        ["H;2", "X;5", "C;2", "HH;6", ";7", "P;", "S;44", "c;8"]))
    assert [(e["row"], e["column"], e["value"]) for e in result.errors] == [
        (3, "CODEMR", "X"), (4, "CODEEXT", "2"), (5, "CODEMR", "HH"), (6, "CODEMR", ""), (7, "CODEEXT", ""),
        (8, "CODEEXT", "44")]
    assert "Le motif « X » n'existe pas dans l'établissement EHPAD Les Tilleuls (motifs : C, H, P, S)." in [
        e["message"] for e in result.errors]
    assert "figure déjà ligne 2" in result.errors[1]["message"]
    assert result.codes["8"].code == "C"  # lower-case CODEMR accepted
    bad_header = svc.absence_mapping_parse(establishment=establishment, data=mapping_bytes(["H;2"], "MOTIF;CODE"))
    assert "En-tête manquant" in bad_header.errors[0]["message"]
    empty = svc.absence_mapping_parse(establishment=establishment, data=mapping_bytes([]))
    assert "aucune ligne" in empty.errors[0]["message"]
    spaced = svc.absence_mapping_parse(establishment=establishment, data=b"CODEMR CODEEXT\nC 1\nH 2\nP 3\n")
    assert spaced.ok and {k: v.code for k, v in spaced.codes.items()} == {"1": "C", "2": "H", "3": "P"}


@pytest.mark.django_db
def test_a_given_table_is_used_and_saved_only_when_the_import_succeeds(til, make_stay):
    stay = make_stay("EXT-1")
    mapping = mapping_bytes(["H;A", "C;B"])
    with pytest.raises(svc.AbsencesImportError):
        apply(til, csv_bytes([line("EXT-1", {1: "A", 2: "2"})]), mapping=mapping)  # "2" is not in the new table
    assert AbsenceCodeMapping.objects.filter(establishment=til.establishment).count() == 4
    apply(til, csv_bytes([line("EXT-1", {1: "A", 2: "B"})]), mapping=mapping)
    assert spans(stay) == [("H", date(2026, 11, 1), date(2026, 11, 1), "import"),
                           ("C", date(2026, 11, 2), date(2026, 11, 2), "import")]
    assert {m.external_code: m.reason.code for m in AbsenceCodeMapping.objects.filter(
        establishment=til.establishment)} == {"A": "H", "B": "C"}
    other = AbsenceCodeMapping.objects.filter(establishment__code="VER").count()
    assert other == 4  # per establishment


@pytest.mark.django_db
def test_without_any_saved_table_the_file_cannot_be_read(til, make_stay):
    make_stay("EXT-1")
    AbsenceCodeMapping.objects.all().delete()
    validation = validate(til, csv_bytes([line("EXT-1", {1: "2"})]))
    assert validation.error_count == 1
    assert "Aucun tableau de correspondance n'est enregistré pour l'établissement EHPAD Les Tilleuls" in \
           messages_of(validation)


@pytest.mark.django_db
def test_a_broken_table_rejects_the_whole_import(til, make_stay):
    make_stay("EXT-1")
    validation = validate(til, csv_bytes([line("EXT-1", {1: "2"})]), mapping=mapping_bytes(["Z;2"]))
    assert not validation.ok
    entry = validation.report[0]
    assert (entry["file"], entry["row"], entry["errors"][0]["column"]) == ("correspondance.csv", 2, "CODEMR")


# ------------------------------------------------------------------------------------------------
# Absences written: grouping, replacement, joining
# ------------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_consecutive_days_with_the_same_code_make_one_absence(til, make_stay):
    stay = make_stay("EXT-1")
    run = apply(til, csv_bytes([line("EXT-1", "222 21133")]))
    assert spans(stay) == [("H", date(2026, 11, 1), date(2026, 11, 3), "import"),
                           ("H", date(2026, 11, 5), date(2026, 11, 5), "import"),
                           ("C", date(2026, 11, 6), date(2026, 11, 7), "import"),
                           ("P", date(2026, 11, 8), date(2026, 11, 9), "import")]
    assert run.summary["absences"] == 4 and run.summary["absence_days"] == 8 and run.summary["created"] == 4


@pytest.mark.django_db
def test_two_external_codes_of_the_same_reason_make_one_absence(til, make_stay):
    stay = make_stay("EXT-1")
    apply(til, csv_bytes([line("EXT-1", "2255")]), mapping=mapping_bytes(["H;2", "H;5"]))
    assert spans(stay) == [("H", date(2026, 11, 1), date(2026, 11, 4), "import")]


@pytest.mark.django_db
def test_reimport_replaces_the_imported_absences_and_keeps_the_hand_entered_ones(til, make_stay, demo):
    stay = make_stay("EXT-1")
    other = make_stay("EXT-2")
    Absence.objects.create(stay=stay, reason=reason(stay, "C"), first_day=date(2026, 11, 20),
                           last_day=date(2026, 11, 22), comment="saisie")
    apply(til, csv_bytes([line("EXT-1", {3: "2", 4: "2"}), line("EXT-2", {1: "1"})]))
    assert len(spans(stay)) == 2 and len(spans(other)) == 1
    # Another section's imported absences of the same month are not touched.
    ht = make_stay("EXT-HT", alias="TIL-HT")
    apply(demo["sections"]["TIL-HT"], csv_bytes([line("EXT-HT", {8: "3"}, alias="TIL-HT")]))
    run = apply(til, csv_bytes([line("EXT-1", {10: "4", 11: "4", 12: "4"})]))  # EXT-2 no longer absent
    assert spans(stay) == [("S", date(2026, 11, 10), date(2026, 11, 12), "import"),
                           ("C", date(2026, 11, 20), date(2026, 11, 22), "manual")]
    assert spans(other) == []
    assert spans(ht) == [("P", date(2026, 11, 8), date(2026, 11, 8), "import")]
    assert (run.summary["created"], run.summary["deleted"]) == (1, 2)


@pytest.mark.django_db
def test_importing_the_same_file_twice_changes_nothing(til, make_stay):
    stay = make_stay("EXT-1")
    data = csv_bytes([line("EXT-1", {3: "2", 4: "2", 10: "1"})])
    apply(til, data)
    ids = sorted(stay.absences.values_list("pk", flat=True))
    run = apply(til, data)
    assert sorted(stay.absences.values_list("pk", flat=True)) == ids
    assert (run.summary["created"], run.summary["updated"], run.summary["deleted"]) == (0, 0, 0)


@pytest.mark.django_db
def test_hand_entered_absence_overlapping_imported_days_is_an_error_naming_both(til, make_stay):
    stay = make_stay("EXT-1")
    Absence.objects.create(stay=stay, reason=reason(stay, "C"), first_day=date(2026, 11, 5),
                           last_day=date(2026, 11, 8))
    data = csv_bytes([line("EXT-1", {7: "2", 8: "2", 9: "2"})])
    validation = validate(til, data)
    [error] = all_errors(validation)
    assert (error["column"], error["value"]) == ("7", "2")
    assert error["message"] == (
        "L'absence du fichier du 07/11/2026 au 09/11/2026 (Hospitalisation) chevauche l'absence « Convenance "
        "personnelle du 05/11/2026 au 08/11/2026 » (saisie à la main) du même résident : corrigez le fichier ou "
        "l'absence saisie.")
    with pytest.raises(svc.AbsencesImportError):
        apply(til, data)
    assert spans(stay) == [("C", date(2026, 11, 5), date(2026, 11, 8), "manual")]
    assert ImportRun.objects.get().status == ImportRun.Status.REJECTED


def _reduced_line_start(period, resident):
    line = InvoiceLine.objects.filter(invoice__period=period, resident=resident,
                                      reason="absence_hospital").order_by("date_from").first()
    return line.date_from if line else None


@pytest.mark.django_db
@pytest.mark.parametrize("october", ["manual", "imported"])
def test_an_absence_continuing_from_the_previous_month_is_joined(til, make_stay, october):
    stay = make_stay("EXT-1", entry=date(2026, 1, 1))
    if october == "manual":
        Absence.objects.create(stay=stay, reason=reason(stay, "H"), first_day=date(2026, 10, 29),
                               last_day=date(2026, 10, 31))
    else:
        apply(til, csv_bytes([line("EXT-1", {29: "2", 30: "2", 31: "2"}, month=10)], ), month=10)
    period = period_create(section=til, start=date(2026, 11, 1))
    run = apply(til, csv_bytes([line("EXT-1", {d: "2" for d in range(1, 11)})]))
    [absence] = stay.absences.all()
    assert (absence.first_day, absence.last_day) == (date(2026, 10, 29), date(2026, 11, 10))
    assert absence.source == ("manual" if october == "manual" else "import")
    assert run.summary["joined"] == 1
    assert run.report[0]["absences"][0]["joined_from"] == "2026-10-29"
    # 1 November is day 4: the reduced hébergement line starts on 1 November.
    period_generate(period=period)
    assert _reduced_line_start(period, stay.resident) == date(2026, 11, 1)


@pytest.mark.django_db
def test_without_joining_the_reduction_would_start_later(til, make_stay):
    """Control for the test above: an absence starting on 1 November reaches day 4 on 4 November."""
    stay = make_stay("EXT-1")
    period = period_create(section=til, start=date(2026, 11, 1))
    apply(til, csv_bytes([line("EXT-1", {d: "2" for d in range(1, 11)})]))
    period_generate(period=period)
    assert _reduced_line_start(period, stay.resident) == date(2026, 11, 4)


@pytest.mark.django_db
def test_reimport_does_not_extend_twice(til, make_stay):
    stay = make_stay("EXT-1")
    manual = Absence.objects.create(stay=stay, reason=reason(stay, "H"), first_day=date(2026, 10, 29),
                                    last_day=date(2026, 10, 31), comment="saisie")
    ten_days = csv_bytes([line("EXT-1", {d: "2" for d in range(1, 11)})])
    apply(til, ten_days)
    second = apply(til, ten_days)
    assert spans(stay) == [("H", date(2026, 10, 29), date(2026, 11, 10), "manual")]
    assert (second.summary["created"], second.summary["updated"], second.summary["deleted"]) == (0, 0, 0)
    apply(til, csv_bytes([line("EXT-1", {d: "2" for d in range(1, 6)})]))  # corrected: back on 6 November
    assert spans(stay) == [("H", date(2026, 10, 29), date(2026, 11, 5), "manual")]
    apply(til, csv_bytes([line("EXT-1", {1: "2", 2: "2", 8: "2"})]))
    assert spans(stay) == [("H", date(2026, 10, 29), date(2026, 11, 2), "manual"),
                           ("H", date(2026, 11, 8), date(2026, 11, 8), "import")]
    apply(til, csv_bytes([line("EXT-1")]))  # no absence in November after all
    assert spans(stay) == [("H", date(2026, 10, 29), date(2026, 10, 31), "manual")]
    manual.refresh_from_db()
    assert manual.import_month is None and manual.comment == "saisie"
    # The hand-entered absence keeps its row all along.
    assert stay.absences.get().pk == manual.pk


@pytest.mark.django_db
def test_a_different_reason_on_the_first_is_not_joined(til, make_stay):
    stay = make_stay("EXT-1")
    Absence.objects.create(stay=stay, reason=reason(stay, "H"), first_day=date(2026, 10, 29),
                           last_day=date(2026, 10, 31))
    apply(til, csv_bytes([line("EXT-1", {1: "1", 2: "1"})]))
    assert spans(stay) == [("H", date(2026, 10, 29), date(2026, 10, 31), "manual"),
                           ("C", date(2026, 11, 1), date(2026, 11, 2), "import")]


@pytest.mark.django_db
def test_reimporting_the_previous_month_after_the_join(til, make_stay):
    """October imported, November joined to it, then October corrected: the November days stay, joined
    again when October still ends absent, on their own (from 1 November) when it does not."""
    stay = make_stay("EXT-1")
    october = {d: "2" for d in (29, 30, 31)}
    apply(til, csv_bytes([line("EXT-1", october, month=10)]), month=10)
    apply(til, csv_bytes([line("EXT-1", {d: "2" for d in range(1, 11)})]))
    assert spans(stay) == [("H", date(2026, 10, 29), date(2026, 11, 10), "import")]
    apply(til, csv_bytes([line("EXT-1", {d: "2" for d in (27, 28, 29, 30, 31)}, month=10)]), month=10)
    assert spans(stay) == [("H", date(2026, 10, 27), date(2026, 11, 10), "import")]
    apply(til, csv_bytes([line("EXT-1", {20: "1"}, month=10)]), month=10)
    assert spans(stay) == [("C", date(2026, 10, 20), date(2026, 10, 20), "import"),
                           ("H", date(2026, 11, 1), date(2026, 11, 10), "import")]
    november = stay.absences.get(first_day=date(2026, 11, 1))
    assert november.import_month == date(2026, 11, 1)
    apply(til, csv_bytes([line("EXT-1", october, month=10)]), month=10)
    assert spans(stay) == [("H", date(2026, 10, 29), date(2026, 11, 10), "import")]
    # Re-importing November then still extends only once.
    apply(til, csv_bytes([line("EXT-1", {d: "2" for d in range(1, 4)})]))
    assert spans(stay) == [("H", date(2026, 10, 29), date(2026, 11, 3), "import")]


@pytest.mark.django_db
def test_a_hand_entered_absence_extended_by_two_imports(til, make_stay):
    stay = make_stay("EXT-1")
    Absence.objects.create(stay=stay, reason=reason(stay, "H"), first_day=date(2026, 9, 28),
                           last_day=date(2026, 9, 30))
    apply(til, csv_bytes([line("EXT-1", {d: "2" for d in range(1, 32)}, month=10)]), month=10)
    apply(til, csv_bytes([line("EXT-1", {d: "2" for d in range(1, 6)})]))
    assert spans(stay) == [("H", date(2026, 9, 28), date(2026, 11, 5), "manual")]
    apply(til, csv_bytes([line("EXT-1", {d: "2" for d in range(1, 3)})]))
    assert spans(stay) == [("H", date(2026, 9, 28), date(2026, 11, 2), "manual")]
    apply(til, csv_bytes([line("EXT-1", {1: "2"}, month=10)]), month=10)  # October corrected
    assert spans(stay) == [("H", date(2026, 9, 28), date(2026, 10, 1), "manual"),
                           ("H", date(2026, 11, 1), date(2026, 11, 2), "import")]


@pytest.mark.django_db
def test_a_hand_entered_absence_running_into_the_month_is_not_replaced(til, make_stay):
    stay = make_stay("EXT-1")
    Absence.objects.create(stay=stay, reason=reason(stay, "H"), first_day=date(2026, 10, 25),
                           last_day=date(2026, 11, 3))
    apply(til, csv_bytes([line("EXT-1", {10: "1"})]))
    assert spans(stay) == [("H", date(2026, 10, 25), date(2026, 11, 3), "manual"),
                           ("C", date(2026, 11, 10), date(2026, 11, 10), "import")]
    with pytest.raises(svc.AbsencesImportError):
        apply(til, csv_bytes([line("EXT-1", {3: "2", 4: "2"})]))  # overlaps the hand-entered 3 November


@pytest.mark.django_db
def test_drafts_of_the_open_period_are_regenerated(til, make_stay):
    stay = make_stay("EXT-1")
    period = period_create(section=til, start=date(2026, 11, 1))
    period_generate(period=period)
    before = Invoice.objects.get(period=period, resident=stay.resident, debtor_kind="resident").total
    run = apply(til, csv_bytes([line("EXT-1", {d: "2" for d in range(1, 21)})]))
    assert run.summary["regenerated"] == [{"period": period.pk, "label": period.label, "drafts": 1}]
    after = Invoice.objects.get(period=period, resident=stay.resident, debtor_kind="resident").total
    assert after < before  # 17 reduced hébergement days, no dependency on absence days
    assert _reduced_line_start(period, stay.resident) == date(2026, 11, 4)


@pytest.mark.django_db
def test_periods_without_drafts_are_not_generated(til, make_stay):
    make_stay("EXT-1")
    period = period_create(section=til, start=date(2026, 11, 1))
    run = apply(til, csv_bytes([line("EXT-1", {1: "2"})]))
    assert run.summary["regenerated"] == []
    period.refresh_from_db()
    assert period.generated_at is None


@pytest.mark.django_db
def test_the_run_is_recorded_with_files_summary_and_report(til, make_stay):
    make_stay("EXT-1")
    user = UserFactory(username="tech")
    data = csv_bytes([line("EXT-1", {1: "2"})])
    run = apply(til, data, user=user, mapping=mapping_bytes(["H;2"]))
    import hashlib

    assert run.kind == "absences" and run.section == til and run.establishment == til.establishment
    assert run.month == date(2026, 11, 1) and run.created_by == user and not run.dry_run
    assert run.files[0] == {"role": "absences", "name": "absences.csv", "size": len(data),
                            "sha256": hashlib.sha256(data).hexdigest(), "encoding": "UTF-8",
                            "delimiter": "point-virgule"}
    assert run.files[1]["role"] == "mapping" and len(run.files[1]["sha256"]) == 64
    assert run.summary["lines"] == 1 and run.summary["created"] == 1
    assert run.report[0]["row"] == 2 and run.report[0]["ref"] == "EXT-1" and run.report[0]["days"].startswith("2·")


# ------------------------------------------------------------------------------------------------
# manage.py import_absences
# ------------------------------------------------------------------------------------------------
def write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


@pytest.mark.django_db
def test_command_success_prints_a_summary(til, make_stay, tmp_path):
    stay = make_stay("EXT-1")
    out, err = StringIO(), StringIO()
    call_command("import_absences", write(tmp_path, "abs.csv", csv_bytes([line("EXT-1", {1: "2", 2: "2"})])),
                 "--section", "TIL-HP", "--month", "2026-11", stdout=out, stderr=err)
    assert "Import réussi : TIL-HP novembre 2026 — 1 ligne(s), 1 absence(s), 2 jour(s) d'absence." in out.getvalue()
    assert "Absences créées : 1" in out.getvalue()
    assert len(spans(stay)) == 1


@pytest.mark.django_db
def test_command_prints_every_error_and_fails(til, make_stay, tmp_path):
    make_stay("EXT-1")
    err = StringIO()
    path = write(tmp_path, "abs.csv", csv_bytes([line("EXT-1", {1: "9", 31: "2"}), line("NOBODY")]))
    with pytest.raises(CommandError, match="3 erreur"):
        call_command("import_absences", path, "--section", "TIL-HP", "--month", "2026-11", stderr=err)
    text = err.getvalue()
    assert "ERREUR : abs.csv › ligne 2 › 1 › 9 › Le code « 9 » est absent du tableau de correspondance." in text
    assert "ERREUR : abs.csv › ligne 2 › 31 › 2 › Le 31 novembre 2026 n'existe pas" in text
    assert "ERREUR : abs.csv › ligne 3 › IDPERSONNE › NOBODY › Aucun résident" in text
    assert not Absence.objects.exists()


@pytest.mark.django_db
def test_command_exit_codes_as_from_the_shell(til, make_stay, tmp_path, monkeypatch):
    """call_command raises CommandError; run_from_argv (manage.py) turns it into exit status 1."""
    from django.core.management import ManagementUtility
    from django.db import connections

    monkeypatch.setattr(connections, "close_all", lambda: None)  # keep the test's transaction open
    make_stay("EXT-1")
    bad = write(tmp_path, "bad.csv", b"nothing useful\n")
    with pytest.raises(SystemExit) as exc:
        ManagementUtility(["manage.py", "import_absences", bad, "--section", "TIL-HP", "--month",
                           "2026-11"]).execute()
    assert exc.value.code == 1
    good = write(tmp_path, "good.csv", csv_bytes([line("EXT-1", {1: "2"})]))
    ManagementUtility(["manage.py", "import_absences", good, "--section", "TIL-HP", "--month", "2026-11"]).execute()
    assert Absence.objects.count() == 1


@pytest.mark.django_db
def test_command_dry_run_writes_nothing(til, make_stay, tmp_path):
    make_stay("EXT-1")
    out = StringIO()
    call_command("import_absences", write(tmp_path, "abs.csv", csv_bytes([line("EXT-1", {1: "A"})])),
                 "--section", "TIL-HP", "--month", "2026-11", "--dry-run",
                 "--mapping", write(tmp_path, "map.csv", mapping_bytes(["H;A"])), stdout=out)
    assert "Simulation réussie, rien n'a été écrit" in out.getvalue()
    assert "(serait enregistré)" in out.getvalue()
    assert not Absence.objects.exists()
    assert not AbsenceCodeMapping.objects.filter(establishment=til.establishment, external_code="A").exists()
    run = ImportRun.objects.get()
    assert run.dry_run and run.status == ImportRun.Status.VALIDATED


@pytest.mark.django_db
def test_command_with_mapping_saves_it(til, make_stay, tmp_path):
    make_stay("EXT-1")
    out = StringIO()
    call_command("import_absences", write(tmp_path, "abs.csv", csv_bytes([line("EXT-1", {1: "A"})])),
                 "--section", "TIL-HP", "--month", "2026-11",
                 "--mapping", write(tmp_path, "map.csv", mapping_bytes(["H;A"])), stdout=out)
    assert "Tableau de correspondance : 1 code(s) enregistré." in out.getvalue()
    assert AbsenceCodeMapping.objects.filter(establishment=til.establishment).count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize("args,message", [
    (["--section", "NOPE", "--month", "2026-11"], "Section inconnue"),
    (["--section", "TIL-HP", "--month", "2026-13"], "Mois invalide"),
    (["--section", "TIL-HP", "--month", "11/2026"], "Mois invalide"),
])
def test_command_argument_errors(demo, tmp_path, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("import_absences", write(tmp_path, "a.csv", b"x"), *args)


@pytest.mark.django_db
def test_command_missing_file(demo):
    with pytest.raises(CommandError, match="introuvable"):
        call_command("import_absences", "/nonexistent.csv", "--section", "TIL-HP", "--month", "2026-11")


# ------------------------------------------------------------------------------------------------
# Browser views
# ------------------------------------------------------------------------------------------------
@pytest.fixture
def period(til):
    return period_create(section=til, start=date(2026, 11, 1))


@pytest.fixture
def no_celery(monkeypatch):
    from core.tasks import run_job

    sent = []
    monkeypatch.setattr(run_job, "delay", lambda job_id: sent.append(job_id))
    return sent


def run_pending_jobs():
    """What a worker does: run the validation jobs the upload started (in the test's transaction)."""
    from core.models import Job
    from core.tasks import run_job

    for job_id in Job.objects.filter(kind="imports.absences", status="pending").values_list("pk", flat=True):
        run_job(job_id)


def upload(client, period, data, *, mapping=None, use_saved=True, name="absences.csv", run_jobs=True):
    from django.core.files.uploadedfile import SimpleUploadedFile

    payload = {"absences": SimpleUploadedFile(name, data, content_type="text/csv")}
    if use_saved:
        payload["use_saved_mapping"] = "on"
    if mapping is not None:
        payload["mapping"] = SimpleUploadedFile("corresp.csv", mapping, content_type="text/csv")
    response = client.post(reverse("imports:absences", kwargs={"alias": period.section.alias,
                                                               "period_pk": period.pk}), payload)
    if run_jobs:
        run_pending_jobs()
    return response


def run_url(period, run):
    return reverse("imports:absences-run", kwargs={"alias": period.section.alias, "period_pk": period.pk,
                                                   "run_pk": run.pk})


@pytest.mark.django_db
def test_period_page_links_to_the_absences_import(client, demo, period):
    client.force_login(demo["users"]["tilleuls"])
    html = client.get(reverse("billing:period-detail", kwargs={"alias": "TIL-HP", "period_pk": period.pk})).content
    assert reverse("imports:absences", kwargs={"alias": "TIL-HP", "period_pk": period.pk}).encode() in html
    assert "Saisie des absences (import)".encode() in html


@pytest.mark.django_db
def test_upload_with_errors_shows_every_line_and_valider_is_locked(client, demo, period, make_stay, no_celery):
    make_stay("EXT-1")
    make_stay("EXT-2")
    client.force_login(demo["users"]["tilleuls"])
    response = upload(client, period, csv_bytes([line("EXT-1", {1: "2"}), line("EXT-2", {3: "9"})]))
    run = ImportRun.objects.get()
    assert response.status_code == 302 and response.url == run_url(period, run)
    assert run.status == ImportRun.Status.REJECTED
    html = client.get(response.url).content.decode()
    assert 'id="validate" disabled' in html
    assert "Le code « 9 » est absent du tableau de correspondance." in html
    assert "EXT-1" in html and "EXT-2" in html  # every line, not only those in error
    assert "Hospitalisation (H) du 01/11/2026 au 01/11/2026, 1 j" in html
    only_errors = client.get(response.url, {"erreurs": "1"}).content.decode()
    assert "EXT-2" in only_errors and "EXT-1" not in only_errors
    # The server refuses too.
    refused = client.post(response.url, {"action": "confirm"})
    assert refused.status_code == 302 and refused.url == response.url
    assert not Absence.objects.exists()
    run.refresh_from_db()
    assert run.status == ImportRun.Status.REJECTED


@pytest.mark.django_db
def test_upload_then_valider_creates_absences_and_regenerates_drafts(client, demo, period, make_stay, no_celery,
                                                                     settings, django_capture_on_commit_callbacks):
    stay = make_stay("EXT-1")
    period_generate(period=period)
    client.force_login(demo["users"]["tilleuls"])
    response = upload(client, period, csv_bytes([line("EXT-1", {1: "2", 2: "2"})]))
    run = ImportRun.objects.get()
    assert run.status == ImportRun.Status.VALIDATED
    stored = Path(settings.MEDIA_ROOT) / run.stored_files[0]["path"]
    assert stored.is_file() and str(run.stored_files[0]["path"]).startswith(f"imports/absences/{run.pk}/")
    html = client.get(response.url).content.decode()
    assert 'id="validate" disabled' not in html and 'id="validate"' in html
    assert not Absence.objects.exists()  # nothing written before Valider
    with django_capture_on_commit_callbacks(execute=True):
        confirmed = client.post(response.url, {"action": "confirm"})
        # Valider starts the import job (validate again, then write): the page follows it.
        assert confirmed.status_code == 302 and confirmed.url == response.url
        assert not Absence.objects.exists()
        run_pending_jobs()
    assert spans(stay) == [("H", date(2026, 11, 1), date(2026, 11, 2), "import")]
    run.refresh_from_db()
    assert run.status == ImportRun.Status.IMPORTED and run.created_by == demo["users"]["tilleuls"]
    from core.models import Job

    job = Job.objects.get(kind="billing.generate")
    import_job = Job.objects.get(kind="imports.absences", params__action="import")
    assert job.params == {"period_id": period.pk} and no_celery == [import_job.pk, job.pk]
    html = client.get(response.url).content.decode()
    assert 'id="imported"' in html and "Absences de novembre 2026 importées" in html
    # A second Valider on the same run is refused.
    again = client.post(response.url, {"action": "confirm"})
    assert again.status_code == 302 and Absence.objects.count() == 1


@pytest.mark.django_db
def test_server_revalidates_at_valider(client, demo, period, make_stay, no_celery):
    stay = make_stay("EXT-1")
    client.force_login(demo["users"]["tilleuls"])
    response = upload(client, period, csv_bytes([line("EXT-1", {5: "2"})]))
    # Meanwhile someone types an absence on the same day by hand.
    Absence.objects.create(stay=stay, reason=reason(stay, "C"), first_day=date(2026, 11, 5),
                           last_day=date(2026, 11, 5))
    client.post(response.url, {"action": "confirm"})
    run_pending_jobs()
    run = ImportRun.objects.get()
    assert run.status == ImportRun.Status.REJECTED
    assert "chevauche" in run.report[0]["errors"][0]["message"]
    assert spans(stay) == [("C", date(2026, 11, 5), date(2026, 11, 5), "manual")]


@pytest.mark.django_db
def test_first_time_the_table_is_required_then_saved_and_viewable(client, demo, period, make_stay, no_celery):
    make_stay("EXT-1")
    AbsenceCodeMapping.objects.all().delete()
    client.force_login(demo["users"]["tilleuls"])
    page = client.get(reverse("imports:absences", kwargs={"alias": "TIL-HP", "period_pk": period.pk})).content
    assert "Aucun tableau de correspondance n'est encore enregistré".encode() in page
    missing = upload(client, period, csv_bytes([line("EXT-1", {1: "2"})]), use_saved=False)
    assert missing.status_code == 400 and "Joignez le tableau de correspondance" in missing.content.decode()
    response = upload(client, period, csv_bytes([line("EXT-1", {1: "2"})]), use_saved=False,
                      mapping=mapping_bytes(["C;1", "H;2", "P;3"]))
    assert ImportRun.objects.get().status == ImportRun.Status.VALIDATED
    assert AbsenceCodeMapping.objects.filter(establishment=period.section.establishment).count() == 3
    run = ImportRun.objects.get()
    assert [f["role"] for f in run.stored_files] == ["absences", "mapping", "report"]  # + the full report (XLSX)
    client.post(response.url, {"action": "confirm"})
    run_pending_jobs()
    assert Absence.objects.count() == 1
    table = client.get(reverse("imports:absence-mapping", kwargs={"alias": "TIL-HP"})).content.decode()
    assert "Hospitalisation" in table and "Motifs sans code externe" in table and "S (Hospitalisation psy" in table


@pytest.mark.django_db
def test_the_mapping_page_replaces_the_table(client, demo):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(demo["users"]["tilleuls"])
    url = reverse("imports:absence-mapping", kwargs={"alias": "TIL-HT"})
    bad = client.post(url, {"mapping": SimpleUploadedFile("m.csv", mapping_bytes(["Q;1"]))})
    assert bad.status_code == 400 and "Le motif « Q » n'existe pas" in unescape(bad.content.decode())
    good = client.post(url, {"mapping": SimpleUploadedFile("m.csv", mapping_bytes(["H;h", "C;c"]))})
    assert good.status_code == 302
    assert {m.external_code for m in AbsenceCodeMapping.objects.filter(establishment__code="TIL")} == {"h", "c"}


@pytest.mark.django_db
def test_reader_may_look_but_not_upload_or_validate(client, demo, period, make_stay, no_celery):
    make_stay("EXT-1")
    client.force_login(demo["users"]["tilleuls"])
    response = upload(client, period, csv_bytes([line("EXT-1", {1: "2"})]))
    client.force_login(demo["users"]["direction"])
    page = client.get(response.url)
    assert page.status_code == 200 and 'id="upload-form"' not in page.content.decode()
    assert 'id="validate"' not in page.content.decode()
    assert client.post(response.url, {"action": "confirm"}).status_code == 403
    assert upload(client, period, csv_bytes([line("EXT-1", {1: "2"})])).status_code == 403
    mapping_url = reverse("imports:absence-mapping", kwargs={"alias": "TIL-HP"})
    assert client.get(mapping_url).status_code == 200
    assert client.post(mapping_url, {}).status_code == 403
    assert not Absence.objects.exists()


@pytest.mark.django_db
def test_other_sections_are_404(client, demo, period, make_stay, no_celery):
    make_stay("EXT-1")
    client.force_login(demo["users"]["tilleuls"])
    response = upload(client, period, csv_bytes([line("EXT-1", {1: "2"})]))
    run = ImportRun.objects.get()
    client.force_login(demo["users"]["verger"])
    assert client.get(response.url).status_code == 404
    assert client.post(response.url, {"action": "confirm"}).status_code == 404
    assert client.get(reverse("imports:absence-mapping", kwargs={"alias": "TIL-HP"})).status_code == 404
    # The verger clerk's own section does not reach the TIL-HP period or run either.
    assert client.get(reverse("imports:absences", kwargs={"alias": "VER-HP", "period_pk": period.pk})).status_code \
        == 404
    ver_period = period_create(section=demo["sections"]["VER-HP"], start=date(2026, 11, 1))
    assert client.get(reverse("imports:absences-run", kwargs={"alias": "VER-HP", "period_pk": ver_period.pk,
                                                              "run_pk": run.pk})).status_code == 404
    assert ImportRun.objects.get().status == ImportRun.Status.VALIDATED


@pytest.mark.django_db
def test_upload_without_a_file_or_with_garbage(client, demo, period):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(demo["users"]["tilleuls"])
    url = reverse("imports:absences", kwargs={"alias": "TIL-HP", "period_pk": period.pk})
    missing = client.post(url, {"use_saved_mapping": "on"})
    assert missing.status_code == 400 and "Choisissez le fichier des absences" in missing.content.decode()
    garbage = client.post(url, {"use_saved_mapping": "on",
                                "absences": SimpleUploadedFile("a.xlsx", b"PK\x03\x04\x00\x00binary")})
    run_pending_jobs()
    html = client.get(garbage.url).content.decode()
    assert "classeur Excel" in html and 'id="validate" disabled' in html


@pytest.mark.django_db
def test_random_sequences_of_imports_keep_every_invariant(til, make_stay):
    """Imports of October, November and December in random order, with a hand-entered absence:
    after each one the days are exactly the hand-entered days plus each month's latest file, absences
    continuing across a month boundary are one absence, and importing the same file again changes nothing."""
    import random
    from datetime import timedelta

    rng = random.Random(20261101)
    stay = make_stay("EXT-1")
    hand = {date(2026, 10, 30): "C", date(2026, 10, 31): "C"}
    Absence.objects.create(stay=stay, reason=reason(stay, "C"), first_day=date(2026, 10, 30),
                           last_day=date(2026, 10, 31))
    code_of = {"H": "2", "C": "1"}
    latest: dict[int, dict[date, str]] = {}
    for step in range(40):
        month = rng.choice([10, 11, 12])
        ndays = {10: 31, 11: 30, 12: 31}[month]
        days: dict[date, str] = {}
        current = None
        for d in range(1, ndays + 1):
            if rng.random() < 0.3:
                current = rng.choice([None, "H", "C"])
            if d in (1, ndays) and rng.random() < 0.5:
                current = rng.choice(["H", "C"])
            day = date(2026, month, d)
            if current and day not in hand:
                days[day] = current
        data = csv_bytes([line("EXT-1", {d.day: code_of[r] for d, r in days.items()}, month=month)])
        apply(til, data, month=month, regenerate="none")
        latest[month] = days
        expected = dict(hand)
        for month_days in latest.values():
            expected.update(month_days)
        absences = list(stay.absences.select_related("reason").order_by("first_day"))
        actual = {}
        for a in absences:
            day = a.first_day
            while day <= a.last_day:
                assert day not in actual, f"step {step}: overlap on {day}"
                actual[day] = a.reason.code
                day += timedelta(days=1)
        assert actual == expected, f"step {step} (month {month})"
        for before, after in zip(absences, absences[1:]):
            if before.reason_id == after.reason_id and before.last_day + timedelta(days=1) == after.first_day:
                assert after.first_day.day != 1, f"step {step}: {before} and {after} should be one absence"
        again = apply(til, data, month=month, regenerate="none")
        assert (again.summary["created"], again.summary["updated"], again.summary["deleted"]) == (0, 0, 0)


# ------------------------------------------------------------------------------------------------
# Big files leave the request: validation job, bounded report, full report as XLSX
# ------------------------------------------------------------------------------------------------
@pytest.mark.django_db
def test_upload_only_stores_and_starts_the_validation_job(client, demo, period, make_stay, no_celery,
                                                          django_capture_on_commit_callbacks):
    from core.models import Job

    make_stay("EXT-1")
    client.force_login(demo["users"]["tilleuls"])
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client, period, csv_bytes([line("EXT-1", {1: "2"})]), run_jobs=False)
    run = ImportRun.objects.get()
    job = Job.objects.get(kind="imports.absences")
    assert run.status == ImportRun.Status.PENDING and run.report == [] and run.job == job
    assert job.params == {"run_id": run.pk} and no_celery == [job.pk]  # sent to a worker after commit
    html = client.get(response.url).content.decode()
    assert f'id="job-{job.pk}"' in html and 'id="validate" disabled' in html
    run_pending_jobs()
    run.refresh_from_db()
    assert run.status == ImportRun.Status.VALIDATED


@pytest.mark.django_db
def test_a_big_report_is_bounded_and_the_full_one_is_an_xlsx(client, demo, period, make_stay, no_celery,
                                                             monkeypatch, settings):
    import io

    import openpyxl

    from core.models import Job
    from imports.services import absences_import as service
    from imports.services.retention import import_files_purge

    monkeypatch.setattr(service, "REPORT_LIMIT", 20)
    monkeypatch.setattr(service, "REPORT_PER_KIND", 5)
    make_stay("EXT-1")
    client.force_login(demo["users"]["tilleuls"])
    lines = [line("=HYPERLINK(\"http://x\")", {1: "2"})] + [line(f"INCONNU-{i}", {1: "2"}) for i in range(60)] \
        + [line("EXT-1", {2: "9"}) for _ in range(10)]
    response = upload(client, period, csv_bytes(lines))
    run = ImportRun.objects.get()
    assert run.status == ImportRun.Status.REJECTED
    assert run.summary["report_total"] == 71 and len(run.report) <= 20
    kinds = [{problem["column"] for problem in e["errors"]} for e in run.report]
    assert kinds.count({"IDPERSONNE"}) == 5  # the first lines of each kind of error…
    assert any("2" in k for k in kinds)  # …so the bad code of day 2 is shown too
    assert run.summary["errors_by_column"]["IDPERSONNE"] == 61 + 9  # unknown refs, then EXT-1 repeated 9 times
    html = client.get(response.url).content.decode()
    assert 'id="report-truncated"' in html and "sur 71" in html
    job = Job.objects.get(kind="imports.absences")
    download = client.get(reverse("job-download", kwargs={"pk": job.pk}))
    assert download.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(b"".join(download.streaming_content))).active
    assert sheet.max_row == 1 + 71
    cells = [c for row in sheet.iter_rows() for c in row]
    assert not [c for c in cells if c.data_type == "f"]
    assert "'=HYPERLINK(\"http://x\")" in [c.value for c in cells]
    # The full report is purged with the uploaded files.
    assert import_files_purge(older_than_days=-1) == 2
    assert client.get(reverse("job-download", kwargs={"pk": job.pk})).status_code == 404


@pytest.mark.django_db
def test_section_alias_in_any_case_and_the_message_of_another_section(til, make_stay):
    """SECTION is compared without case; another section's alias names both. The line's ``days``
    shows each typed code (its first character) and ``·`` for a present day; the resident is kept
    only on a line without error."""
    stay = make_stay("EXT-1")
    make_stay("EXT-2")
    validation = validate(til, csv_bytes([line("EXT-1", "22", alias="til-hp"),
                                          line("EXT-2", {1: "2", 2: "21"}, alias="TIL-HT")]))
    first, second = validation.rows
    assert first["errors"] == [] and first["resident_id"] == stay.resident_id
    assert first["days"] == "22" + "·" * 28
    assert [(e["column"], e["value"], e["message"]) for e in second["errors"]] == [
        ("SECTION", "TIL-HT", "La section « TIL-HT » n'est pas celle importée (TIL-HP)."),
        ("2", "21", "Le code d'absence doit tenir en 1 caractère.")]
    assert second["resident_id"] is None and second["resident"] == "Nom-EXT-2 Jeanne"
    assert second["days"] == "22" + "·" * 28
