"""Residents and relatives import from XLSX (../shared/docs/formats.md, seed 000 « Descriptif de
l'interface des résidents »).

Two phases, always in this order:

1. **validate** both files completely (every rule of formats.md, every row), collecting every error
   and warning in a :class:`~imports.services.xlsx.Report` (file › sheet › row › column › value ›
   message). Lookups (sections, packages, payers, calendars, existing external references and
   RUMs) are fetched once, up front — a bounded number of queries whatever the file size.
2. **write** (only when there is no error): residents, stays, GIR, stay packages, coverage rules,
   relatives and SEPA mandates, with ``bulk_create`` in ONE transaction. Any failure rolls
   everything back.

The command (``manage.py import_residents``) calls :func:`residents_import` with ``user=None``
(technicians: every section); the browser calls it through :func:`residents_import_job` with the
manager who uploaded/confirmed, whose *responsable* sections are the only allowed SECTION values.

Decisions (documented in the README of the import):
- PAYEUR creates a :class:`~payers.models.CoverageRule` from DATE_ENTREE: a département gets the
  APA rule (group APA if it has one, dependency products, "GIR tariff minus talon"); with
  AIDE_SOCIALE=1 the payer's ASH group also takes the accommodation products in full (the payer
  must have an ASH group). Any other payer takes all products in full.
- A mandate is created for the resident (IBAN on the resident row) or the relative (IBAN on the
  relative row): with RUM → *active* with its signature date; without RUM and when the resident
  pays by PRELEVEMENT (the relative: when PAYEUR=1) → *pending* with a generated RUM
  ``<ESTABLISHMENT>-<REF_EXTERNE or resident id>`` (``-P<relative id>`` for a relative). A taken-over
  mandate with DERNIER_PRELEVEMENT keeps its sequence: RCUR, ``last_collection_date`` set. An IBAN
  that leads to no mandate is a warning.
- MODE_REGLEMENT = PRELEVEMENT needs an IBAN on the resident row or on a relative with PAYEUR=1.
- An empty BIC is not filled from the IBAN (a derived BIC can be the wrong branch): the report
  proposes it as a warning; the mandate is created without BIC (optional for SEPA debits).
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import IO, Any, Callable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.limits import memory_limit, memory_refusal
from structures.models import DEPARTEMENT_VALIDATOR

from .xlsx import CellError, Column, Report, Row, Table, read_xlsx_table, strip_accents, to_bool, to_date, to_int, \
    to_text

BATCH = 1000
REPORT_LIMIT = 5000
PREVIEW_ROWS = 50
JOB_KIND = "imports.residents"


# ------------------------------------------------------------------------------------------- columns
def _c(name, mandatory=False, help="", example=None):  # noqa: A002 - short local helper
    return Column(name=name, mandatory=mandatory, help=help, example=example)


BANK_HELP = {
    "IBAN": "IBAN du compte à prélever : pays, longueur et clés contrôlés (clé RIB pour un IBAN français). "
            "Obligatoire quand MODE_REGLEMENT vaut PRELEVEMENT (sur la ligne du résident ou d'un proche payeur).",
    "BIC": "BIC de la banque (8 ou 11 caractères), contrôlé. Laissé vide, il n'est pas déduit d'office de l'IBAN : "
           "le rapport propose le BIC probable.",
    "TITULAIRE_COMPTE": "Titulaire du compte (70 caractères au plus). Vide : la personne elle-même.",
    "RUM": "Référence unique du mandat déjà signé (reprise d'un autre logiciel) : 35 caractères au plus parmi "
           "A-Z a-z 0-9 / - ? : ( ) . , ' + et espace, unique pour l'établissement créancier. Vide : un mandat à "
           "faire signer est créé avec une RUM générée.",
    "DATE_SIGNATURE_MANDAT": "Date de signature du mandat (JJ/MM/AAAA), obligatoire quand RUM est renseignée, pas "
                             "dans le futur.",
    "DERNIER_PRELEVEMENT": "Date du dernier prélèvement fait sous ce mandat par l'ancien logiciel (JJ/MM/AAAA), "
                           "avec la RUM : le prochain prélèvement est alors récurrent (RCUR) et non un premier "
                           "(FRST). Pas avant la signature ni dans le futur.",
}

RESIDENT_COLUMNS = [
    _c("NUMERO", True, "Identifiant du résident dans ce fichier, unique ; relie les proches (fichier des proches) à "
                       "leur résident.", 1),
    _c("SECTION", True, "Alias d'une section de facturation existante dont vous êtes responsable.", "TIL-HP"),
    _c("REF_EXTERNE", False, "Référence du résident dans un autre logiciel (soins, planning), 60 caractères au plus, "
                             "unique dans l'association ; utilisée par l'import des absences.", "EXT-0042"),
    _c("CIVILITE", False, "M ou MME.", "MME"),
    _c("NOM", True, "Nom d'usage.", "Müller-Élodie d'Arçy"),
    _c("NOM_NAISSANCE", False, "Nom de naissance.", "Dupont"),
    _c("PRENOM", True, "Prénom.", "Jeanne"),
    _c("DATE_NAISSANCE", True, "Date de naissance (cellule date ou texte JJ/MM/AAAA), pas dans le futur.",
       date(1938, 4, 12)),
    _c("LIEU_NAISSANCE", False, "Lieu de naissance.", "Lyon"),
    _c("NIR", False, "Numéro de sécurité sociale : 15 caractères avec la clé (contrôlée), espaces admis.",
       "2 38 04 69 123 001 17"),
    _c("ADRESSE", False, "Adresse précédente.", "12 rue des Lilas"),
    _c("CODE_POSTAL", False, "Code postal de l'adresse précédente.", "69003"),
    _c("VILLE", False, "Ville de l'adresse précédente.", "Lyon"),
    _c("TELEPHONE", False, "Téléphone.", "04 78 00 00 00"),
    _c("EMAIL", False, "Adresse e-mail (contrôlée) ; renseignée, le résident reçoit ses factures par e-mail.", ""),
    _c("DATE_ENTREE", True, "Date d'entrée dans la section (début du séjour).", date(2026, 11, 2)),
    _c("HEBERGEMENT", True, "Code d'un forfait d'hébergement de la SECTION.", "STD"),
    _c("CHAMBRE", False, "Chambre (20 caractères au plus).", "104"),
    _c("GIR", False, "Niveau de dépendance : 1 à 6.", 3),
    _c("DOMICILE_SECOURS", False, "Code du département du domicile de secours, qui verse l'APA et l'aide sociale "
                                  "(69, 2A, 974…). Vide : le département de l'établissement. Un autre département "
                                  "demande une décision APA individuelle (PAYEUR).", "69"),
    _c("PAYEUR", False, "Code d'un payeur existant (par exemple le département pour l'APA ou l'aide sociale).",
       "CD69"),
    _c("AIDE_SOCIALE", False, "0 ou 1 : résident à l'aide sociale à l'hébergement (ASH) ; demande un PAYEUR ayant un "
                              "groupe ASH.", 0),
    _c("MODE_REGLEMENT", False, "CHEQUE, VIREMENT, PRELEVEMENT ou ESPECES (vide : CHEQUE).", "PRELEVEMENT"),
    _c("IBAN", False, BANK_HELP["IBAN"], "FR76 3000 6000 0112 3456 7890 189"),
    _c("BIC", False, BANK_HELP["BIC"], "AGRIFRPPXXX"),
    _c("TITULAIRE_COMPTE", False, BANK_HELP["TITULAIRE_COMPTE"], ""),
    _c("RUM", False, BANK_HELP["RUM"], "EX-2026-0001"),
    _c("DATE_SIGNATURE_MANDAT", False, BANK_HELP["DATE_SIGNATURE_MANDAT"], date(2026, 10, 15)),
    _c("DERNIER_PRELEVEMENT", False, BANK_HELP["DERNIER_PRELEVEMENT"], date(2026, 11, 5)),
]

RELATIVE_COLUMNS = [
    _c("NUMERO", True, "NUMERO du résident (fichier des résidents du même import) dont c'est le proche.", 1),
    _c("CIVILITE", False, "M ou MME.", "M"),
    _c("NOM", True, "Nom.", "Müller"),
    _c("PRENOM", False, "Prénom.", "Étienne"),
    _c("LIEN", False, "Lien de parenté, texte libre (FILLE, FILS, CONJOINT, NEVEU…).", "FILS"),
    _c("ADRESSE", False, "Adresse.", "3 place Bellecour"),
    _c("CODE_POSTAL", False, "Code postal.", "69002"),
    _c("VILLE", False, "Ville.", "Lyon"),
    _c("TELEPHONE", False, "Téléphone.", "06 12 34 56 78"),
    _c("EMAIL", False, "Adresse e-mail (contrôlée).", "etienne.muller@example.org"),
    _c("DESTINATAIRE_FACTURES", False, "0 ou 1 : reçoit les factures du résident ; un seul proche par résident.", 1),
    _c("TUTEUR", False, "0 ou 1 : tuteur ou représentant légal (tutelle, curatelle).", 0),
    _c("PAYEUR", False, "0 ou 1 : le proche règle la part du résident.", 0),
    _c("IBAN", False, BANK_HELP["IBAN"], ""),
    _c("BIC", False, BANK_HELP["BIC"], ""),
    _c("TITULAIRE_COMPTE", False, BANK_HELP["TITULAIRE_COMPTE"], ""),
    _c("RUM", False, BANK_HELP["RUM"], ""),
    _c("DATE_SIGNATURE_MANDAT", False, BANK_HELP["DATE_SIGNATURE_MANDAT"], ""),
    _c("DERNIER_PRELEVEMENT", False, BANK_HELP["DERNIER_PRELEVEMENT"], ""),
]

CIVILITIES = {"M": "M", "MR": "M", "MONSIEUR": "M", "MME": "MME", "MADAME": "MME", "MLLE": "MME"}
PAYMENT_MODES = {"CHEQUE": "cheque", "VIREMENT": "transfer", "PRELEVEMENT": "direct_debit", "ESPECES": "cash"}
RUM_ALLOWED = re.compile(r"[^A-Za-z0-9/\-?:().,'+ ]")


# --------------------------------------------------------------------------------------------- lines
@dataclass
class Bank:
    iban: str = ""
    bic: str = ""
    holder: str = ""
    rum: str = ""
    signature_date: date | None = None
    last_collection: date | None = None  # DERNIER_PRELEVEMENT: a taken-over mandate starts at RCUR
    iban_given: bool = False  # an IBAN cell was filled (valid or not)


@dataclass
class ResidentLine:
    row: int
    numero: str = ""
    section: Any = None
    external_ref: str = ""
    civility: str = ""
    last_name: str = ""
    birth_name: str = ""
    first_name: str = ""
    birth_date: date | None = None
    birth_place: str = ""
    nir: str = ""
    address: str = ""
    postal_code: str = ""
    city: str = ""
    phone: str = ""
    email: str = ""
    entry_date: date | None = None
    package: Any = None
    room: str = ""
    gir: int | None = None
    domicile_secours: str = ""
    payer: Any = None
    social_aid: bool = False
    payment_mode: str = "cheque"
    bank: Bank = field(default_factory=Bank)
    mandate: str = ""  # "", "active" or "pending"


@dataclass
class RelativeLine:
    row: int
    numero: str = ""
    civility: str = ""
    last_name: str = ""
    first_name: str = ""
    relationship: str = ""
    address: str = ""
    postal_code: str = ""
    city: str = ""
    phone: str = ""
    email: str = ""
    receives_invoices: bool = False
    is_guardian: bool = False
    is_payer: bool = False
    bank: Bank = field(default_factory=Bank)
    mandate: str = ""


@dataclass
class ImportFile:
    """A file to import: a path (or an open binary file) and the name shown in the report."""

    source: Path | str | IO[bytes]
    name: str


@dataclass
class Plan:
    report: Report
    residents: list[ResidentLine] = field(default_factory=list)
    relatives: list[RelativeLine] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.report.has_errors

    def counts(self) -> dict:
        return {
            "residents": len(self.residents), "stays": len(self.residents),
            "gir": sum(1 for r in self.residents if r.gir),
            "coverage_rules": sum(_rules_count(r) for r in self.residents),
            "relatives": len(self.relatives),
            "mandates": sum(1 for r in self.residents if r.mandate) + sum(1 for r in self.relatives if r.mandate),
            "mandates_active": sum(1 for r in [*self.residents, *self.relatives] if r.mandate == "active"),
            "errors": len(self.report.errors), "warnings": len(self.report.warnings),
        }

    def preview(self, limit: int = PREVIEW_ROWS) -> list[dict]:
        today = timezone.localdate()
        rows = []
        for line in self.residents[:limit]:
            age = None
            if line.birth_date:
                age = today.year - line.birth_date.year - (
                    (today.month, today.day) < (line.birth_date.month, line.birth_date.day))
            rows.append({"numero": line.numero, "name": f"{line.last_name.upper()} {line.first_name}".strip(),
                         "age": age, "section": line.section.alias if line.section else "",
                         "entry": line.entry_date.strftime("%d/%m/%Y") if line.entry_date else "",
                         "package": line.package.code if line.package else "", "gir": line.gir,
                         "payer": line.payer.code if line.payer else "",
                         "relatives": 0})
        by_numero = {r["numero"]: r for r in rows}
        for rel in self.relatives:
            if rel.numero in by_numero:
                by_numero[rel.numero]["relatives"] += 1
        return rows


def _rules_count(line: ResidentLine) -> int:
    if not line.payer:
        return 0
    return 2 if (line.social_aid and line.payer.kind == "departement") else 1


# ------------------------------------------------------------------------------------------ lookups
class Lookups:
    """Everything the validation needs from the database, fetched in a few queries."""

    def __init__(self, *, user=None):
        from billing.models import Package
        from payers.models import Payer
        from residents.models import Resident
        from sepa.models import Mandate
        from structures.access import Role, sections_for
        from structures.models import Section

        self.today = timezone.localdate()
        self.sections = {s.alias: s for s in Section.objects.select_related("establishment")}
        if user is None:
            self.allowed = set(self.sections)
        else:
            self.allowed = set(sections_for(user, Role.MANAGER).values_list("alias", flat=True))
        section_ids = [s.pk for s in self.sections.values()]
        self.packages: dict[tuple[int, str], Any] = {
            (p.section_id, p.code.upper()): p for p in Package.objects.filter(section_id__in=section_ids)}
        self.calendar_ready = set(Section.objects.filter(pk__in=section_ids, calendars__days__isnull=False)
                                  .values_list("pk", flat=True).distinct())
        org_ids = {s.establishment.organisation_id for s in self.sections.values()}
        self.payers: dict[tuple[int, str], Any] = {}
        for payer in Payer.objects.filter(organisation_id__in=org_ids).prefetch_related("groups"):
            payer.groups_by_code = {g.code.upper(): g for g in payer.groups.all()}
            self.payers[(payer.organisation_id, payer.code.upper())] = payer
        self.refs: set[tuple[int, str]] = set(
            Resident.objects.filter(organisation_id__in=org_ids).exclude(external_ref="")
            .values_list("organisation_id", "external_ref"))
        self.rums: set[tuple[int, str]] = {
            (est, rum.upper()) for est, rum in Mandate.objects.values_list("establishment_id", "rum")}


# ---------------------------------------------------------------------------------------- row reader
_MISSING = object()


class Cells:
    """Typed access to one row's cells; conversion problems go to the report with row and column."""

    def __init__(self, report: Report, table: Table, row: Row):
        self.report, self.table, self.row = report, table, row
        self.failed = False

    def raw(self, name: str) -> Any:
        return self.row.get(name)

    def error(self, name: str, message: str, value: Any = _MISSING) -> None:
        self.failed = True
        self.report.error(self.table.file, message, sheet=self.table.sheet, row=self.row.number, column=name,
                          value=self.raw(name) if value is _MISSING else value)

    def warning(self, name: str, message: str, value: Any = _MISSING) -> None:
        self.report.warning(self.table.file, message, sheet=self.table.sheet, row=self.row.number, column=name,
                            value=self.raw(name) if value is _MISSING else value)

    def _mandatory(self, name: str) -> None:
        if self.table.has(name):  # a missing column is reported once, with the header
            self.error(name, _("Valeur obligatoire."))
        else:
            self.failed = True

    def convert(self, name: str, func: Callable[[Any], Any], *, mandatory: bool = False, empty: Any = None) -> Any:
        raw = self.raw(name)
        if raw is None:
            if mandatory:
                self._mandatory(name)
            return empty
        try:
            value = func(raw)
        except CellError as exc:
            self.error(name, str(exc))
            return empty
        if mandatory and value in (None, ""):
            self._mandatory(name)
        return empty if value is None else value

    def text(self, name: str, max_length: int, *, mandatory: bool = False) -> str:
        return self.convert(name, lambda v: to_text(v, max_length=max_length), mandatory=mandatory, empty="")

    def date(self, name: str, *, mandatory: bool = False, not_future: bool = False, today: date | None = None):
        value = self.convert(name, to_date, mandatory=mandatory)
        if value is not None and value.year < 1900:
            self.error(name, _("Date invraisemblable (avant 1900)."))
            return None
        if value is not None and not_future and today and value > today:
            self.error(name, _("La date est dans le futur."))
            return None
        return value

    def bool(self, name: str) -> bool:
        return self.convert(name, to_bool, empty=False)

    def postal_code(self, name: str = "CODE_POSTAL") -> str:
        raw = self.raw(name)
        if isinstance(raw, (int, float)) and not isinstance(raw, bool) and float(raw).is_integer() \
                and 1000 <= raw < 10000:
            return f"{int(raw):05d}"  # 01000 typed as a number
        return self.text(name, 10)

    def phone(self, name: str = "TELEPHONE") -> str:
        raw = self.raw(name)
        if isinstance(raw, (int, float)) and not isinstance(raw, bool) and float(raw).is_integer() \
                and 100_000_000 <= raw < 1_000_000_000:
            return f"0{int(raw)}"  # 0612345678 typed as a number
        return self.text(name, 30)

    def civility(self) -> str:
        text = self.text("CIVILITE", 20)
        if not text:
            return ""
        key = strip_accents(text).upper().rstrip(".").replace(" ", "")
        if key not in CIVILITIES:
            self.error("CIVILITE", _("Civilité attendue : M ou MME."))
            return ""
        return CIVILITIES[key]

    def email(self) -> str:
        text = self.text("EMAIL", 254)
        if text:
            try:
                validate_email(text)
            except ValidationError:
                self.error("EMAIL", _("Adresse e-mail invalide."))
                return ""
        return text

    def bank(self, *, today: date) -> Bank:
        bank = Bank()
        iban_text = self.text("IBAN", 50)
        bank.iban_given = bool(iban_text) or self.raw("IBAN") is not None
        if iban_text:
            bank.iban, proposed = self._iban(iban_text)
        else:
            proposed = None
        bic_text = self.text("BIC", 20)
        if bic_text:
            bank.bic = self._bic(bic_text)
        elif bank.iban and proposed:
            self.warning("BIC", _("BIC non renseigné : d'après l'IBAN, ce pourrait être %(bic)s. Vérifiez-le et "
                                  "ajoutez-le au besoin (le mandat est créé sans BIC).") % {"bic": proposed}, value="")
        bank.holder = self.text("TITULAIRE_COMPTE", 70)
        rum = self.text("RUM", 200)
        if rum:
            from sepa.models import RUM_VALIDATOR

            if len(rum) > 35:
                self.error("RUM", _("RUM trop longue : %(n)s caractères pour 35 au plus.") % {"n": len(rum)})
            else:
                try:
                    RUM_VALIDATOR(rum)
                except ValidationError:
                    bad = "".join(dict.fromkeys(RUM_ALLOWED.findall(rum)))
                    self.error("RUM", _("RUM invalide : caractères autorisés A-Z a-z 0-9 / - ? : ( ) . , ' + et "
                                        "espace, sans « / » au début ou à la fin ni « // »%(bad)s.") % {
                        "bad": (_(" (refusés ici : %(chars)s)") % {"chars": bad}) if bad else ""})
                else:
                    bank.rum = rum
            if not iban_text:
                self.error("RUM", _("Une RUM est indiquée sans IBAN : indiquez l'IBAN du mandat."))
        bank.signature_date = self.date("DATE_SIGNATURE_MANDAT", not_future=True, today=today)
        if rum and bank.signature_date is None and self.raw("DATE_SIGNATURE_MANDAT") is None:
            self.error("DATE_SIGNATURE_MANDAT", _("Obligatoire quand une RUM est indiquée."))
        bank.last_collection = self.date("DERNIER_PRELEVEMENT", not_future=True, today=today)
        if bank.last_collection and bank.signature_date and bank.last_collection < bank.signature_date:
            self.error("DERNIER_PRELEVEMENT", _("Le dernier prélèvement ne peut pas précéder la signature du mandat "
                                                "(%(date)s).") % {"date": bank.signature_date.strftime("%d/%m/%Y")})
            bank.last_collection = None
        return bank

    def _iban(self, text: str) -> tuple[str, str | None]:
        from core.bank import iban_check

        try:
            return iban_check(text)
        except ValidationError as exc:
            self.error("IBAN", exc.messages[0])
            return "", None

    def _bic(self, text: str) -> str:
        from core.bank import validate_bic

        try:
            return validate_bic(text)
        except ValidationError as exc:
            self.error("BIC", exc.messages[0])
            return ""


# ---------------------------------------------------------------------------------------- validation
@dataclass
class _Seen:
    """What earlier rows of the file already used (duplicates are refused)."""

    numero: dict[str, int] = field(default_factory=dict)
    ref: dict[tuple[int, str], int] = field(default_factory=dict)
    warned_sections: set[str] = field(default_factory=set)


def _parse_residents(table: Table, report: Report, lookups: Lookups) -> list[ResidentLine]:
    lines: list[ResidentLine] = []
    seen = _Seen()
    for row in table.rows:
        cells = Cells(report, table, row)
        line = ResidentLine(row=row.number)
        _resident_numero(cells, line, seen)
        line.section = _resident_section(cells, lookups, seen)
        org_id = line.section.establishment.organisation_id if line.section else None
        _resident_external_ref(cells, line, lookups, seen, org_id)
        _resident_identity(cells, line, today=lookups.today)
        _resident_stay(cells, line, lookups)
        _resident_domicile(cells, line)
        _resident_payer(cells, line, lookups, org_id)
        _resident_payment(cells, line, today=lookups.today)
        lines.append(line)
    return lines


def _resident_numero(cells: Cells, line: ResidentLine, seen: _Seen) -> None:
    line.numero = cells.text("NUMERO", 40, mandatory=True)
    if not line.numero:
        return
    if line.numero in seen.numero:
        cells.error("NUMERO", _("NUMERO en double : déjà utilisé ligne %(row)s.") % {"row": seen.numero[line.numero]})
    else:
        seen.numero[line.numero] = line.row


def _resident_section(cells: Cells, lookups: Lookups, seen: _Seen):
    alias = cells.text("SECTION", 20, mandatory=True).upper()
    if not alias:
        return None
    section = lookups.sections.get(alias)
    if section is None:
        cells.error("SECTION", _("Section inconnue : aucune section de facturation n'a l'alias « %(alias)s ».")
                    % {"alias": alias})
        return None
    if alias not in lookups.allowed:
        cells.error("SECTION", _("Vous n'êtes pas responsable de la section « %(alias)s » : import "
                                 "impossible dans cette section.") % {"alias": alias})
        return None
    if not section.is_active:
        cells.error("SECTION", _("La section « %(alias)s » est inactive.") % {"alias": alias})
        return None
    if section.pk not in lookups.calendar_ready and alias not in seen.warned_sections:
        seen.warned_sections.add(alias)
        cells.error("SECTION", _("La section « %(alias)s » n'a pas de calendrier généré (prérequis de "
                                 "l'import : forfait, payeurs et calendrier).") % {"alias": alias})
    return section


def _resident_external_ref(cells: Cells, line: ResidentLine, lookups: Lookups, seen: _Seen, org_id) -> None:
    line.external_ref = cells.text("REF_EXTERNE", 60)
    if not (line.external_ref and org_id):
        return
    key = (org_id, line.external_ref)
    if key in seen.ref:
        cells.error("REF_EXTERNE", _("REF_EXTERNE en double : déjà utilisée ligne %(row)s.") % {"row": seen.ref[key]})
    elif key in lookups.refs:
        cells.error("REF_EXTERNE", _("Un résident de l'association a déjà cette référence externe : "
                                     "l'import ne crée que de nouveaux résidents."))
    seen.ref.setdefault(key, line.row)


def _resident_identity(cells: Cells, line: ResidentLine, *, today: date) -> None:
    line.civility = cells.civility()
    line.last_name = cells.text("NOM", 100, mandatory=True)
    line.birth_name = cells.text("NOM_NAISSANCE", 100)
    line.first_name = cells.text("PRENOM", 100, mandatory=True)
    line.birth_date = cells.date("DATE_NAISSANCE", mandatory=True, not_future=True, today=today)
    line.birth_place = cells.text("LIEU_NAISSANCE", 100)
    nir = cells.text("NIR", 40)
    if nir:
        from residents.validators import normalize_nir, validate_nir

        try:
            validate_nir(nir)
        except ValidationError:
            cells.error("NIR", _("NIR invalide : 15 caractères avec la clé, clé vérifiée."))
        else:
            line.nir = normalize_nir(nir)
    line.address = cells.text("ADRESSE", 200)
    line.postal_code = cells.postal_code()
    line.city = cells.text("VILLE", 100)
    line.phone = cells.phone()
    line.email = cells.email()


def _resident_stay(cells: Cells, line: ResidentLine, lookups: Lookups) -> None:
    """Entry date, accommodation package, room and GIR of the first stay."""
    section = line.section
    line.entry_date = cells.date("DATE_ENTREE", mandatory=True)
    if line.entry_date and line.birth_date and line.entry_date < line.birth_date:
        cells.error("DATE_ENTREE", _("La date d'entrée précède la date de naissance (%(birth)s).") % {
            "birth": line.birth_date.strftime("%d/%m/%Y")})
    code = cells.text("HEBERGEMENT", 20, mandatory=True)
    if code and section:
        line.package = lookups.packages.get((section.pk, code.upper()))
        if line.package is None:
            known = sorted(p.code for (sid, _code), p in lookups.packages.items() if sid == section.pk)
            cells.error("HEBERGEMENT", _("Aucun forfait d'hébergement « %(code)s » dans la section %(alias)s "
                                         "(forfaits : %(known)s).") % {
                "code": code, "alias": section.alias, "known": ", ".join(known) or _("aucun")})
    line.room = cells.text("CHAMBRE", 20)
    line.gir = cells.convert("GIR", lambda v: to_int(v, minimum=1, maximum=6))



def _resident_domicile(cells, line) -> None:
    """DOMICILE_SECOURS: the département paying APA and social aid (default: the establishment's)."""
    domicile = cells.text("DOMICILE_SECOURS", 10).upper()
    if domicile.isdigit() and len(domicile) == 1:
        domicile = "0" + domicile  # a number cell: 1 → 01
    if domicile:
        try:
            DEPARTEMENT_VALIDATOR(domicile)
        except ValidationError:
            cells.error("DOMICILE_SECOURS", _("Code de département invalide : 01 à 95, 2A, 2B ou 971 à 976."))
        else:
            line.domicile_secours = domicile
    elif line.section:
        line.domicile_secours = line.section.establishment.departement

def _resident_payer(cells: Cells, line: ResidentLine, lookups: Lookups, org_id) -> None:
    """The département paying (APA, social aid) and the GIR it needs."""
    payer_code = cells.text("PAYEUR", 20)
    line.social_aid = cells.bool("AIDE_SOCIALE")
    if payer_code and org_id:
        line.payer = lookups.payers.get((org_id, payer_code.upper()))
        if line.payer is None:
            cells.error("PAYEUR", _("Payeur inconnu : aucun payeur n'a le code « %(code)s ».") % {
                "code": payer_code})
        elif line.social_aid and "ASH" not in line.payer.groups_by_code:
            cells.error("PAYEUR", _("Le payeur %(code)s n'a pas de groupe ASH (aide sociale à l'hébergement) : "
                                    "AIDE_SOCIALE = 1 impossible avec ce payeur.") % {"code": line.payer.code})
    if line.social_aid and not payer_code:
        cells.error("AIDE_SOCIALE", _("AIDE_SOCIALE = 1 demande le PAYEUR (le département) qui prend "
                                      "l'hébergement en charge."))
    if line.package and line.package.dependency_by_gir and not line.gir:
        cells.warning("GIR", _("GIR non renseigné : le forfait %(code)s facture la dépendance selon le GIR, "
                               "à saisir avant la facturation.") % {"code": line.package.code}, value="")


def _resident_payment(cells: Cells, line: ResidentLine, *, today: date) -> None:
    """Payment mode, bank details and the SEPA mandate they lead to."""
    mode = cells.text("MODE_REGLEMENT", 20)
    if mode:
        key = strip_accents(mode).upper().replace(" ", "")
        if key not in PAYMENT_MODES:
            cells.error("MODE_REGLEMENT", _("Mode de règlement attendu : CHEQUE, VIREMENT, PRELEVEMENT ou "
                                            "ESPECES."))
        else:
            line.payment_mode = PAYMENT_MODES[key]
    line.bank = cells.bank(today=today)
    if line.bank.rum:
        line.mandate = "active"
    elif line.bank.iban and line.payment_mode == "direct_debit":
        line.mandate = "pending"
        if line.bank.signature_date:
            cells.warning("DATE_SIGNATURE_MANDAT", _("Date de signature ignorée sans RUM : le mandat créé avec "
                                                     "une RUM générée est à faire signer."))
    elif line.bank.iban:
        cells.warning("IBAN", _("IBAN non utilisé : ni RUM ni mode de règlement PRELEVEMENT, aucun mandat "
                                "n'est créé."))
    if line.bank.last_collection and not line.bank.rum:
        cells.warning("DERNIER_PRELEVEMENT", _("Date du dernier prélèvement ignorée sans RUM : seul un mandat repris "
                                               "(avec sa RUM) garde sa séquence."))


def _parse_relatives(table: Table, report: Report, lookups: Lookups,
                     residents: dict[str, ResidentLine] | None) -> list[RelativeLine]:
    lines: list[RelativeLine] = []
    recipients: dict[str, int] = {}
    payers: dict[str, int] = {}
    for row in table.rows:
        cells = Cells(report, table, row)
        line = RelativeLine(row=row.number)
        line.numero = cells.text("NUMERO", 40, mandatory=True)
        if line.numero and residents is not None and line.numero not in residents:
            cells.error("NUMERO", _("Aucun résident n'a ce NUMERO dans le fichier des résidents."))
        line.civility = cells.civility()
        line.last_name = cells.text("NOM", 100, mandatory=True)
        line.first_name = cells.text("PRENOM", 100)
        line.relationship = cells.text("LIEN", 60)
        line.address = cells.text("ADRESSE", 200)
        line.postal_code = cells.postal_code()
        line.city = cells.text("VILLE", 100)
        line.phone = cells.phone()
        line.email = cells.email()
        line.receives_invoices = cells.bool("DESTINATAIRE_FACTURES")
        if line.receives_invoices and line.numero:
            if line.numero in recipients:
                cells.error("DESTINATAIRE_FACTURES", _(
                    "Le résident %(numero)s a déjà un proche destinataire des factures (ligne %(row)s) : un seul "
                    "proche peut l'être.") % {"numero": line.numero, "row": recipients[line.numero]})
            else:
                recipients[line.numero] = row.number
        line.is_guardian = cells.bool("TUTEUR")
        line.is_payer = cells.bool("PAYEUR")
        if line.is_payer and line.numero:
            if line.numero in payers:
                cells.error("PAYEUR", _("Le résident %(numero)s a déjà un proche payeur (ligne %(row)s) : un seul "
                                        "proche peut être payeur.") % {
                    "numero": line.numero, "row": payers[line.numero]})
            else:
                payers[line.numero] = row.number
        line.bank = cells.bank(today=lookups.today)
        resident = residents.get(line.numero) if residents else None
        if line.bank.rum:
            line.mandate = "active"
        elif line.bank.iban and line.is_payer and resident is not None and resident.payment_mode == "direct_debit":
            line.mandate = "pending"
        elif line.bank.iban:
            cells.warning("IBAN", _("IBAN non utilisé : sans RUM, un mandat n'est créé que pour un proche PAYEUR = 1 "
                                    "d'un résident en PRELEVEMENT."))
        lines.append(line)
    return lines


def _cross_checks(plan: Plan, tables: dict[str, Table], report: Report, lookups: Lookups) -> None:
    """Rules across rows and files: direct debit needs an IBAN; RUM unique per creditor."""
    residents_table = tables["residents"]
    relatives_table = tables.get("relatives")
    debit_relatives = {r.numero for r in plan.relatives if r.is_payer and r.bank.iban}
    by_numero = {r.numero: r for r in plan.residents if r.numero}
    for line in plan.residents:
        # (an IBAN given but invalid is already reported on its own cell)
        if line.payment_mode == "direct_debit" and not line.bank.iban_given and line.numero not in debit_relatives:
            report.error(residents_table.file, _("IBAN obligatoire quand MODE_REGLEMENT vaut PRELEVEMENT (sur la ligne "
                                                 "du résident ou d'un proche PAYEUR = 1)."),
                         sheet=residents_table.sheet, row=line.row, column="IBAN", value="")
    seen: dict[tuple[int, str], str] = {}

    def check(rum: str, establishment_id: int, table: Table, row: int) -> None:
        key = (establishment_id, rum.upper())
        where = f"{table.file} ligne {row}"
        if key in lookups.rums:
            report.error(table.file, _("Cette RUM est déjà celle d'un mandat de l'établissement créancier."),
                         sheet=table.sheet, row=row, column="RUM", value=rum)
        elif key in seen:
            report.error(table.file, _("RUM en double pour le même créancier (déjà en %(where)s).") % {
                "where": seen[key]}, sheet=table.sheet, row=row, column="RUM", value=rum)
        else:
            seen[key] = where

    for line in plan.residents:
        if line.bank.rum and line.section:
            check(line.bank.rum, line.section.establishment_id, residents_table, line.row)
    for rel in plan.relatives:
        resident = by_numero.get(rel.numero)
        if rel.bank.rum and resident and resident.section and relatives_table:
            check(rel.bank.rum, resident.section.establishment_id, relatives_table, rel.row)


def residents_validate(*, residents: ImportFile, relatives: ImportFile | None = None, user=None,
                       progress: Callable | None = None) -> Plan:
    """Read and check both files completely; the plan carries the report and the parsed lines."""
    report = Report()
    plan = Plan(report=report)

    def reading(label):
        if progress is None:
            return None
        return lambda current, total: progress(current, total, label)

    table = read_xlsx_table(residents.source, filename=residents.name, columns=RESIDENT_COLUMNS, report=report,
                            progress=reading(_("Lecture du fichier des résidents")))
    relatives_table = None
    if relatives is not None:
        relatives_table = read_xlsx_table(relatives.source, filename=relatives.name, columns=RELATIVE_COLUMNS,
                                          report=report, progress=reading(_("Lecture du fichier des proches")))
    if progress:
        progress(0, None, _("Contrôles"))
    lookups = Lookups(user=user)
    if table is not None:
        if not table.rows:
            report.error(table.file, _("Aucun résident dans le fichier (seulement la ligne d'en-têtes)."),
                         sheet=table.sheet)
        plan.residents = _parse_residents(table, report, lookups)
    if relatives_table is not None:
        by_numero = {r.numero: r for r in plan.residents if r.numero} if table is not None else None
        plan.relatives = _parse_relatives(relatives_table, report, lookups, by_numero)
    if table is not None:
        _cross_checks(plan, {"residents": table, "relatives": relatives_table}, report, lookups)
    return plan


# ------------------------------------------------------------------------------------------- writing
def _generated_rum(base: str, used: set[str]) -> str:
    candidate, n = base, 1
    while candidate.upper() in used:
        n += 1
        suffix = f"-{n}"
        candidate = base[:35 - len(suffix)] + suffix
    used.add(candidate.upper())
    return candidate


def _rum_base(establishment_code: str, resident, suffix: str = "") -> str:
    ref = RUM_ALLOWED.sub("-", resident.external_ref).strip(" /") if resident.external_ref else ""
    ref = re.sub(r"/{2,}", "/", ref) or f"R{resident.pk}"
    room = 35 - len(establishment_code) - 1 - len(suffix)
    return f"{establishment_code}-{ref[:room].rstrip(' /')}{suffix}"


def _bulk(model, objs: list) -> list:
    """Insert ``objs`` in batches of :data:`BATCH`, primary keys set (the later rows point to them);
    one save per row on a database that cannot return the keys of a bulk insert."""
    if not connection.features.can_return_rows_from_bulk_insert:  # pragma: no cover - MySQL & co.
        for obj in objs:
            obj.save(force_insert=True)
        return objs
    return model.objects.bulk_create(objs, batch_size=BATCH)


def _create_residents(plan: Plan) -> list:
    """One resident per resident line, in the organisation of its section; DOMICILE_SECOURS defaults
    to the département of the establishment."""
    from residents.models import Resident

    return _bulk(Resident, [Resident(
        organisation_id=line.section.establishment.organisation_id, civility=line.civility,
        last_name=line.last_name, birth_name=line.birth_name, first_name=line.first_name,
        birth_date=line.birth_date, birth_place=line.birth_place, nir=line.nir, address=line.address,
        postal_code=line.postal_code, city=line.city, phone=line.phone, email=line.email,
        external_ref=line.external_ref, payment_mode=line.payment_mode,
        domicile_secours=line.domicile_secours or line.section.establishment.departement) for line in plan.residents])


def _create_stays(plan: Plan, residents: list) -> list:
    """Each resident's stay in the section of the line, from DATE_ENTREE, in CHAMBRE."""
    from residents.models import Stay

    return _bulk(Stay, [Stay(resident=resident, section=line.section, entry_date=line.entry_date, room=line.room)
                        for line, resident in zip(plan.residents, residents)])


def _create_gir_assessments(plan: Plan, residents: list) -> None:
    """The GIR of the line (when given), valid from the entry date."""
    from residents.models import GirAssessment

    _bulk(GirAssessment, [GirAssessment(resident=resident, gir=line.gir, valid_from=line.entry_date)
                          for line, resident in zip(plan.residents, residents) if line.gir])


def _create_stay_packages(plan: Plan, stays: list) -> None:
    """The accommodation package of HEBERGEMENT on each stay, valid from the entry date."""
    from billing.models import StayPackage

    _bulk(StayPackage, [StayPackage(stay=stay, package=line.package, valid_from=line.entry_date)
                        for line, stay in zip(plan.residents, stays)])


def _create_coverage_rules(plan: Plan, stays: list) -> list:
    """The coverage rules of every stay (:func:`_coverage_rules`)."""
    from payers.models import CoverageRule

    return _bulk(CoverageRule, [rule for line, stay in zip(plan.residents, stays)
                                for rule in _coverage_rules(line, stay)])


def _coverage_rules(line: ResidentLine, stay) -> list:
    """The rules of PAYEUR from the entry date: a département takes the dependency above the talon
    (group APA), any other payer everything unless AIDE_SOCIALE; with AIDE_SOCIALE the payer's ASH
    group takes the accommodation in full."""
    from payers.models import CoverageRule

    payer = line.payer
    if payer is None:
        return []
    groups = payer.groups_by_code
    rules = []
    if payer.kind == "departement":
        rules.append(CoverageRule(stay=stay, payer=payer, group=groups.get("APA"), scope="dependency",
                                  mode="above_talon", valid_from=line.entry_date, priority=10,
                                  decision_reference=_("Import")))
    elif not line.social_aid:
        rules.append(CoverageRule(stay=stay, payer=payer, scope="all", mode="all", valid_from=line.entry_date,
                                  priority=10, decision_reference=_("Import")))
    if line.social_aid:
        rules.append(CoverageRule(stay=stay, payer=payer, group=groups["ASH"], scope="accommodation",
                                  mode="all", valid_from=line.entry_date, priority=20,
                                  decision_reference=_("Import")))
    return rules


def _create_relatives(plan: Plan, by_numero: dict) -> list:
    """One relative per relative line, attached to the resident of the same NUMERO."""
    from residents.models import Relative

    return _bulk(Relative, [Relative(
        resident=by_numero[rel.numero][1], civility=rel.civility, last_name=rel.last_name,
        first_name=rel.first_name, relationship=rel.relationship, address=rel.address,
        postal_code=rel.postal_code, city=rel.city, phone=rel.phone, email=rel.email,
        receives_invoices=rel.receives_invoices, is_guardian=rel.is_guardian, is_payer=rel.is_payer)
        for rel in plan.relatives])


def _used_rums(plan: Plan, by_numero: dict) -> dict[int, set[str]]:
    """The RUMs already taken, by establishment (upper case): those of the database (one query) and
    those given in the files — a generated RUM must differ from all of them."""
    from sepa.models import Mandate

    used: dict[int, set[str]] = {}
    establishment_ids = {line.section.establishment_id for line in plan.residents}
    for est_id, rum in Mandate.objects.filter(establishment_id__in=establishment_ids).values_list(
            "establishment_id", "rum"):
        used.setdefault(est_id, set()).add(rum.upper())
    for line in [*plan.residents, *plan.relatives]:
        if line.bank.rum:
            est = (line if isinstance(line, ResidentLine) else by_numero[line.numero][0]).section.establishment_id
            used.setdefault(est, set()).add(line.bank.rum.upper())
    return used


def _new_mandate(line, resident_line: ResidentLine, resident, relative, used: dict[int, set[str]]):
    """The mandate of a resident or relative line: *active* with the given RUM, signature date and
    last collection (then RCUR), or *pending* with a generated RUM; the holder defaults to the person."""
    from sepa.models import Mandate

    establishment = resident_line.section.establishment
    holder = line.bank.holder or (f"{relative.last_name.upper()} {relative.first_name}".strip() if relative
                                  else f"{resident.last_name.upper()} {resident.first_name}".strip())
    if line.mandate == "active":
        rum, status, signed = line.bank.rum, Mandate.Status.ACTIVE, line.bank.signature_date
        last = line.bank.last_collection
    else:
        last = None
        suffix = f"-P{relative.pk}" if relative else ""
        rum = _generated_rum(_rum_base(establishment.code, resident, suffix), used.setdefault(establishment.pk,
                                                                                              set()))
        status, signed = Mandate.Status.PENDING, None
    return Mandate(establishment=establishment, resident=resident, relative=relative, rum=rum,
                   iban=line.bank.iban, bic=line.bank.bic, account_holder=holder[:140],
                   signature_date=signed, status=status, last_collection_date=last,
                   next_sequence_type=Mandate.SequenceType.RCUR if last else Mandate.SequenceType.FRST)


def _create_mandates(plan: Plan, residents: list, relatives: list, by_numero: dict) -> list:
    """The residents' mandates, then the relatives' (the generated RUMs are numbered in that order)."""
    from sepa.models import Mandate

    used = _used_rums(plan, by_numero)
    mandates = [_new_mandate(line, line, resident, None, used)
                for line, resident in zip(plan.residents, residents) if line.mandate]
    for rel, relative in zip(plan.relatives, relatives):
        if rel.mandate:
            resident_line, resident = by_numero[rel.numero]
            mandates.append(_new_mandate(rel, resident_line, resident, relative, used))
    return _bulk(Mandate, mandates)


def _mark_periods_stale(plan: Plan) -> None:
    """bulk_create sends no signal: mark the periods already generated that the new stays now
    concern, from the earliest entry date of each section."""
    from billing.services.stale import periods_mark_stale

    first_entry: dict[int, date] = {}
    for line in plan.residents:
        first_entry[line.section.pk] = min(line.entry_date, first_entry.get(line.section.pk, line.entry_date))
    for section_id, entry in first_entry.items():
        periods_mark_stale(section_ids=[section_id], start=entry)


def _create(plan: Plan, *, progress: Callable | None = None) -> dict:
    """Write a valid plan (the caller holds the transaction): residents, stays (GIR, package),
    coverage rules, relatives, mandates, then the stale periods; returns the counts created."""
    from sepa.models import Mandate

    total = len(plan.residents)
    step = lambda n, label: progress(n, total, label) if progress else None  # noqa: E731
    step(0, _("Création des résidents"))
    residents = _create_residents(plan)
    step(total // 4, _("Création des séjours"))
    stays = _create_stays(plan, residents)
    _create_gir_assessments(plan, residents)
    _create_stay_packages(plan, stays)
    rules = _create_coverage_rules(plan, stays)
    step(total // 2, _("Création des proches"))
    by_numero = {line.numero: (line, resident) for line, resident in zip(plan.residents, residents)}
    relatives = _create_relatives(plan, by_numero)
    step(3 * total // 4, _("Création des mandats"))
    mandates = _create_mandates(plan, residents, relatives, by_numero)
    _mark_periods_stale(plan)
    step(total, _("Import terminé"))
    return {"residents": len(residents), "stays": len(stays),
            "gir": sum(1 for line in plan.residents if line.gir), "coverage_rules": len(rules),
            "relatives": len(relatives), "mandates": len(mandates),
            "mandates_active": sum(1 for m in mandates if m.status == Mandate.Status.ACTIVE),
            "resident_ids": [r.pk for r in residents[:PREVIEW_ROWS]]}


@dataclass
class Outcome:
    report: Report
    summary: dict
    imported: bool
    plan: Plan | None = None


def residents_import(*, residents: ImportFile, relatives: ImportFile | None = None, user=None, dry_run: bool = False,
                     progress: Callable | None = None) -> Outcome:
    """Validate both files; if there is no error (and not ``dry_run``) create everything in one
    transaction. Nothing is written when any error is found."""
    plan = residents_validate(residents=residents, relatives=relatives, user=user, progress=progress)
    summary = plan.counts()
    if not plan.ok or dry_run:
        return Outcome(plan.report, summary, imported=False, plan=plan)
    try:
        with transaction.atomic():
            created = _create(plan, progress=progress)
    except DatabaseError as exc:  # e.g. a resident or RUM created by someone else since the checks
        plan.report.error(residents.name, _("Import annulé, rien n'a été écrit : la base a refusé les données "
                                            "(%(error)s). Relancez le contrôle puis l'import.") % {
            "error": str(exc).splitlines()[0][:200] if str(exc) else exc.__class__.__name__})
        summary["errors"] = len(plan.report.errors)
        return Outcome(plan.report, summary, imported=False, plan=plan)
    summary.update(created)
    return Outcome(plan.report, summary, imported=True, plan=plan)


def summary_lines(summary: dict, *, imported: bool) -> list[str]:
    verb = _("créé(s)") if imported else _("à créer")
    return [
        _("%(n)s résident(s) %(verb)s, avec %(n)s séjour(s)") % {"n": summary.get("residents", 0), "verb": verb},
        _("%(n)s évaluation(s) GIR") % {"n": summary.get("gir", 0)},
        _("%(n)s règle(s) de prise en charge (payeurs)") % {"n": summary.get("coverage_rules", 0)},
        _("%(n)s proche(s)") % {"n": summary.get("relatives", 0)},
        _("%(n)s mandat(s) SEPA dont %(a)s actif(s)") % {"n": summary.get("mandates", 0),
                                                         "a": summary.get("mandates_active", 0)},
    ]


# ------------------------------------------------------------------------------------- runs and jobs
def file_fingerprint(source: Path | str | IO[bytes]) -> dict:
    digest = hashlib.sha256()
    size = 0
    if isinstance(source, (str, Path)):
        with open(source, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
                size += len(chunk)
    else:
        source.seek(0)
        for chunk in iter(lambda: source.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
        source.seek(0)
    return {"size": size, "sha256": digest.hexdigest()}


def run_store_files(*, run, uploads: dict) -> None:
    """Keep the uploaded files under MEDIA_ROOT/imports/<run id>/ for the worker (and the record)."""
    from django.core.files.storage import default_storage

    files, stored = [], []
    for role, upload in uploads.items():
        if upload is None:
            continue
        digest = hashlib.sha256()
        for chunk in upload.chunks():
            digest.update(chunk)
        upload.seek(0)
        name = default_storage.save(f"imports/{run.pk}/{role}.xlsx", upload)
        files.append({"role": role, "name": Path(upload.name).name[:200], "size": upload.size,
                      "sha256": digest.hexdigest()})
        stored.append(name)
    run.files, run.stored_files = files, stored
    run.save(update_fields=["files", "stored_files"])


def residents_run_start(*, section, user, residents_upload, relatives_upload=None):
    """Record an ImportRun with its files and start the validation job (after commit)."""
    from core.services.jobs import job_create, job_enqueue
    from core.tasks import run_job

    from ..models import ImportRun

    run = ImportRun.objects.create(kind=ImportRun.Kind.RESIDENTS, status=ImportRun.Status.PENDING, section=section,
                                   establishment=section.establishment, created_by=user, dry_run=True)
    run_store_files(run=run, uploads={"residents": residents_upload, "relatives": relatives_upload})
    job = job_create(kind=JOB_KIND, user=user, section=section, params={"run_id": run.pk, "action": "validate"},
                     label=_("Contrôle de l'import des résidents n° %(n)s") % {"n": run.pk})
    run.job = job
    run.save(update_fields=["job"])
    job_enqueue(job=job, task=run_job)
    return run


def residents_run_confirm(*, run, user):
    """Start the import job of a validated run (once)."""
    from core.services.jobs import job_create, job_enqueue
    from core.tasks import run_job

    from ..models import ImportRun

    run = ImportRun.objects.select_for_update().get(pk=run.pk)
    if run.status != ImportRun.Status.VALIDATED:
        raise ValidationError(_("Cet import ne peut pas être confirmé (état : %(status)s).") % {
            "status": run.get_status_display()})
    if run.job and run.job.params.get("action") == "import" and not run.job.is_finished:
        raise ValidationError(_("L'import est déjà en cours."))
    job = job_create(kind=JOB_KIND, user=user, section=run.section,
                     params={"run_id": run.pk, "action": "import", "user_id": user.pk},
                     label=_("Import des résidents n° %(n)s") % {"n": run.pk})
    run.job = job
    run.dry_run = False
    run.save(update_fields=["job", "dry_run"])
    job_enqueue(job=job, task=run_job)
    return run


def _run_files(run) -> tuple[ImportFile, ImportFile | None]:
    from django.core.files.storage import default_storage

    names = {f["role"]: f["name"] for f in run.files}
    stored = {Path(p).stem: p for p in run.stored_files}
    from core.services.jobs import JobError

    if "residents" not in stored:
        raise JobError(_("Le fichier des résidents de cet import est introuvable."))

    def opened(role):
        try:
            return ImportFile(default_storage.open(stored[role], "rb"), names.get(role, f"{role}.xlsx"))
        except OSError as exc:
            raise JobError(_("Fichier conservé introuvable : %(name)s.") % {"name": stored[role]}) from exc

    return opened("residents"), (opened("relatives") if "relatives" in stored else None)


def residents_import_job(*, job, progress) -> dict:
    """Job runner: ``action`` "validate" (report, status validated/rejected) or "import" (re-validates,
    then writes in one transaction; status imported, rejected or failed)."""
    from django.contrib.auth import get_user_model

    from core.services.jobs import JobError

    from ..models import ImportRun

    run = ImportRun.objects.filter(pk=job.params.get("run_id")).first()
    if run is None:
        raise JobError(_("Import introuvable."))
    action = job.params.get("action", "validate")
    user_id = job.params.get("user_id") if action == "import" else run.created_by_id
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first() if user_id else None
    try:
        if user is None:
            raise JobError(_("Utilisateur inconnu ou inactif : import impossible."))
        residents, relatives = _run_files(run)
        try:
            with memory_limit(settings.IMPORT_JOB_MEMORY_BYTES):
                outcome = residents_import(residents=residents, relatives=relatives, user=user,
                                           dry_run=action != "import", progress=progress)
        except MemoryError as exc:
            raise JobError(memory_refusal()) from exc
        finally:
            for f in (residents, relatives):
                if f is not None:
                    f.source.close()
    except Exception as exc:
        ImportRun.objects.filter(pk=run.pk).update(
            status=ImportRun.Status.FAILED, summary={**run.summary, "failure": str(exc)[:500]})
        raise
    report = outcome.report
    summary = {k: v for k, v in outcome.summary.items() if k != "resident_ids"}
    if action == "import":
        summary["confirmed_by"] = user.get_username()
    summary["preview"] = outcome.plan.preview() if outcome.plan else []
    summary["truncated"] = max(0, len(report.issues) - REPORT_LIMIT)
    if outcome.imported:
        status = ImportRun.Status.IMPORTED
        summary["imported_at"] = timezone.now().isoformat()
        message = _("Import terminé : %(n)s résident(s) créé(s).") % {"n": outcome.summary["residents"]}
    elif report.has_errors:
        status = ImportRun.Status.REJECTED
        message = _("%(n)s erreur(s) : rien n'a été importé.") % {"n": len(report.errors)}
    else:
        status = ImportRun.Status.VALIDATED
        message = _("Fichiers valides : %(n)s résident(s) à importer. Vérifiez le rapport puis confirmez.") % {
            "n": outcome.summary["residents"]}
    ImportRun.objects.filter(pk=run.pk).update(status=status, summary=summary,
                                               report=report.as_list(limit=REPORT_LIMIT))
    return {"message": message, "run_id": run.pk, "status": status, "errors": len(report.errors),
            "warnings": len(report.warnings)}
