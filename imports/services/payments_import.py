"""Payments import (CSV): a bank's or a payer's list of payments, allocated by the billing rules.

Columns (header on the first line, any order, ``;`` ``,`` or tab):
``DATE*;MONTANT*;MODE*;FACTURE;REF_EXTERNE;PAYEUR;REFERENCE;TIREUR;COMMENTAIRE``. Each line names
exactly one of FACTURE (an invoice number of the section), REF_EXTERNE (a resident's external
reference: the payment goes to the debtor of the resident's invoices — the paying relative when
there is one) or PAYEUR (a payer's code). All or nothing: one error and nothing is written; the
report names file, line, column and value in French. A line identical to an existing payment
(date, amount, reference, debtor) — or to an earlier line of the file — is an error unless
``allow_duplicates``.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from django.utils.translation import gettext as _

from billing.models import Invoice, Payment, PaymentAllocation
from billing.services.payments import Debtor, NewPayment, payments_record_bulk, unpaid_q
from core.money import ZERO, format_euros, to_decimal
from payers.models import Payer
from residents.models import Relative, Resident
from structures.models import Section

from ..models import ImportRun
from .csvfiles import CsvFileError, normalise_header, read_table

COLUMNS = ["DATE", "MONTANT", "MODE", "FACTURE", "REF_EXTERNE", "PAYEUR", "REFERENCE", "TIREUR", "COMMENTAIRE"]
REQUIRED = ["DATE", "MONTANT", "MODE"]
TARGETS = ["FACTURE", "REF_EXTERNE", "PAYEUR"]
MODES = {
    "CHEQUE": Payment.Mode.CHEQUE, "CHÈQUE": Payment.Mode.CHEQUE, "CHQ": Payment.Mode.CHEQUE,
    "VIREMENT": Payment.Mode.TRANSFER, "VIR": Payment.Mode.TRANSFER,
    "ESPECES": Payment.Mode.CASH, "ESPÈCES": Payment.Mode.CASH, "ESP": Payment.Mode.CASH,
    "PRELEVEMENT": Payment.Mode.DIRECT_DEBIT, "PRÉLÈVEMENT": Payment.Mode.DIRECT_DEBIT, "PRLV": Payment.Mode.DIRECT_DEBIT,
    "PAYEUR": Payment.Mode.PAYER,
}
MAX_TEXT = {"REFERENCE": 80, "TIREUR": 120, "COMMENTAIRE": 250}


@dataclass
class PlannedPayment(NewPayment):
    debtor_label: str = ""


@dataclass
class PaymentsValidation:
    section: Section
    file: dict
    report: list[dict] = field(default_factory=list)  # [{"file", "row", "errors": [{column, value, message}]}]
    planned: list[PlannedPayment] = field(default_factory=list)

    @property
    def error_count(self) -> int:
        return sum(len(e["errors"]) for e in self.report)

    @property
    def ok(self) -> bool:
        return self.error_count == 0

    def error(self, row, column: str, value, message: str) -> None:
        entry = next((e for e in self.report if e["row"] == row), None)
        if entry is None:
            entry = {"file": self.file["name"], "row": row, "errors": [], "warnings": []}
            self.report.append(entry)
        entry["errors"].append({"column": column, "value": "" if value is None else str(value)[:80],
                                "message": message})

    def summary(self) -> dict:
        total = sum((p.amount for p in self.planned), ZERO)
        return {"section": self.section.alias, "lines": len(self.planned), "total": str(total),
                "total_label": format_euros(total)}


def _parse_date(value: str) -> date | None:
    for fmt in ("%d/%m/%Y", "%Y-%m-%d", "%d/%m/%y"):
        try:
            return datetime.strptime(value, fmt).date()
        except ValueError:
            continue
    return None


@dataclass
class _Columns:
    """Where each known column sits in the file's header (normalised names)."""
    positions: dict[str, int]

    def cell(self, row, column: str) -> str:
        """The trimmed text of ``column`` on ``row``; ``""`` when the column is absent or the line short."""
        i = self.positions.get(column)
        return row.cells[i].strip() if i is not None and i < len(row.cells) else ""


@dataclass
class _Lookups:
    """Everything the lines refer to, fetched once for the whole file (a constant number of queries)."""
    section: Section
    invoices: dict[str, Invoice]  # by number, upper case
    residents: dict[str, Resident]  # by external reference
    latest: dict[int, Invoice]  # resident id → their latest issued invoice (not a payer's)
    paying: dict[int, Relative]  # resident id → their paying relative
    payers: dict[str, Payer]  # by code, upper case


def _read_header(result: PaymentsValidation, data: bytes):
    """Read the CSV and check its header: the required columns are there, no unknown column, at least
    one line. Returns ``(table, columns)``, or ``None`` with the errors in ``result``."""
    try:
        table = read_table(data)
    except CsvFileError as exc:
        result.error(None, "", "", str(exc))
        return None
    header = [normalise_header(h) for h in table.header]
    positions = {h: i for i, h in enumerate(header) if h}
    for column in REQUIRED:
        if column not in positions:
            result.error(table.header_line, column, "", _("Colonne obligatoire absente : %(col)s.") % {"col": column})
    unknown = [h for h in header if h and h not in COLUMNS]
    for h in unknown:
        result.error(table.header_line, h, h, _("Colonne inconnue (colonnes attendues : %(cols)s).") % {
            "cols": ", ".join(COLUMNS)})
    if not result.ok:
        return None
    if not table.rows:
        result.error(None, "", "", _("Le fichier ne contient aucune ligne de règlement."))
        return None
    return table, _Columns(positions)


def _invoices_by_number(section: Section, numbers: set[str]) -> dict[str, Invoice]:
    """The section's invoices named in FACTURE, by upper-case number: one query, plus one only when a
    number is typed in another case than stored."""
    invoices = {i.number.upper(): i for i in Invoice.objects.filter(section=section, number__in=numbers)}
    missing = {n for n in numbers if n.upper() not in invoices}
    if missing:
        for inv in Invoice.objects.filter(section=section, number__iregex=r"^(" + "|".join(
                re.escape(n) for n in missing) + r")$"):
            invoices[inv.number.upper()] = inv
    return invoices


def _resident_debtors(section: Section, residents: dict[str, Resident]):
    """For the residents named in REF_EXTERNE: their latest issued invoice of the section (invoice or
    rappel, not a payer's), and their paying relative — two queries."""
    latest: dict[int, Invoice] = {}
    for inv in (Invoice.objects.filter(section=section, resident__in=residents.values(), kind__in=(
            Invoice.Kind.INVOICE, Invoice.Kind.RAPPEL)).exclude(status=Invoice.Status.DRAFT)
            .exclude(debtor_kind=Invoice.DebtorKind.PAYER).select_related("relative").order_by("issue_date", "pk")):
        latest[inv.resident_id] = inv
    paying = {r.resident_id: r for r in Relative.objects.filter(resident__in=residents.values(), is_payer=True)
              .order_by("pk")}
    return latest, paying


def _load_lookups(section: Section, rows, columns: _Columns) -> _Lookups:
    """Fetch once the invoices, residents (with a stay in the section), their debtors and the payers
    that the file's lines name."""
    organisation = section.establishment.organisation
    numbers = {columns.cell(r, "FACTURE") for r in rows} - {""}
    refs = {columns.cell(r, "REF_EXTERNE") for r in rows} - {""}
    codes = {columns.cell(r, "PAYEUR").upper() for r in rows} - {""}
    invoices = _invoices_by_number(section, numbers)
    residents = {r.external_ref: r for r in Resident.objects.filter(organisation=organisation, external_ref__in=refs,
                                                                      stays__section=section).distinct()}
    latest, paying = _resident_debtors(section, residents)
    payers = {p.code.upper(): p for p in Payer.objects.filter(organisation=organisation)
              if p.code.upper() in codes}
    return _Lookups(section=section, invoices=invoices, residents=residents, latest=latest, paying=paying,
                    payers=payers)


def _check_date(result: PaymentsValidation, line: int, raw: str) -> date | None:
    """DATE: required, JJ/MM/AAAA (also AAAA-MM-JJ and JJ/MM/AA)."""
    on = _parse_date(raw) if raw else None
    if not raw:
        result.error(line, "DATE", raw, _("La date est obligatoire."))
    elif on is None:
        result.error(line, "DATE", raw, _("Date invalide : attendu JJ/MM/AAAA."))
    return on


def _check_amount(result: PaymentsValidation, line: int, raw: str) -> Decimal | None:
    """MONTANT: required, a decimal number (``1234,56``), positive, at most two decimals."""
    if not raw:
        result.error(line, "MONTANT", raw, _("Le montant est obligatoire."))
        return None
    try:
        amount = to_decimal(raw)
    except ValueError:
        result.error(line, "MONTANT", raw, _("Montant invalide (ex. 1234,56)."))
        return None
    if amount <= 0:
        result.error(line, "MONTANT", raw, _("Le montant doit être positif."))
        return None
    if amount != amount.quantize(Decimal("0.01")):
        result.error(line, "MONTANT", raw, _("Au plus deux décimales."))
        return None
    return amount


def _check_mode(result: PaymentsValidation, line: int, raw: str) -> str | None:
    """MODE: required, one of :data:`MODES` (any case) or a stored mode value."""
    mode = MODES.get(raw.upper()) or (raw if raw in Payment.Mode.values else None)
    if not raw:
        result.error(line, "MODE", raw, _("Le mode est obligatoire."))
    elif mode is None:
        result.error(line, "MODE", raw, _("Mode inconnu : CHEQUE, VIREMENT, ESPECES, PRELEVEMENT ou PAYEUR."))
    return mode


def _check_text_lengths(result: PaymentsValidation, row, columns: _Columns) -> None:
    """REFERENCE, TIREUR, COMMENTAIRE: at most :data:`MAX_TEXT` characters."""
    for column, limit in MAX_TEXT.items():
        if len(columns.cell(row, column)) > limit:
            result.error(row.line, column, columns.cell(row, column), _("Au plus %(n)s caractères.") % {"n": limit})


def _invoice_debtor(result: PaymentsValidation, line: int, value: str, lookups: _Lookups):
    """FACTURE: an invoice of the section (any case), issued and not a credit note; the payment goes
    to its debtor. Returns ``(debtor, label, invoice)``."""
    invoice = lookups.invoices.get(value.upper())
    if invoice is None:
        result.error(line, "FACTURE", value, _("Facture inconnue dans la section %(s)s.") % {
            "s": lookups.section.alias})
        return None, "", None
    if invoice.kind == Invoice.Kind.CREDIT_NOTE or invoice.status != Invoice.Status.ISSUED:
        result.error(line, "FACTURE", value, _("Ce n'est pas une facture émise à régler (%(state)s).") % {
            "state": invoice.get_status_display() if invoice.kind != Invoice.Kind.CREDIT_NOTE else _("avoir")})
        return None, "", None
    return Debtor.of(invoice), invoice.debtor_name, invoice


def _resident_debtor(result: PaymentsValidation, line: int, value: str, lookups: _Lookups):
    """REF_EXTERNE: a resident with a stay in the section; the debtor is that of their latest issued
    invoice, else their paying relative, else the resident. Returns ``(debtor, label)``."""
    section = lookups.section
    resident = lookups.residents.get(value)
    if resident is None:
        result.error(line, "REF_EXTERNE", value, _("Aucun résident de la section %(s)s n'a cette référence.")
                     % {"s": section.alias})
        return None, ""
    if resident.pk in lookups.latest:
        latest = lookups.latest[resident.pk]
        return Debtor.of(latest), latest.debtor_name
    if resident.pk in lookups.paying:
        relative = lookups.paying[resident.pk]
        return Debtor(section.pk, Invoice.DebtorKind.RELATIVE, resident_id=resident.pk,
                      relative_id=relative.pk), str(relative)
    return Debtor(section.pk, Invoice.DebtorKind.RESIDENT, resident_id=resident.pk), resident.full_name


def _payer_debtor(result: PaymentsValidation, line: int, value: str, lookups: _Lookups):
    """PAYEUR: a payer code of the association (any case). Returns ``(debtor, label)``."""
    payer = lookups.payers.get(value.upper())
    if payer is None:
        result.error(line, "PAYEUR", value, _("Code payeur inconnu."))
        return None, ""
    return Debtor(lookups.section.pk, Invoice.DebtorKind.PAYER, payer_id=payer.pk), payer.name


def _check_debtor(result: PaymentsValidation, row, columns: _Columns, lookups: _Lookups):
    """Exactly one of FACTURE, REF_EXTERNE and PAYEUR, which gives the debtor.
    Returns ``(debtor, label, invoice)``; ``debtor`` is ``None`` on error."""
    given = [c for c in TARGETS if columns.cell(row, c)]
    if len(given) != 1:
        result.error(row.line, "FACTURE", " / ".join(columns.cell(row, c) for c in given),
                     _("Indiquez une et une seule des colonnes FACTURE, REF_EXTERNE ou PAYEUR."))
        return None, "", None
    value = columns.cell(row, given[0])
    if given[0] == "FACTURE":
        return _invoice_debtor(result, row.line, value, lookups)
    if given[0] == "REF_EXTERNE":
        return (*_resident_debtor(result, row.line, value, lookups), None)
    return (*_payer_debtor(result, row.line, value, lookups), None)


def _check_line(result: PaymentsValidation, row, columns: _Columns, lookups: _Lookups) -> PlannedPayment | None:
    """Every column of one line (each error reported, in column order); the planned payment when the
    line is valid, else ``None``."""
    on = _check_date(result, row.line, columns.cell(row, "DATE"))
    amount = _check_amount(result, row.line, columns.cell(row, "MONTANT"))
    mode = _check_mode(result, row.line, columns.cell(row, "MODE"))
    _check_text_lengths(result, row, columns)
    debtor, label, invoice = _check_debtor(result, row, columns, lookups)
    if debtor is None or on is None or amount is None or mode is None:
        return None
    return PlannedPayment(row=row.line, on=on, amount=amount, mode=mode, debtor=debtor, debtor_label=label,
                          invoice=invoice, reference=columns.cell(row, "REFERENCE"),
                          drawer=columns.cell(row, "TIREUR"), comment=columns.cell(row, "COMMENTAIRE"))


def _duplicate_key(planned: PlannedPayment) -> tuple:
    """What makes two payments the same: date, amount, reference, debtor."""
    return planned.on, planned.amount, planned.reference, planned.debtor


def _check_file_duplicate(result: PaymentsValidation, planned: PlannedPayment, seen: set[tuple]) -> None:
    """A line identical to an earlier line of the file is an error (the earlier one is kept)."""
    key = _duplicate_key(planned)
    if key in seen:
        result.error(planned.row, "REFERENCE", planned.reference, _("Ligne identique à une ligne précédente du "
                                                                    "fichier (date, montant, référence, débiteur)."))
    seen.add(key)


def _check_stored_duplicates(result: PaymentsValidation, keys: set[tuple]) -> None:
    """A line identical to a payment already recorded (not cancelled) is an error: one query for the
    whole file, on the dates of ``keys``."""
    dates = {k[0] for k in keys}
    stored = {(p.date, p.amount, p.reference, Debtor.of(p))
              for p in Payment.objects.filter(section=result.section, kind=Payment.Kind.PAYMENT, date__in=dates,
                                              cancelled_at__isnull=True)}
    for planned in result.planned:
        if _duplicate_key(planned) in stored:
            result.error(planned.row, "REFERENCE", planned.reference,
                         _("Un règlement identique existe déjà (date, montant, référence, débiteur) : "
                           "utilisez --allow-duplicates / « Accepter les doublons » s'il est voulu."))


def payments_import_validate(*, section: Section, data: bytes, name: str = "reglements.csv",
                             allow_duplicates: bool = False) -> PaymentsValidation:
    """Read and check the whole file; a constant number of queries (lookups are preloaded).

    Steps: the header (:func:`_read_header`), the lookups (:func:`_load_lookups`), every line
    (:func:`_check_line`), then — unless ``allow_duplicates`` — duplicates within the file and with the
    payments already recorded. The report is sorted by line (file-level errors first)."""
    result = PaymentsValidation(section=section, file={"name": name, "size": len(data),
                                                       "sha256": hashlib.sha256(data).hexdigest()})
    read = _read_header(result, data)
    if read is None:
        return result
    table, columns = read
    lookups = _load_lookups(section, table.rows, columns)
    seen: set[tuple] = set()
    for row in table.rows:
        planned = _check_line(result, row, columns, lookups)
        if planned is None:
            continue
        if not allow_duplicates:
            _check_file_duplicate(result, planned, seen)
        result.planned.append(planned)
    if seen:
        _check_stored_duplicates(result, seen)
    result.report.sort(key=lambda e: (e["row"] is not None, e["row"] or 0))
    return result


class PaymentsImportError(Exception):
    def __init__(self, message: str, run: ImportRun):
        super().__init__(message)
        self.run = run


def payments_import_apply(*, section: Section, data: bytes, name: str = "reglements.csv", user=None,
                          dry_run: bool = False, allow_duplicates: bool = False) -> ImportRun:
    """Validate, then (unless ``dry_run``) record every payment in one transaction; the run is kept."""
    validation = payments_import_validate(section=section, data=data, name=name, allow_duplicates=allow_duplicates)
    user = user if (user and user.is_authenticated) else None
    run = ImportRun(kind=ImportRun.Kind.PAYMENTS, section=section, establishment=section.establishment,
                    files=[validation.file], dry_run=dry_run, report=validation.report,
                    summary=validation.summary(), created_by=user)
    if not validation.ok:
        run.status = ImportRun.Status.REJECTED
        run.save()
        raise PaymentsImportError(_("%(n)s erreur(s) : le fichier ne peut pas être importé.") % {
            "n": validation.error_count}, run)
    if dry_run:
        run.status = ImportRun.Status.VALIDATED
        run.save()
        return run
    try:
        with transaction.atomic():
            # In bulk: the debtors' open invoices locked once, allocations computed in memory (the rule
            # of ``payment_record``), rows written per batch — the query count does not grow with the lines.
            payments = payments_record_bulk(section=section, payments=validation.planned, user=user)
            # What was not allocated (credit), in one query for the whole file.
            allocated = (PaymentAllocation.objects.filter(payment_id__in=[p.pk for p in payments])
                         .aggregate(s=Sum("amount"))["s"] or ZERO)
            credit = sum((p.amount for p in validation.planned), ZERO) - allocated
            run.status = ImportRun.Status.IMPORTED
            run.summary = {**run.summary, "credit": str(credit), "credit_label": format_euros(credit),
                           "open_left": Invoice.objects.filter(unpaid_q(), section=section).count()}
            run.save()
    except ValidationError as exc:  # an invoice changed between validation and recording
        run.status = ImportRun.Status.REJECTED
        run.report = [{"file": validation.file["name"], "row": None, "warnings": [],
                       "errors": [{"column": "", "value": "", "message": m} for m in exc.messages]}]
        run.save()
        raise PaymentsImportError(_("%(n)s erreur(s) : le fichier ne peut pas être importé.") % {
            "n": len(exc.messages)}, run) from exc
    return run
