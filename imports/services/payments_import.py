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


def payments_import_validate(*, section: Section, data: bytes, name: str = "reglements.csv",
                             allow_duplicates: bool = False) -> PaymentsValidation:
    """Read and check the whole file; a constant number of queries (lookups are preloaded)."""
    result = PaymentsValidation(section=section, file={"name": name, "size": len(data),
                                                       "sha256": hashlib.sha256(data).hexdigest()})
    try:
        table = read_table(data)
    except CsvFileError as exc:
        result.error(None, "", "", str(exc))
        return result
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
        return result
    if not table.rows:
        result.error(None, "", "", _("Le fichier ne contient aucune ligne de règlement."))
        return result

    def cell(row, column):
        i = positions.get(column)
        return row.cells[i].strip() if i is not None and i < len(row.cells) else ""

    organisation = section.establishment.organisation
    numbers = {cell(r, "FACTURE") for r in table.rows} - {""}
    refs = {cell(r, "REF_EXTERNE") for r in table.rows} - {""}
    codes = {cell(r, "PAYEUR").upper() for r in table.rows} - {""}
    invoices = {i.number.upper(): i for i in Invoice.objects.filter(section=section, number__in=numbers)}
    # Numbers typed in another case: one more query only when needed.
    missing = {n for n in numbers if n.upper() not in invoices}
    if missing:
        for inv in Invoice.objects.filter(section=section, number__iregex=r"^(" + "|".join(
                re.escape(n) for n in missing) + r")$"):
            invoices[inv.number.upper()] = inv
    residents = {r.external_ref: r for r in Resident.objects.filter(organisation=organisation, external_ref__in=refs,
                                                                      stays__section=section).distinct()}
    # The debtor of a resident's invoices: that of their latest issued invoice, else the paying relative.
    latest: dict[int, Invoice] = {}
    for inv in (Invoice.objects.filter(section=section, resident__in=residents.values(), kind__in=(
            Invoice.Kind.INVOICE, Invoice.Kind.RAPPEL)).exclude(status=Invoice.Status.DRAFT)
            .exclude(debtor_kind=Invoice.DebtorKind.PAYER).select_related("relative").order_by("issue_date", "pk")):
        latest[inv.resident_id] = inv
    paying = {r.resident_id: r for r in Relative.objects.filter(resident__in=residents.values(), is_payer=True)
              .order_by("pk")}
    payers = {p.code.upper(): p for p in Payer.objects.filter(organisation=organisation)
              if p.code.upper() in codes}
    seen: set[tuple] = set()
    existing = set()
    for row in table.rows:
        line = row.line
        raw_date, raw_amount, raw_mode = cell(row, "DATE"), cell(row, "MONTANT"), cell(row, "MODE")
        on = _parse_date(raw_date) if raw_date else None
        if not raw_date:
            result.error(line, "DATE", raw_date, _("La date est obligatoire."))
        elif on is None:
            result.error(line, "DATE", raw_date, _("Date invalide : attendu JJ/MM/AAAA."))
        amount = None
        if not raw_amount:
            result.error(line, "MONTANT", raw_amount, _("Le montant est obligatoire."))
        else:
            try:
                amount = to_decimal(raw_amount)
            except ValueError:
                result.error(line, "MONTANT", raw_amount, _("Montant invalide (ex. 1234,56)."))
            else:
                if amount <= 0:
                    result.error(line, "MONTANT", raw_amount, _("Le montant doit être positif."))
                    amount = None
                elif amount != amount.quantize(Decimal("0.01")):
                    result.error(line, "MONTANT", raw_amount, _("Au plus deux décimales."))
                    amount = None
        mode = MODES.get(raw_mode.upper()) or (raw_mode if raw_mode in Payment.Mode.values else None)
        if not raw_mode:
            result.error(line, "MODE", raw_mode, _("Le mode est obligatoire."))
        elif mode is None:
            result.error(line, "MODE", raw_mode, _("Mode inconnu : CHEQUE, VIREMENT, ESPECES, PRELEVEMENT ou PAYEUR."))
        for column, limit in MAX_TEXT.items():
            if len(cell(row, column)) > limit:
                result.error(line, column, cell(row, column), _("Au plus %(n)s caractères.") % {"n": limit})
        given = [c for c in TARGETS if cell(row, c)]
        debtor, label, invoice = None, "", None
        if len(given) != 1:
            result.error(line, "FACTURE", " / ".join(cell(row, c) for c in given),
                         _("Indiquez une et une seule des colonnes FACTURE, REF_EXTERNE ou PAYEUR."))
        elif given[0] == "FACTURE":
            value = cell(row, "FACTURE")
            invoice = invoices.get(value.upper())
            if invoice is None:
                result.error(line, "FACTURE", value, _("Facture inconnue dans la section %(s)s.") % {"s": section.alias})
            elif invoice.kind == Invoice.Kind.CREDIT_NOTE or invoice.status != Invoice.Status.ISSUED:
                result.error(line, "FACTURE", value, _("Ce n'est pas une facture émise à régler (%(state)s).") % {
                    "state": invoice.get_status_display() if invoice.kind != Invoice.Kind.CREDIT_NOTE else _("avoir")})
                invoice = None
            else:
                debtor, label = Debtor.of(invoice), invoice.debtor_name
        elif given[0] == "REF_EXTERNE":
            value = cell(row, "REF_EXTERNE")
            resident = residents.get(value)
            if resident is None:
                result.error(line, "REF_EXTERNE", value, _("Aucun résident de la section %(s)s n'a cette référence.")
                             % {"s": section.alias})
            elif resident.pk in latest:
                debtor, label = Debtor.of(latest[resident.pk]), latest[resident.pk].debtor_name
            elif resident.pk in paying:
                relative = paying[resident.pk]
                debtor = Debtor(section.pk, Invoice.DebtorKind.RELATIVE, resident_id=resident.pk,
                                relative_id=relative.pk)
                label = str(relative)
            else:
                debtor = Debtor(section.pk, Invoice.DebtorKind.RESIDENT, resident_id=resident.pk)
                label = resident.full_name
        else:
            value = cell(row, "PAYEUR")
            payer = payers.get(value.upper())
            if payer is None:
                result.error(line, "PAYEUR", value, _("Code payeur inconnu."))
            else:
                debtor, label = Debtor(section.pk, Invoice.DebtorKind.PAYER, payer_id=payer.pk), payer.name
        if debtor is None or on is None or amount is None or mode is None:
            continue
        reference = cell(row, "REFERENCE")
        key = (on, amount, reference, debtor)
        if not allow_duplicates:
            if key in seen:
                result.error(line, "REFERENCE", reference, _("Ligne identique à une ligne précédente du fichier "
                                                             "(date, montant, référence, débiteur)."))
            seen.add(key)
            existing.add(key)
        result.planned.append(PlannedPayment(row=line, on=on, amount=amount, mode=mode, debtor=debtor,
                                             debtor_label=label, invoice=invoice, reference=reference,
                                             drawer=cell(row, "TIREUR"), comment=cell(row, "COMMENTAIRE")))
    if existing and not allow_duplicates:
        dates = {k[0] for k in existing}
        stored = {(p.date, p.amount, p.reference, Debtor.of(p))
                  for p in Payment.objects.filter(section=section, kind=Payment.Kind.PAYMENT, date__in=dates,
                                                  cancelled_at__isnull=True)}
        for planned in result.planned:
            if (planned.on, planned.amount, planned.reference, planned.debtor) in stored:
                result.error(planned.row, "REFERENCE", planned.reference,
                             _("Un règlement identique existe déjà (date, montant, référence, débiteur) : "
                               "utilisez --allow-duplicates / « Accepter les doublons » s'il est voulu."))
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
