"""Monthly absences import (formats.md « Absences file » and « Correspondence table »).

``absences_import_validate`` reads the month's file, checks every rule and computes what the import
would do; ``absences_import_apply`` does it in one transaction and records an :class:`ImportRun`.

Which days belong to an import (so that re-importing a month replaces exactly them)
-----------------------------------------------------------------------------------
An imported absence that continues an absence ending on the last day of the previous month is
*joined* to it (its ``last_day`` is extended), so the day numbers of the 72-hour rule keep counting
from the real first day. A joined absence therefore mixes days of several origins. Ownership of a
day is derived, without any extra column, from ``source`` and ``import_month``:

* ``source = import``: every day belongs to the import of *its own* month (an import only ever
  writes days of its month; later months' days were added by joining). ``import_month`` is the
  month of ``first_day``.
* ``source = manual`` with ``import_month`` set: a hand-entered absence that an import extended;
  days before ``import_month`` were typed by hand, days from ``import_month`` on belong to the
  import of their month.
* ``source = manual`` without ``import_month``: every day was typed by hand; never touched.

Re-importing month M first removes the days of M owned by imports (trimming, splitting or deleting
absences), then lays the file's absences down and joins them again: the import never extends twice,
and importing the same file twice changes nothing.
"""
from __future__ import annotations

import calendar as pycal
import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Iterable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from billing.services.periods import month_label
from core.formats import fr_date
from residents.models import Absence, AbsenceReason, Resident, Stay
from structures.models import Section

from ..models import AbsenceCodeMapping, ImportRun
from .csvfiles import CsvFileError, normalise_header, read_table

IDENTITY_COLUMNS = ["ANNEE", "MOIS", "IDPERSONNE", "SECTION"]
DAY_COLUMNS = [str(d) for d in range(1, 32)]
ABSENCES_HEADER = IDENTITY_COLUMNS + DAY_COLUMNS
MAPPING_COLUMNS = ["CODEMR", "CODEEXT"]
MAX_REF = 60
ONE_DAY = timedelta(days=1)


def _month_start(day: date) -> date:
    return day.replace(day=1)


def file_info(data: bytes, name: str) -> dict:
    return {"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _error(file: str, row, column: str, value, message: str) -> dict:
    return {"file": file, "row": row, "column": column, "value": "" if value is None else str(value)[:80],
            "message": message}


# --------------------------------------------------------------------------------------------
# Correspondence table
# --------------------------------------------------------------------------------------------
@dataclass
class MappingResult:
    """External code → reason, from a file or from the saved table."""

    source: str  # "file" or "saved"
    codes: dict[str, AbsenceReason] = field(default_factory=dict)
    errors: list[dict] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    file: dict | None = None

    @property
    def ok(self) -> bool:
        return not self.errors


def absence_mapping_of(*, establishment) -> dict[str, AbsenceReason]:
    return {m.external_code: m.reason for m in
            AbsenceCodeMapping.objects.filter(establishment=establishment).select_related("reason")}


def absence_mapping_parse(*, establishment, data: bytes, name: str = "correspondance.csv") -> MappingResult:
    """Read a ``CODEMR;CODEEXT`` file; every error is reported with its row, column and value."""
    result = MappingResult(source="file", file=file_info(data, name))
    try:
        table = read_table(data, allow_space_delimiter=True)
    except CsvFileError as exc:
        result.errors.append(_error(name, None, "", "", str(exc)))
        return result
    result.file.update(encoding=table.encoding, delimiter=table.delimiter_name)
    header = [normalise_header(h) for h in table.header]
    positions = _header_positions(header, MAPPING_COLUMNS, file=name, line=table.header_line,
                                  errors=result.errors, warnings=result.warnings, expected=";".join(MAPPING_COLUMNS))
    if result.errors:
        return result
    reasons = {r.code: r for r in AbsenceReason.objects.filter(establishment=establishment)}
    known = ", ".join(sorted(reasons)) or _("aucun")
    seen: dict[str, int] = {}
    for row in table.rows:
        cells = row.cells + [""] * (len(header) - len(row.cells))
        codemr, codeext = cells[positions["CODEMR"]], cells[positions["CODEEXT"]]
        errors = []
        reason = None
        if not codemr:
            errors.append(_error(name, row.line, "CODEMR", codemr, _("Code du motif manquant.")))
        elif len(codemr) > 1:
            errors.append(_error(name, row.line, "CODEMR", codemr,
                                 _("Le code du motif doit tenir en 1 caractère.")))
        else:
            reason = reasons.get(codemr) or reasons.get(codemr.upper())
            if reason is None:
                errors.append(_error(name, row.line, "CODEMR", codemr, _(
                    "Le motif « %(code)s » n'existe pas dans l'établissement %(est)s (motifs : %(known)s).") % {
                    "code": codemr, "est": establishment.name, "known": known}))
        if not codeext:
            errors.append(_error(name, row.line, "CODEEXT", codeext, _("Code externe manquant.")))
        elif len(codeext) > 1:
            errors.append(_error(name, row.line, "CODEEXT", codeext,
                                 _("Le code externe doit tenir en 1 caractère.")))
        elif codeext in seen:
            errors.append(_error(name, row.line, "CODEEXT", codeext, _(
                "Le code externe « %(code)s » figure déjà ligne %(line)s.") % {"code": codeext, "line": seen[codeext]}))
        else:
            seen[codeext] = row.line
        if len(cells) > len(header) and any(cells[len(header):]):
            errors.append(_error(name, row.line, "", ";".join(cells[len(header):]),
                                 _("La ligne contient plus de colonnes que l'en-tête.")))
        result.errors.extend(errors)
        result.rows.append({"row": row.line, "codemr": codemr, "codeext": codeext,
                            "label": reason.label if reason else "", "errors": [e["message"] for e in errors]})
        if not errors:
            result.codes[codeext] = reason
    if not table.rows:
        result.errors.append(_error(name, None, "", "", _("Le tableau de correspondance ne contient aucune ligne.")))
    return result


def absence_mapping_save(*, establishment, codes: dict[str, AbsenceReason]) -> int:
    """Replace the establishment's correspondence table."""
    with transaction.atomic():
        AbsenceCodeMapping.objects.filter(establishment=establishment).delete()
        AbsenceCodeMapping.objects.bulk_create([
            AbsenceCodeMapping(establishment=establishment, external_code=code, reason=reason)
            for code, reason in sorted(codes.items())])
    return len(codes)


def absence_mapping_upload(*, establishment, data: bytes, name: str) -> MappingResult:
    """Parse and, when valid, save (the « tableau de correspondance » step on its own)."""
    result = absence_mapping_parse(establishment=establishment, data=data, name=name)
    if result.ok:
        absence_mapping_save(establishment=establishment, codes=result.codes)
    return result


def _header_positions(header: list[str], required: list[str], *, file: str, line: int, errors: list,
                      warnings: list, expected: str, optional: Iterable[str] = ()) -> dict[str, int]:
    positions: dict[str, int] = {}
    optional = set(optional)
    for index, name in enumerate(header):
        if not name:
            continue
        if name in positions:
            errors.append(_error(file, line, name, name, _(
                "La colonne « %(name)s » figure deux fois dans l'en-tête.") % {"name": name}))
            continue
        positions[name] = index
        if name not in required and name not in optional:
            warnings.append(_error(file, line, name, name, _("Colonne inconnue « %(name)s », ignorée.") % {
                "name": name}))
    missing = [name for name in required if name not in positions]
    if missing:
        looks_like_data = bool(header) and header[0].isdigit()
        if looks_like_data or len(missing) == len(required):
            errors.append(_error(file, line, "", ";".join(header)[:80], _(
                "En-tête manquant ou mal orthographié : la première ligne doit être « %(expected)s ».") % {
                "expected": expected}))
        else:
            for name in missing:
                errors.append(_error(file, line, name, "", _("Colonne obligatoire « %(name)s » absente de "
                                                             "l'en-tête.") % {"name": name}))
    return positions


# --------------------------------------------------------------------------------------------
# The plan: existing absences, the file's absences, joins
# --------------------------------------------------------------------------------------------
@dataclass
class Item:
    """An absence in the working set (existing row or one to create)."""

    pk: int | None
    stay_id: int
    resident_id: int
    section_id: int
    reason_id: int
    first: date
    last: date
    source: str
    import_month: date | None
    comment: str = ""
    original: tuple | None = None
    deleted: bool = False
    row: dict | None = None  # the report row of a new absence
    code: str = ""

    def state(self) -> tuple:
        return (self.stay_id, self.reason_id, self.first, self.last, self.source, self.import_month)

    def owned_from(self) -> date | None:
        """First day owned by imports (see the module docstring)."""
        if self.source == Absence.Source.IMPORT:
            return self.first
        if self.import_month:
            return max(self.first, self.import_month)
        return None


@dataclass
class Plan:
    """What the import changes. ``created``/``updated``/``deleted`` count absences as the user sees
    them; ``creates``/``updates``/``deletes`` are the rows written, where a removed imported row of a
    stay is reused for a new absence of the same stay (fewer deletions: each goes through Django's
    signals and the audit log)."""

    creates: list[Item] = field(default_factory=list)
    updates: list[Item] = field(default_factory=list)
    deletes: list[Item] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    deleted: int = 0
    joined: int = 0
    last_touched: date | None = None


@dataclass
class AbsencesValidation:
    section: Section
    start: date
    end: date
    file: dict
    mapping: MappingResult
    file_errors: list[dict] = field(default_factory=list)
    warnings: list[dict] = field(default_factory=list)
    rows: list[dict] = field(default_factory=list)
    plan: Plan | None = None
    absence_days: int = 0

    @property
    def error_count(self) -> int:
        return (len(self.file_errors) + len(self.mapping.errors)
                + sum(len(r["errors"]) for r in self.rows))

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    @property
    def rows_with_errors(self) -> int:
        return sum(1 for r in self.rows if r["errors"])

    @property
    def report(self) -> list[dict]:
        """Every line of the file with its errors (file-level and correspondence-table problems first)."""
        def entry(problem: dict, *, warning: bool) -> dict:
            detail = {k: problem[k] for k in ("column", "value", "message")}
            return {"file": problem["file"], "row": problem["row"], "ref": "", "resident": "", "days": "",
                    "absences": [], "errors": [] if warning else [detail], "warnings": [detail] if warning else []}

        entries = [entry(e, warning=False) for e in self.mapping.errors + self.file_errors]
        entries += [entry(w, warning=True) for w in self.mapping.warnings + self.warnings]
        entries.extend(self.rows)
        return entries

    @property
    def summary(self) -> dict:
        plan = self.plan
        return {
            "section": self.section.alias, "month": self.start.isoformat()[:7], "month_label": month_label(self.start),
            "lines": len(self.rows), "lines_with_errors": self.rows_with_errors, "errors": self.error_count,
            "residents": sum(1 for r in self.rows if r.get("resident_id")),
            "absence_days": self.absence_days,
            "absences": sum(len(r["absences"]) for r in self.rows),
            "mapping": self.mapping.source, "mapping_codes": len(self.mapping.codes),
            "created": plan.created if plan else 0, "updated": plan.updated if plan else 0,
            "deleted": plan.deleted if plan else 0, "joined": plan.joined if plan else 0,
        }


def absences_import_validate(*, section: Section, year: int, month: int, data: bytes,
                             name: str = "absences.csv", mapping_data: bytes | None = None,
                             mapping_name: str = "correspondance.csv") -> AbsencesValidation:
    """Read and check the whole file; compute the absences and what applying would change.

    ``mapping_data`` is a correspondence file to use (and save when applying); without it the
    establishment's saved table is used."""
    start = date(year, month, 1)
    end = date(year, month, pycal.monthrange(year, month)[1])
    establishment = section.establishment
    if mapping_data is not None:
        mapping = absence_mapping_parse(establishment=establishment, data=mapping_data, name=mapping_name)
    else:
        mapping = MappingResult(source="saved", codes=absence_mapping_of(establishment=establishment))
        if not mapping.codes:
            mapping.errors.append(_error(mapping_name, None, "", "", _(
                "Aucun tableau de correspondance n'est enregistré pour l'établissement %(est)s : joignez-le "
                "(fichier CODEMR;CODEEXT).") % {"est": establishment.name}))
    result = AbsencesValidation(section=section, start=start, end=end, file=file_info(data, name), mapping=mapping)
    try:
        table = read_table(data)
    except CsvFileError as exc:
        result.file_errors.append(_error(name, None, "", "", str(exc)))
        return result
    result.file.update(encoding=table.encoding, delimiter=table.delimiter_name)
    header = [normalise_header(h) for h in table.header]
    ndays = end.day
    required = IDENTITY_COLUMNS + DAY_COLUMNS[:ndays]
    positions = _header_positions(header, required, file=name, line=table.header_line,
                                  errors=result.file_errors, warnings=result.warnings,
                                  expected="ANNEE;MOIS;IDPERSONNE;SECTION;1;2;…;31", optional=DAY_COLUMNS[ndays:])
    if result.file_errors:
        return result
    if not table.rows:
        result.file_errors.append(_error(name, None, "", "", _("Le fichier ne contient aucune ligne d'absences.")))
        return result
    context = _load_context(section=section, start=start, end=end,
                            refs={_cell(row, positions, "IDPERSONNE") for row in table.rows})
    seen_refs: dict[str, int] = {}
    for row in table.rows:
        result.rows.append(_check_row(row=row, header=header, positions=positions, section=section, start=start,
                                      end=end, mapping=mapping, context=context, seen_refs=seen_refs, name=name))
    result.absence_days = sum(r.pop("_absent_days", 0) for r in result.rows)
    result.plan = _plan(result=result, context=context, section=section, start=start, end=end)
    return result


def _cell(row, positions: dict[str, int], column: str) -> str:
    index = positions[column]
    return row.cells[index] if index < len(row.cells) else ""


@dataclass
class _Context:
    stays_by_ref: dict[str, list[dict]]
    unknown_refs_with_resident: dict[str, str]  # ref → name, residents without a stay this month
    items: list[Item]
    items_by_resident: dict[int, list[Item]]
    reasons: dict[int, AbsenceReason]


def _chunks(values: list, size: int = 500):
    for i in range(0, len(values), size):
        yield values[i:i + size]


def _load_context(*, section: Section, start: date, end: date, refs: set[str]) -> _Context:
    stays = list(Stay.objects.filter(section=section, entry_date__lte=end)
                 .filter(Q(end_date__isnull=True) | Q(end_date__gte=start))
                 .values("pk", "resident_id", "entry_date", "end_date", "resident__external_ref",
                         "resident__last_name", "resident__first_name").order_by("entry_date", "pk"))
    stays_by_ref: dict[str, list[dict]] = defaultdict(list)
    resident_ids = set()
    for s in stays:
        resident_ids.add(s["resident_id"])
        if s["resident__external_ref"]:
            stays_by_ref[s["resident__external_ref"]].append(s)
    missing = [r for r in refs if r and r not in stays_by_ref and len(r) <= MAX_REF]
    other = {}
    for chunk in _chunks(missing):
        for ref, last, first in (Resident.objects.filter(organisation_id=section.establishment.organisation_id,
                                                         external_ref__in=chunk)
                                 .values_list("external_ref", "last_name", "first_name")):
            other[ref] = f"{last} {first}"
    items: list[Item] = []
    by_resident: dict[int, list[Item]] = defaultdict(list)
    ids = sorted(resident_ids)
    for chunk in _chunks(ids, 900):
        for a in (Absence.objects.filter(stay__resident_id__in=chunk, last_day__gte=start - ONE_DAY,
                                         first_day__lte=end + ONE_DAY)
                  .values("pk", "stay_id", "stay__resident_id", "stay__section_id", "reason_id", "first_day",
                          "last_day", "source", "import_month", "comment")):
            item = Item(pk=a["pk"], stay_id=a["stay_id"], resident_id=a["stay__resident_id"],
                        section_id=a["stay__section_id"], reason_id=a["reason_id"], first=a["first_day"],
                        last=a["last_day"], source=a["source"], import_month=a["import_month"], comment=a["comment"])
            item.original = item.state()
            items.append(item)
            by_resident[item.resident_id].append(item)
    reasons = {r.pk: r for r in AbsenceReason.objects.filter(pk__in={i.reason_id for i in items})}
    return _Context(stays_by_ref=stays_by_ref, unknown_refs_with_resident=other, items=items,
                    items_by_resident=by_resident, reasons=reasons)


def _row_error(errors: list[dict], column: str, value, message: str) -> None:
    """Add one error of the line (column, value shown on at most 80 characters, message)."""
    errors.append({"column": column, "value": "" if value is None else str(value)[:80], "message": message})


def _check_period(errors: list[dict], row, positions: dict[str, int], start: date) -> None:
    """ANNEE and MOIS: required, numbers, those of the imported month."""
    for column, expected, label in (("ANNEE", start.year, _("L'année")), ("MOIS", start.month, _("Le mois"))):
        text = _cell(row, positions, column)
        if not text:
            _row_error(errors, column, text, _("%(what)s est obligatoire.") % {"what": label})
        elif not text.isdigit():
            _row_error(errors, column, text, _("%(what)s doit être un nombre.") % {"what": label})
        elif int(text) != expected:
            _row_error(errors, column, text, _("%(what)s %(value)s ne correspond pas à la période importée "
                                               "(%(period)s).") % {"what": label, "value": text,
                                                                    "period": month_label(start)})


def _check_section(errors: list[dict], alias: str, section: Section) -> None:
    """SECTION: required, the imported section's alias (any case)."""
    if not alias:
        _row_error(errors, "SECTION", alias, _("La section est obligatoire."))
    elif alias.upper() != section.alias.upper():
        _row_error(errors, "SECTION", alias, _("La section « %(value)s » n'est pas celle importée (%(alias)s).") % {
            "value": alias, "alias": section.alias})


@dataclass
class _RowResident:
    """The resident a line names: their stays in the section that month (empty when unknown)."""
    stays: list[dict] = field(default_factory=list)
    resident_id: int | None = None
    name: str = ""


def _check_resident(errors: list[dict], ref: str, line: int, *, section: Section, start: date,
                    context: _Context, seen_refs: dict[str, int]) -> _RowResident:
    """IDPERSONNE: required, at most :data:`MAX_REF` characters, once in the file, a resident with a
    stay in the section during the month (the message tells a resident without such a stay from an
    unknown reference)."""
    if not ref:
        _row_error(errors, "IDPERSONNE", ref, _("La référence externe du résident (IDPERSONNE) est obligatoire."))
        return _RowResident()
    if len(ref) > MAX_REF:
        _row_error(errors, "IDPERSONNE", ref, _("La référence externe dépasse %(max)s caractères.") % {"max": MAX_REF})
        return _RowResident()
    if ref in seen_refs:
        _row_error(errors, "IDPERSONNE", ref, _("Le résident « %(ref)s » figure déjà ligne %(line)s (une ligne par "
                                                "résident et par mois).") % {"ref": ref, "line": seen_refs[ref]})
        return _RowResident()
    seen_refs[ref] = line
    stays = context.stays_by_ref.get(ref, [])
    if stays:
        return _RowResident(stays=stays, resident_id=stays[0]["resident_id"],
                            name=f'{stays[0]["resident__last_name"]} {stays[0]["resident__first_name"]}')
    if ref in context.unknown_refs_with_resident:
        name = context.unknown_refs_with_resident[ref]
        _row_error(errors, "IDPERSONNE", ref, _("%(name)s n'a pas de séjour dans la section %(alias)s en "
                                                "%(month)s.") % {"name": name, "alias": section.alias,
                                                                 "month": month_label(start)})
        return _RowResident(name=name)
    _row_error(errors, "IDPERSONNE", ref, _("Aucun résident n'a la référence externe « %(ref)s ».") % {"ref": ref})
    return _RowResident()


def _check_day_code(errors: list[dict], column: str, value: str, day: date, mapping: MappingResult,
                    resident: _RowResident) -> AbsenceReason | None:
    """One day cell: one character, a code of the correspondence table (unknown codes are ignored
    only when there is no table at all — that error is reported once for the file), within one of
    the resident's stays. Returns the reason of an absent day."""
    if len(value) > 1:
        _row_error(errors, column, value, _("Le code d'absence doit tenir en 1 caractère."))
        return None
    reason = mapping.codes.get(value)
    if reason is None:
        if mapping.codes or mapping.source == "file":
            _row_error(errors, column, value, _("Le code « %(code)s » est absent du tableau de correspondance.") % {
                "code": value})
        return None
    stays = resident.stays
    if stays and not any(s["entry_date"] <= day and (s["end_date"] is None or day <= s["end_date"]) for s in stays):
        _row_error(errors, column, value, _("Absence le %(day)s, en dehors du séjour de %(name)s (%(stays)s).") % {
            "day": fr_date(day), "name": resident.name, "stays": ", ".join(_stay_text(s) for s in stays)})
    return reason


def _check_days(errors: list[dict], row, positions: dict[str, int], *, start: date, end: date,
                mapping: MappingResult, resident: _RowResident) -> tuple[list, list[str]]:
    """Columns 1 to 31: a day after the end of the month must stay empty; every other filled cell is
    checked by :func:`_check_day_code`. Returns the reason of each day (``None``: present) and the
    codes as typed."""
    ndays = end.day
    days: list[AbsenceReason | None] = [None] * ndays
    codes: list[str] = [""] * ndays
    for d in range(1, 32):
        column = str(d)
        value = _cell(row, positions, column) if column in positions else ""
        if not value:
            continue
        if d > ndays:
            _row_error(errors, column, value, _("Le %(day)s %(month)s n'existe pas : la colonne doit rester vide.")
                       % {"day": d, "month": month_label(start)})
            continue
        codes[d - 1] = value
        days[d - 1] = _check_day_code(errors, column, value, start.replace(day=d), mapping, resident)
    return days, codes


def _check_extra_cells(errors: list[dict], row, header: list[str]) -> None:
    """Nothing filled beyond the header's columns (empty trailing cells are harmless)."""
    if len(row.cells) > len(header) and any(row.cells[len(header):]):
        _row_error(errors, "", ";".join(row.cells[len(header):]), _("La ligne contient plus de colonnes que "
                                                                    "l'en-tête."))


def _check_row(*, row, header, positions, section, start, end, mapping, context: _Context, seen_refs, name) -> dict:
    """Every rule of one line, each error reported in column order; the line's report entry (with the
    resident only when the line has no error, and its days for the plan)."""
    errors: list[dict] = []
    ref, alias = _cell(row, positions, "IDPERSONNE"), _cell(row, positions, "SECTION")
    _check_period(errors, row, positions, start)
    _check_section(errors, alias, section)
    resident = _check_resident(errors, ref, row.line, section=section, start=start, context=context,
                               seen_refs=seen_refs)
    days, codes = _check_days(errors, row, positions, start=start, end=end, mapping=mapping, resident=resident)
    _check_extra_cells(errors, row, header)
    return {"file": name, "row": row.line, "ref": ref, "section": alias, "resident": resident.name,
            "resident_id": resident.resident_id if not errors else None, "_stays": resident.stays, "_days": days,
            "days": "".join(c[:1] if c else "·" for c in codes),
            "absences": [], "errors": errors, "warnings": [],
            "_absent_days": sum(1 for r in days if r is not None)}


def _stay_text(stay: dict) -> str:
    if stay["end_date"]:
        return _("du %(a)s au %(b)s") % {"a": fr_date(stay["entry_date"]), "b": fr_date(stay["end_date"])}
    return _("depuis le %(a)s") % {"a": fr_date(stay["entry_date"])}


def _describe(item: Item, reasons: dict[int, AbsenceReason]) -> str:
    reason = reasons.get(item.reason_id)
    label = reason.label if reason else "?"
    kind = _("saisie à la main") if item.source == Absence.Source.MANUAL else _("importée")
    return _("« %(label)s du %(a)s au %(b)s » (%(kind)s)") % {"label": label, "a": fr_date(item.first),
                                                              "b": fr_date(item.last), "kind": kind}


def _plan(*, result: AbsencesValidation, context: _Context, section: Section, start: date, end: date) -> Plan:
    """What applying the file changes, in five steps (each a function below)."""
    reasons = dict(context.reasons)
    for reason in result.mapping.codes.values():
        reasons[reason.pk] = reason
    work: dict[int, list[Item]] = {rid: list(items) for rid, items in context.items_by_resident.items()}
    _plan_remove_owned_days(work, section=section, start=start, end=end)
    segments = _plan_file_segments(result.rows, section=section, start=start)
    _plan_overlap_errors(segments, work, reasons)
    plan = Plan()
    _plan_joins(segments, work, plan, reasons, start=start, end=end)
    _plan_keep_recreated_rows(work)
    _plan_differences(work, plan)
    return plan


def _plan_remove_owned_days(work: dict[int, list[Item]], *, section: Section, start: date, end: date) -> None:
    # 1. Remove the days of this month owned by imports, on this section's stays.
    for resident_items in work.values():
        for item in list(resident_items):
            if item.section_id != section.pk or item.last < start or item.first > end:
                continue
            owned = item.owned_from()
            if owned is None or owned > end:
                continue
            r_start, r_end = max(owned, start), min(item.last, end)
            if r_start > r_end:
                continue
            left = item.first < r_start
            right = item.last > r_end
            if left:
                old_last = item.last
                item.last = r_start - ONE_DAY
                if item.source == Absence.Source.MANUAL and owned >= r_start:
                    item.import_month = None
                if right:
                    resident_items.append(Item(
                        pk=None, stay_id=item.stay_id, resident_id=item.resident_id, section_id=item.section_id,
                        reason_id=item.reason_id, first=r_end + ONE_DAY, last=old_last,
                        source=Absence.Source.IMPORT, import_month=_month_start(r_end + ONE_DAY),
                        comment=item.comment))
            elif right:
                item.first = r_end + ONE_DAY
                item.source = Absence.Source.IMPORT
                item.import_month = _month_start(item.first)
            else:
                item.deleted = True


def _plan_file_segments(rows: list[dict], *, section: Section, start: date) -> list[Item]:
    # 2. The file's absences: consecutive days with the same reason on the same stay.
    segments: list[Item] = []
    for row in rows:
        days, stays = row.pop("_days"), row.pop("_stays")
        if row["resident_id"] is None:
            continue
        current: Item | None = None
        for index, reason in enumerate(days):
            day = start + timedelta(days=index)
            stay = next((s for s in stays if s["entry_date"] <= day and (s["end_date"] is None
                                                                         or day <= s["end_date"])), None)
            if reason is None or stay is None:
                current = None
                continue
            if current and current.reason_id == reason.pk and current.stay_id == stay["pk"]:
                current.last = day
                continue
            current = Item(pk=None, stay_id=stay["pk"], resident_id=row["resident_id"], section_id=section.pk,
                           reason_id=reason.pk, first=day, last=day, source=Absence.Source.IMPORT,
                           import_month=start, row=row, code=row["days"][index])
            segments.append(current)
    return segments


def _plan_overlap_errors(segments: list[Item], work: dict[int, list[Item]], reasons: dict) -> None:
    # 3. Overlaps with what remains (hand-entered days, other sections): an error naming both.
    for seg in segments:
        for other in work.get(seg.resident_id, []):
            if other.deleted or other.first > seg.last or other.last < seg.first:
                continue
            clash = max(seg.first, other.first)
            seg.row["errors"].append({
                "column": str(clash.day), "value": seg.code, "message": _(
                    "L'absence du fichier du %(a)s au %(b)s (%(reason)s) chevauche l'absence %(other)s du même "
                    "résident : corrigez le fichier ou l'absence saisie.") % {
                    "a": fr_date(seg.first), "b": fr_date(seg.last), "reason": reasons[seg.reason_id].label,
                    "other": _describe(other, reasons)}})


def _plan_joins(segments: list[Item], work: dict[int, list[Item]], plan: Plan, reasons: dict, *, start: date,
                end: date) -> None:
    # 4. Joins: continue an absence ending on the previous month's last day (and, after a split,
    #    an imported absence starting on the next month's first day).
    for seg in segments:
        if seg.row["errors"]:
            continue
        items = work.setdefault(seg.resident_id, [])
        target = seg
        joined_from = None
        file_first, file_last = seg.first, seg.last
        if seg.first == start:
            previous = next((i for i in items if not i.deleted and i.stay_id == seg.stay_id
                             and i.reason_id == seg.reason_id and i.last == start - ONE_DAY), None)
            if previous is not None:
                previous.last = seg.last
                if previous.source == Absence.Source.MANUAL and previous.import_month is None:
                    previous.import_month = start
                target = previous
                joined_from = previous.first
                plan.joined += 1
        if seg.last == end:
            following = next((i for i in items if not i.deleted and i is not target and i.stay_id == seg.stay_id
                              and i.reason_id == seg.reason_id and i.first == end + ONE_DAY
                              and i.owned_from() == i.first), None)
            if following is not None:
                target.last = following.last
                following.deleted = True
        if target is seg:
            items.append(seg)
        seg.row["absences"].append({
            "reason": reasons[seg.reason_id].code, "label": reasons[seg.reason_id].label, "code": seg.code,
            "first": file_first.isoformat(), "last": file_last.isoformat(),
            "days": (file_last - file_first).days + 1,
            "joined_from": joined_from.isoformat() if joined_from else "",
            "text": _("%(label)s (%(code)s) du %(a)s au %(b)s, %(n)s j") % {
                "label": reasons[seg.reason_id].label, "code": reasons[seg.reason_id].code, "a": fr_date(file_first),
                "b": fr_date(file_last), "n": (file_last - file_first).days + 1},
            "joined_text": _("prolonge l'absence commencée le %(day)s") % {"day": fr_date(joined_from)}
            if joined_from else ""})


def _plan_keep_recreated_rows(work: dict[int, list[Item]]) -> None:
    # 5. Differences with the database (an absence re-created identically keeps its row).
    recreated = {}
    for items in work.values():
        for item in items:
            if item.pk is not None and item.deleted:
                recreated.setdefault(item.original, item)
    for items in work.values():
        for item in items:
            if item.deleted:
                continue
            if item.pk is None:
                twin = recreated.pop(item.state(), None)
                if twin is not None:  # same stay, reason, dates and origin: keep the existing row
                    (twin.stay_id, twin.reason_id, twin.first, twin.last, twin.source,
                     twin.import_month) = twin.original
                    twin.deleted = False
                    item.deleted = True


def _plan_differences(work: dict[int, list[Item]], plan: Plan) -> None:
    """Creates, updates and deletes against the database; a deleted row is reused for a creation on the
    same stay (fewer statements)."""
    creates, updates, deletes = [], [], []
    for items in work.values():
        for item in items:
            if item.pk is None:
                if not item.deleted:
                    creates.append(item)
            elif item.deleted:
                deletes.append(item)
            elif item.state() != item.original:
                updates.append(item)
    plan.created, plan.updated, plan.deleted = len(creates), len(updates), len(deletes)
    touched = [i.last for i in creates + updates] + [i.original[3] for i in deletes + updates]
    plan.last_touched = max(touched) if touched else None
    spare: dict[int, list[Item]] = defaultdict(list)
    for item in deletes:
        spare[item.stay_id].append(item)
    for item in creates:
        if spare[item.stay_id]:
            row = spare[item.stay_id].pop()
            row.deleted = False
            row.reason_id, row.first, row.last, row.source, row.import_month, row.comment = (
                item.reason_id, item.first, item.last, item.source, item.import_month, item.comment)
            updates.append(row)
        else:
            plan.creates.append(item)
    plan.deletes = [i for i in deletes if i.deleted]
    plan.updates = updates


# --------------------------------------------------------------------------------------------
# Applying and recording
# --------------------------------------------------------------------------------------------
# The stored report (ImportRun.report, shown on the page) is bounded: a small file keeps every line; a
# big one keeps its first lines in error, at most REPORT_PER_KIND per kind of error (the column), up to
# REPORT_LIMIT lines. The full report is an XLSX written by the validation job (REPORT_ROLE).
REPORT_LIMIT = 500
REPORT_PER_KIND = 50
REPORT_ROLE = "report"


def _kinds(entry: dict) -> set[str]:
    return {problem.get("column") or "" for problem in entry["errors"] or entry["warnings"]}


def report_bounded(entries: list[dict], *, limit: int | None = None, per_kind: int | None = None) -> list[dict]:
    limit = REPORT_LIMIT if limit is None else limit
    per_kind = REPORT_PER_KIND if per_kind is None else per_kind
    if len(entries) <= limit:
        return entries
    kept, seen = [], defaultdict(int)
    for entry in entries:
        kinds = _kinds(entry) if (entry["errors"] or entry["warnings"]) else set()
        if kinds and any(seen[kind] < per_kind for kind in kinds):
            for kind in kinds:
                seen[kind] += 1
            kept.append(entry)
            if len(kept) >= limit:
                break
    return kept


def errors_by_column(entries: list[dict]) -> dict[str, int]:
    """How many errors of each kind (column; "" for the file itself) the whole report holds."""
    counts: dict[str, int] = defaultdict(int)
    for entry in entries:
        for problem in entry["errors"]:
            counts[problem.get("column") or ""] += 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


REPORT_HEADERS = ("Fichier", "Ligne", "IDPERSONNE", "Résident", "Jours", "Absences lues", "Erreurs",
                  "Avertissements")


def _problem_text(problem: dict) -> str:
    where = f"{problem['column']} " if problem.get("column") else ""
    value = f"« {problem['value']} » " if problem.get("value") not in (None, "") else ""
    return f"{where}{value}: {problem['message']}" if where or value else problem["message"]


def report_xlsx(entries: Iterable[dict]) -> bytes:
    """The full report, one line per line of the file, through the shared (formula-safe) writer."""
    from core.exports import xlsx_bytes

    rows = ([entry["file"], entry["row"], entry["ref"], entry["resident"], entry["days"],
             "\n".join(a.get("text", "") if isinstance(a, dict) else str(a) for a in entry["absences"]),
             "\n".join(_problem_text(e) for e in entry["errors"]),
             "\n".join(_problem_text(w) for w in entry["warnings"])] for entry in entries)
    return xlsx_bytes(_("Rapport"), rows, headers=REPORT_HEADERS, widths=(18, 8, 16, 30, 34, 50, 60, 40))


class AbsencesImportError(Exception):
    """The file has errors: nothing was written (``run`` holds the report)."""

    def __init__(self, message: str, run: ImportRun | None = None, validation: AbsencesValidation | None = None):
        super().__init__(message)
        self.run = run
        self.validation = validation


def _files_of(validation: AbsencesValidation) -> list[dict]:
    files = [{"role": "absences", **validation.file}]
    if validation.mapping.file:
        files.append({"role": "mapping", **validation.mapping.file})
    return files


def absences_import_record(*, validation: AbsencesValidation, user=None, dry_run: bool = False,
                           status: str | None = None, run: ImportRun | None = None,
                           stored_files: list | None = None, extra_summary: dict | None = None) -> ImportRun:
    """Create (or update) the :class:`ImportRun` of a validation."""
    run = run or ImportRun(kind=ImportRun.Kind.ABSENCES)
    run.section = validation.section
    run.establishment = validation.section.establishment
    run.month = validation.start
    run.files = _files_of(validation)
    if stored_files is not None:
        run.stored_files = stored_files
    run.dry_run = dry_run
    run.status = status or (ImportRun.Status.VALIDATED if validation.ok else ImportRun.Status.REJECTED)
    full = validation.report
    run.report = report_bounded(full)
    run.summary = {**validation.summary, **(extra_summary or {}), "report_total": len(full),
                   "report_kept": len(run.report), "errors_by_column": errors_by_column(full)}
    if run.created_by_id is None and user is not None and getattr(user, "is_authenticated", False):
        run.created_by = user
    run.save()
    return run


def absences_import_apply(*, section: Section, year: int, month: int, data: bytes, name: str = "absences.csv",
                          mapping_data: bytes | None = None, mapping_name: str = "correspondance.csv",
                          user=None, run: ImportRun | None = None, regenerate: str = "inline") -> ImportRun:
    """Validate again and, without any error, replace the month's imported absences of ``section`` in
    one transaction (saving the correspondence table when one is given), record the run, then
    regenerate the drafts of the open periods concerned: ``regenerate`` is ``"inline"``
    (``period_generate`` now), ``"job"`` (the billing generation job) or ``"none"``.

    Raises :class:`AbsencesImportError` (with the rejected run) when the file has errors."""
    with transaction.atomic():
        Section.objects.select_for_update().filter(pk=section.pk).first()  # one import per section at a time
        validation = absences_import_validate(section=section, year=year, month=month, data=data, name=name,
                                              mapping_data=mapping_data, mapping_name=mapping_name)
        if validation.ok:
            _execute(validation.plan)
            # bulk writes send no signal: mark the drafts concerned stale (regeneration below clears it).
            from billing.services.stale import periods_mark_stale

            start = validation.start
            periods_mark_stale(section_ids=[section.pk], start=start, end=max(
                validation.plan.last_touched or start,
                date(start.year, start.month, pycal.monthrange(start.year, start.month)[1])))
            if validation.mapping.source == "file":
                absence_mapping_save(establishment=section.establishment, codes=validation.mapping.codes)
            run = absences_import_record(validation=validation, user=user, status=ImportRun.Status.IMPORTED,
                                         run=run)
    if not validation.ok:
        rejected = absences_import_record(validation=validation, user=user, status=ImportRun.Status.REJECTED,
                                          run=run)
        raise AbsencesImportError(_("Le fichier contient %(n)s erreur(s) : rien n'a été importé.") % {
            "n": validation.error_count}, run=rejected, validation=validation)
    regenerated = _regenerate(section=section, start=validation.start, plan=validation.plan, mode=regenerate,
                              user=user)
    run.summary = {**run.summary, "regenerated": regenerated}
    run.save(update_fields=["summary"])
    return run


def _execute(plan: Plan) -> None:
    if plan.deletes:
        for chunk in _chunks([i.pk for i in plan.deletes], 900):
            Absence.objects.filter(pk__in=chunk).delete()
    if plan.updates:
        # One executemany statement: Django's bulk_update builds a CASE per row and field, which is
        # slow for thousands of rows.
        from django.db import connection

        meta = Absence._meta
        columns = [meta.get_field(f).column for f in ("reason", "first_day", "last_day", "source", "import_month",
                                                        "comment")]
        quote = connection.ops.quote_name
        sql = (f"UPDATE {quote(meta.db_table)} SET " + ", ".join(f"{quote(c)} = %s" for c in columns)
               + f" WHERE {quote(meta.pk.column)} = %s")
        adapt = connection.ops.adapt_datefield_value
        with connection.cursor() as cursor:
            cursor.executemany(sql, [(i.reason_id, adapt(i.first), adapt(i.last), i.source, adapt(i.import_month),
                                      i.comment, i.pk) for i in plan.updates])
    if plan.creates:
        Absence.objects.bulk_create([
            Absence(stay_id=i.stay_id, reason_id=i.reason_id, first_day=i.first, last_day=i.last, source=i.source,
                    import_month=i.import_month, comment=i.comment) for i in plan.creates], batch_size=200)


def _regenerate(*, section: Section, start: date, plan: Plan, mode: str, user=None) -> list[dict]:
    """Open periods of the section from ``start`` to the last day touched that already have drafts."""
    if mode == "none":
        return []
    from billing.models import BillingPeriod, Invoice

    last = max(plan.last_touched or start, date(start.year, start.month, pycal.monthrange(start.year,
                                                                                       start.month)[1]))
    periods = list(BillingPeriod.objects.filter(
        section=section, status=BillingPeriod.Status.OPEN, start__lte=last, end__gte=start,
        invoices__status=Invoice.Status.DRAFT).distinct().order_by("start"))
    done = []
    for period in periods:
        if mode == "job":
            from core.services import jobs as job_services
            from core.tasks import run_job

            job = job_services.job_create(kind="billing.generate", user=user, section=section,
                                          label=_("Génération %(alias)s %(label)s (après import des absences)") % {
                                              "alias": section.alias, "label": period.label},
                                          params={"period_id": period.pk})
            job_services.job_enqueue(job=job, task=run_job)
            done.append({"period": period.pk, "label": period.label, "job": job.pk})
            continue
        from billing.services.generation import period_generate

        try:
            result = period_generate(period=period)
        except ValidationError as exc:
            done.append({"period": period.pk, "label": period.label, "error": " ".join(exc.messages)})
        else:
            done.append({"period": period.pk, "label": period.label, "drafts": result["drafts"]})
    return done


# --------------------------------------------------------------------------------------------
# Browser steps: upload (store + validate), then confirm (the Valider button)
# --------------------------------------------------------------------------------------------
def _store(run: ImportRun, role: str, name: str, data: bytes) -> dict:
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[-80:] or "fichier.csv"
    path = default_storage.save(f"imports/absences/{run.pk}/{role}-{safe}", ContentFile(data))
    return {"role": role, "name": name, "path": path}


def _read_stored(run: ImportRun, role: str) -> tuple[bytes, str] | None:
    from django.core.files.storage import default_storage

    for entry in run.stored_files or []:
        if entry.get("role") == role:
            with default_storage.open(entry["path"], "rb") as fh:
                return fh.read(), entry["name"]
    return None


ABSENCES_JOB_KIND = "imports.absences"


def absences_run_start(*, section: Section, year: int, month: int, data: bytes, name: str,
                       mapping_data: bytes | None = None, mapping_name: str = "correspondance.csv",
                       user=None) -> ImportRun:
    """First step in the browser: keep the files (MEDIA_ROOT/imports/absences/<run id>/) and start the
    validation job (after commit); the run stays *pending* until the job has read the file."""
    from core.services.jobs import job_create, job_enqueue
    from core.tasks import run_job

    run = ImportRun.objects.create(
        kind=ImportRun.Kind.ABSENCES, status=ImportRun.Status.PENDING, section=section,
        establishment=section.establishment, month=date(year, month, 1), dry_run=False,
        created_by=user if getattr(user, "is_authenticated", False) else None,
        files=[{"role": "absences", **file_info(data, name)}]
        + ([{"role": "mapping", **file_info(mapping_data, mapping_name)}] if mapping_data is not None else []))
    stored = [_store(run, "absences", name, data)]
    if mapping_data is not None:
        stored.append(_store(run, "mapping", mapping_name, mapping_data))
    job = job_create(kind=ABSENCES_JOB_KIND, user=user, section=section, params={"run_id": run.pk},
                     label=_("Contrôle du fichier des absences n° %(n)s") % {"n": run.pk})
    run.stored_files, run.job = stored, job
    run.save(update_fields=["stored_files", "job"])
    job_enqueue(job=job, task=run_job)
    return run


def absences_confirm_start(*, run: ImportRun, user) -> ImportRun:
    """Valider in the browser: start the job that validates the stored files again and applies them."""
    from core.services.jobs import job_create, job_enqueue
    from core.tasks import run_job

    with transaction.atomic():
        run = ImportRun.objects.select_for_update().get(pk=run.pk)  # no join: PostgreSQL refuses FOR UPDATE on one
        if run.kind != ImportRun.Kind.ABSENCES or run.status != ImportRun.Status.VALIDATED:
            raise AbsencesImportError(_("Cet import n'est pas en attente de validation (état : %(status)s).") % {
                "status": run.get_status_display()}, run=run)
        if run.job and run.job.params.get("action") == "import" and not run.job.is_finished:
            raise AbsencesImportError(_("L'import est déjà en cours."), run=run)
        job = job_create(kind=ABSENCES_JOB_KIND, user=user, section=run.section,
                         params={"run_id": run.pk, "action": "import", "user_id": user.pk},
                         label=_("Import des absences n° %(n)s") % {"n": run.pk})
        run.job = job
        run.save(update_fields=["job"])
    job_enqueue(job=job, task=run_job)
    return run


def _absences_import_job(run: ImportRun, job) -> dict:
    from django.contrib.auth import get_user_model

    from core.services.jobs import JobError

    user = get_user_model().objects.filter(pk=job.params.get("user_id"), is_active=True).first()
    if user is None:
        raise JobError(_("Utilisateur inconnu ou inactif : import impossible."))
    try:
        run = absences_import_confirm(run=run, user=user, regenerate="job")
    except AbsencesImportError as exc:
        return {"message": str(exc), "run_id": run.pk, "status": (exc.run or run).status}
    summary = run.summary
    message = _("Absences de %(month_label)s importées : %(absences)s absence(s) lue(s) — %(created)s créée(s), "
                "%(updated)s modifiée(s), %(deleted)s remplacée(s), dont %(joined)s prolongation(s) d'une absence "
                "du mois précédent.") % summary
    if summary.get("regenerated"):
        message += " " + _("Recalcul des factures brouillon lancé : %(periods)s.") % {
            "periods": ", ".join(p["label"] for p in summary["regenerated"])}
    return {"message": message, "run_id": run.pk, "status": run.status}


def absences_validate_job(*, job, progress) -> dict:
    """Job runner "imports.absences": validate the stored files of the run, save a valid correspondence
    table given with them, record the (bounded) report and write the full one as an XLSX file; with
    ``action`` "import" (Valider), validate again and apply (``absences_import_confirm``)."""
    from django.conf import settings
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from core.limits import memory_limit, memory_refusal
    from core.services.jobs import JobError

    run = ImportRun.objects.filter(pk=job.params.get("run_id"), kind=ImportRun.Kind.ABSENCES).select_related(
        "section__establishment").first()
    if run is None or run.section is None:
        raise JobError(_("Import introuvable."))
    stored = _read_stored(run, "absences")
    if stored is None:
        raise JobError(_("Le fichier de cet import n'est plus disponible : déposez-le à nouveau."))
    if job.params.get("action") == "import":
        progress(0, 1, _("Contrôle et enregistrement des absences"))
        return _absences_import_job(run, job)
    mapping = _read_stored(run, "mapping")
    progress(0, 2, _("Lecture et contrôle du fichier"))
    try:
        with memory_limit(settings.IMPORT_JOB_MEMORY_BYTES):
            validation = absences_import_validate(
                section=run.section, year=run.month.year, month=run.month.month, data=stored[0], name=stored[1],
                mapping_data=mapping[0] if mapping else None,
                mapping_name=mapping[1] if mapping else "correspondance.csv")
    except MemoryError as exc:
        ImportRun.objects.filter(pk=run.pk).update(status=ImportRun.Status.FAILED)
        raise JobError(memory_refusal()) from exc
    extra = {}
    if mapping is not None and validation.mapping.ok:
        absence_mapping_save(establishment=run.section.establishment, codes=validation.mapping.codes)
        extra["mapping_saved"] = len(validation.mapping.codes)
    progress(1, 2, _("Écriture du rapport"))
    report_path = default_storage.save(f"imports/absences/{run.pk}/rapport-{run.pk}.xlsx",
                                       ContentFile(report_xlsx(validation.report)))
    stored_files = [*(run.stored_files or []), {"role": REPORT_ROLE, "name": "rapport.xlsx", "path": report_path}]
    run = absences_import_record(validation=validation, run=run, stored_files=stored_files, extra_summary=extra)
    if validation.ok:
        message = _("Fichier lu sans erreur : %(lines)s ligne(s), %(absences)s absence(s). Vérifiez puis cliquez "
                    "sur Valider.") % validation.summary
    else:
        message = _("Le fichier contient %(n)s erreur(s) : corrigez-le puis déposez-le à nouveau (le bouton "
                    "Valider reste verrouillé).") % {"n": validation.error_count}
    return {"message": message, "run_id": run.pk, "status": run.status, "file": report_path,
            "errors": validation.error_count}


def absences_import_confirm(*, run: ImportRun, user=None, regenerate: str = "job") -> ImportRun:
    """Second step (Valider): the stored files are read and validated again against the current data
    (the server refuses while any error remains), then applied."""
    if run.kind != ImportRun.Kind.ABSENCES or run.status != ImportRun.Status.VALIDATED:
        raise AbsencesImportError(_("Cet import n'est pas en attente de validation (état : %(status)s).") % {
            "status": run.get_status_display()}, run=run)
    stored = _read_stored(run, "absences")
    if stored is None:
        raise AbsencesImportError(_("Le fichier de cet import n'est plus disponible : déposez-le à nouveau."), run=run)
    data, name = stored
    mapping = _read_stored(run, "mapping")
    return absences_import_apply(
        section=run.section, year=run.month.year, month=run.month.month, data=data, name=name,
        mapping_data=mapping[0] if mapping else None, mapping_name=mapping[1] if mapping else "correspondance.csv",
        user=user, run=run, regenerate=regenerate)
