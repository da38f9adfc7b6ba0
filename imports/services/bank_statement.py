"""Bank statements in ISO 20022 camt.053 (``camt.053.001.02`` and ``.08``, the export of French banks).

* Parsed with lxml without entity resolution, network access nor DTD (a file with a DOCTYPE is refused):
  no XXE, no « billion laughs ».
* Bad files are refused whole, with a French report (line, element, value, message); nothing is written.
* Booked credits (``CdtDbtInd`` CRDT) whose remittance text (``Ustrd``, ``Strd/CdtrRefInf/Ref``) names an
  invoice of the section are recorded as payments (mode *virement*, reference = the bank's reference,
  date = booking date) through ``billing.services.payments.payment_record`` (named invoice first, then
  oldest due, rest = credit). The other lines (no number, unknown number, debits, reversals) wait on the
  manual matching screen (``entry_match`` / ``entry_ignore``).
* Idempotent: every line is kept (``BankStatementEntry``) under the bank's reference (``AcctSvcrRef`` of
  the transaction or of the entry, else ``NtryRef``); a line already imported is skipped.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from lxml import etree

from billing.models import Invoice, Payment
from billing.services.payments import PAYABLE_KINDS, Debtor, payment_record, refund_record
from core.money import ZERO, format_euros
from structures.models import Section

from ..models import BankStatementEntry, ImportRun

NAMESPACES = {
    "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02": "02",
    "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08": "08",
}
MAX_BYTES = 20 * 1024 * 1024
# Above this size the browser parses the statement in a job (core.Job).
JOB_THRESHOLD_BYTES = 512 * 1024
JOB_KIND = "imports.bank_statement"


class StatementError(Exception):
    pass


@dataclass
class StatementLine:
    """One transaction of the statement (``position``: its order in the file, for messages)."""

    line: int
    account: str
    entry_ref: str
    bank_ref: str
    booking_date: date
    amount: Decimal
    direction: str
    remittance: str
    counterparty: str
    reversal: bool = False


@dataclass
class StatementParse:
    name: str
    size: int
    sha256: str
    version: str = ""
    lines: list[StatementLine] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)  # {"row", "column" (element), "value", "message"}
    skipped: int = 0  # entries not booked (PDNG, INFO)

    def error(self, line, element: str, value, message: str) -> None:
        self.errors.append({"row": line, "column": element, "value": "" if value is None else str(value)[:80],
                            "message": message})

    @property
    def ok(self) -> bool:
        return not self.errors

    def report(self) -> list[dict]:
        rows: dict = {}
        for e in self.errors:
            rows.setdefault(e["row"], {"file": self.name, "row": e["row"], "errors": [], "warnings": []})[
                "errors"].append({k: e[k] for k in ("column", "value", "message")})
        return sorted(rows.values(), key=lambda r: (r["row"] is not None, r["row"] or 0))


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_comments=True, remove_pis=True)


def _local(el) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _child(el, *names):
    """The first descendant along ``names`` (local names, any namespace), or None."""
    for name in names:
        if el is None:
            return None
        el = next((c for c in el if _local(c) == name), None)
    return el


def _children(el, name):
    return [c for c in el if _local(c) == name] if el is not None else []


def _text(el, *names) -> str:
    found = _child(el, *names)
    return (found.text or "").strip() if found is not None else ""


def _parse_date(el, parse: StatementParse, where: str) -> date | None:
    """``Dt`` (AAAA-MM-JJ) or ``DtTm`` under ``el``."""
    raw_el = _child(el, "Dt") if el is not None else None
    raw_el = raw_el if raw_el is not None else (_child(el, "DtTm") if el is not None else None)
    if raw_el is None:
        parse.error(el.sourceline if el is not None else None, where, "",
                    _("Date de comptabilisation absente (%(el)s/Dt).") % {"el": where})
        return None
    raw = (raw_el.text or "").strip()
    try:
        return datetime.fromisoformat(raw[:10]).date() if raw else None
    except ValueError:
        parse.error(raw_el.sourceline, f"{where}/{_local(raw_el)}", raw, _("Date invalide (attendu AAAA-MM-JJ)."))
        return None


def _parse_amount(el, parse: StatementParse, where: str) -> Decimal | None:
    if el is None:
        return None
    raw = (el.text or "").strip()
    try:
        amount = Decimal(raw)
    except InvalidOperation:
        parse.error(el.sourceline, where, raw, _("Montant invalide (attendu 1234.56)."))
        return None
    if not amount.is_finite() or amount <= 0 or amount != amount.quantize(Decimal("0.01")):
        parse.error(el.sourceline, where, raw, _("Le montant doit être positif, au plus deux décimales."))
        return None
    currency = el.get("Ccy", "")
    if currency != "EUR":
        parse.error(el.sourceline, f"{where}@Ccy", currency, _("Seuls les montants en euros (EUR) sont acceptés."))
        return None
    return amount


def _remittance(tx) -> str:
    rmt = _child(tx, "RmtInf")
    if rmt is None:
        return ""
    parts = [(u.text or "").strip() for u in _children(rmt, "Ustrd")]
    for strd in _children(rmt, "Strd"):
        ref = _text(strd, "CdtrRefInf", "Ref")
        if ref:
            parts.append(ref)
        parts.extend((a.text or "").strip() for a in _children(strd, "AddtlRmtInf"))
    return " ".join(p for p in parts if p)[:500]


def _counterparty(tx, direction: str) -> str:
    parties = _child(tx, "RltdPties")
    if parties is None:
        return ""
    role = "Dbtr" if direction == "CRDT" else "Cdtr"
    party = _child(parties, role)
    if party is None:
        return ""
    # .02: Dbtr/Nm ; .08: Dbtr/Pty/Nm
    return (_text(party, "Nm") or _text(party, "Pty", "Nm"))[:140]


def statement_parse(*, data: bytes, name: str = "releve.xml") -> StatementParse:
    """Read a camt.053 file: every booked transaction, or the errors (the whole file is refused then)."""
    parse = StatementParse(name=name, size=len(data), sha256=hashlib.sha256(data).hexdigest())
    if len(data) > MAX_BYTES:
        parse.error(None, "", len(data), _("Le fichier dépasse 20 Mo."))
        return parse
    if not data.strip():
        parse.error(None, "", "", _("Le fichier est vide."))
        return parse
    try:
        root = etree.fromstring(data, parser=_parser())
    except etree.XMLSyntaxError as exc:
        parse.error(exc.lineno, "", "", _("Ce n'est pas un fichier XML valide : %(error)s") % {
            "error": exc.msg})
        return parse
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        parse.error(1, "DOCTYPE", tree.docinfo.doctype[:80],
                    _("Une déclaration DOCTYPE (entités) est interdite dans un relevé camt.053."))
        return parse
    namespace = etree.QName(root).namespace or ""
    parse.version = NAMESPACES.get(namespace, "")
    if _local(root) != "Document" or not parse.version:
        parse.error(root.sourceline, _local(root), namespace or _local(root),
                    _("Ce n'est pas un relevé camt.053.001.02 ou camt.053.001.08."))
        return parse
    statements = _children(_child(root, "BkToCstmrStmt"), "Stmt")
    if not statements:
        parse.error(root.sourceline, "BkToCstmrStmt/Stmt", "", _("Aucun relevé (Stmt) dans le fichier."))
        return parse
    for stmt in statements:
        account = _text(stmt, "Acct", "Id", "IBAN").replace(" ", "").upper() or _text(stmt, "Acct", "Id", "Othr", "Id")
        for entry in _children(stmt, "Ntry"):
            _parse_entry(entry, account, parse)
    if parse.ok and not parse.lines and not parse.skipped:
        parse.error(None, "Ntry", "", _("Le relevé ne contient aucune écriture (Ntry)."))
    return parse


def _parse_entry(entry, account: str, parse: StatementParse) -> None:
    status_el = _child(entry, "Sts")
    status = ((_text(status_el, "Cd") if status_el is not None and len(status_el) else
               (status_el.text or "").strip()) if status_el is not None else "BOOK")
    if status and status != "BOOK":
        parse.skipped += 1
        return
    amount_el = _child(entry, "Amt")
    if amount_el is None:
        parse.error(entry.sourceline, "Ntry/Amt", "", _("Montant de l'écriture absent."))
    amount = _parse_amount(amount_el, parse, "Ntry/Amt")
    direction = _text(entry, "CdtDbtInd")
    if direction not in ("CRDT", "DBIT"):
        parse.error(entry.sourceline, "Ntry/CdtDbtInd", direction, _("Sens inconnu : attendu CRDT ou DBIT."))
    booking = _parse_date(_child(entry, "BookgDt"), parse, "Ntry/BookgDt") if _child(entry, "BookgDt") is not None \
        else None
    if _child(entry, "BookgDt") is None:
        parse.error(entry.sourceline, "Ntry/BookgDt", "", _("Date de comptabilisation absente."))
    reversal = _text(entry, "RvslInd").lower() == "true"
    entry_ref = _text(entry, "AcctSvcrRef") or _text(entry, "NtryRef")
    txs = _children(_child(entry, "NtryDtls"), "TxDtls")
    if len(_children(entry, "NtryDtls")) > 1:  # several batches: every TxDtls of every NtryDtls
        txs = [tx for d in _children(entry, "NtryDtls") for tx in _children(d, "TxDtls")]
    if amount is None or booking is None or direction not in ("CRDT", "DBIT"):
        return
    if not txs:
        txs = [None]
    for index, tx in enumerate(txs, start=1):
        tx_amount = amount
        if tx is not None and len(txs) > 1:
            amt_el = _child(tx, "Amt")
            amt_el = amt_el if amt_el is not None else _child(tx, "AmtDtls", "TxAmt", "Amt")
            if amt_el is None:
                parse.error(tx.sourceline, "TxDtls/Amt", "", _("Montant de la transaction absent (écriture groupée)."))
                continue
            tx_amount = _parse_amount(amt_el, parse, "TxDtls/Amt")
            if tx_amount is None:
                continue
        tx_ref = _text(tx, "Refs", "AcctSvcrRef") if tx is not None else ""
        remittance = _remittance(tx) if tx is not None else ""
        if not remittance:
            remittance = _text(entry, "AddtlNtryInf")[:500]
        bank_ref = tx_ref or entry_ref
        if len(txs) > 1:
            key = f"{entry_ref}/{tx_ref or index}" if entry_ref else tx_ref
        else:
            key = entry_ref or tx_ref
        if not key:
            # No bank reference at all: a fingerprint of the line (stable across re-imports of the file).
            key = "SHA-" + hashlib.sha256(f"{booking}|{tx_amount}|{direction}|{remittance}|{index}".encode()).hexdigest()[:32]
        parse.lines.append(StatementLine(
            line=(tx if tx is not None else entry).sourceline, account=account, entry_ref=key[:140],
            bank_ref=(bank_ref or key)[:80], booking_date=booking, amount=tx_amount, direction=direction,
            remittance=remittance, counterparty=_counterparty(tx, direction) if tx is not None else "",
            reversal=reversal))
    if len(txs) > 1 and parse.ok:
        total = sum((ln.amount for ln in parse.lines[-len(txs):]), ZERO)
        if total != amount:
            parse.error(entry.sourceline, "Ntry/Amt", amount, _("Le montant de l'écriture (%(amount)s) n'est pas la "
                                                                "somme de ses transactions (%(total)s).")
                        % {"amount": amount, "total": total})


# ---------------------------------------------------------------- matching

def _number_pattern(section: Section) -> re.Pattern:
    """An invoice number of the establishment (``CODE-2026-000012``) as banks print it: with dashes,
    spaces, slashes or nothing between the parts, any case."""
    code = re.escape(section.establishment.code)
    return re.compile(rf"(?<![A-Z0-9]){code}[\s\-_/.]*(\d{{4}})[\s\-_/.]*(\d{{6}})(?!\d)", re.IGNORECASE)


def invoice_numbers_in(text: str, section: Section) -> list[str]:
    """The invoice numbers found in a remittance text, in order, without duplicates."""
    code = section.establishment.code
    found = []
    for m in _number_pattern(section).finditer(text or ""):
        number = f"{code}-{m.group(1)}-{m.group(2)}"
        if number not in found:
            found.append(number)
    return found


@dataclass
class Planned:
    line: StatementLine
    invoices: list[Invoice]
    reason: str = ""

    @property
    def matched(self) -> bool:
        return not self.reason


def _plan(section: Section, lines: list[StatementLine]) -> list[Planned]:
    """What each line would become: matched (invoices named) or pending with the reason. One query."""
    numbers = {ln.entry_ref: invoice_numbers_in(ln.remittance, section) for ln in lines}
    wanted = {n for ns in numbers.values() for n in ns}
    invoices = {i.number.upper(): i for i in Invoice.objects.filter(section=section, number__in=wanted)}
    plans = []
    for ln in lines:
        found = numbers[ln.entry_ref]
        if ln.direction == "DBIT":
            plans.append(Planned(ln, [], _("Débit : à traiter à la main (remboursement, rejet, frais).")))
            continue
        if ln.reversal:
            plans.append(Planned(ln, [], _("Contre-passation : à traiter à la main.")))
            continue
        if not found:
            plans.append(Planned(ln, [], _("Aucun numéro de facture dans le libellé.")))
            continue
        unknown = [n for n in found if n.upper() not in invoices]
        if unknown:
            plans.append(Planned(ln, [], _("Facture inconnue dans la section : %(n)s.") % {"n": ", ".join(unknown)}))
            continue
        named = [invoices[n.upper()] for n in found]
        bad = [i for i in named if i.kind not in PAYABLE_KINDS or i.status != Invoice.Status.ISSUED]
        if bad:
            plans.append(Planned(ln, [], _("Pas une facture émise à régler : %(n)s.") % {
                "n": ", ".join(i.number for i in bad)}))
            continue
        if len({Debtor.of(i) for i in named}) > 1:
            plans.append(Planned(ln, [], _("Factures de plusieurs débiteurs : %(n)s.") % {
                "n": ", ".join(i.number for i in named)}))
            continue
        plans.append(Planned(ln, named))
    return plans


def _existing_refs(section: Section, lines: list[StatementLine]) -> set[tuple[str, str]]:
    refs = {ln.entry_ref for ln in lines}
    return set(BankStatementEntry.objects.filter(section=section, entry_ref__in=refs)
               .values_list("account", "entry_ref"))


class StatementImportError(Exception):
    def __init__(self, message: str, run: ImportRun):
        super().__init__(message)
        self.run = run


def statement_import_apply(*, section: Section, data: bytes, name: str = "releve.xml", user=None,
                           dry_run: bool = False, run: ImportRun | None = None, progress=None) -> ImportRun:
    """Parse, then (unless ``dry_run``) record the new lines in one transaction: matched credits become
    payments, the others wait for manual matching. Lines already imported are skipped."""
    user = user if (user and user.is_authenticated) else None
    parse = statement_parse(data=data, name=name)
    run = run or ImportRun(kind=ImportRun.Kind.BANK_STATEMENT, section=section, establishment=section.establishment,
                           created_by=user)
    run.files, run.dry_run, run.report = [{"name": name, "size": parse.size, "sha256": parse.sha256}], dry_run, \
        parse.report()
    if not parse.ok:
        run.status = ImportRun.Status.REJECTED
        run.summary = {"section": section.alias, "lines": 0}
        run.save()
        raise StatementImportError(_("%(n)s erreur(s) : le relevé ne peut pas être importé.") % {
            "n": len(parse.errors)}, run)
    existing = _existing_refs(section, parse.lines)
    new_lines, seen = [], set()
    for ln in parse.lines:
        key = (ln.account, ln.entry_ref)
        if key in existing or key in seen:
            continue
        seen.add(key)
        new_lines.append(ln)
    plans = _plan(section, new_lines)
    matched = [p for p in plans if p.matched]
    pending = [p for p in plans if not p.matched]
    matched_total = sum((p.line.amount for p in matched), ZERO)
    run.summary = {
        "section": section.alias, "version": f"camt.053.001.{parse.version}", "lines": len(parse.lines),
        "already": len(parse.lines) - len(new_lines), "skipped_not_booked": parse.skipped,
        "matched": len(matched), "matched_total": str(matched_total), "matched_total_label": format_euros(matched_total),
        "pending": len(pending),
    }
    if dry_run:
        run.status = ImportRun.Status.VALIDATED
        run.save()
        return run
    with transaction.atomic():
        run.status = ImportRun.Status.IMPORTED
        run.save()
        now = timezone.now()
        for position, plan in enumerate(plans, start=1):
            ln = plan.line
            payment = None
            if plan.matched:
                payment = _record_payment(section=section, line=ln, invoice=plan.invoices[0], user=user)
            BankStatementEntry.objects.create(
                run=run, section=section, account=ln.account, entry_ref=ln.entry_ref, booking_date=ln.booking_date,
                amount=ln.amount, direction=ln.direction, remittance=ln.remittance, counterparty=ln.counterparty,
                status=BankStatementEntry.Status.MATCHED if plan.matched else BankStatementEntry.Status.PENDING,
                reason=plan.reason, payment=payment, processed_at=now if plan.matched else None,
                processed_by=user if plan.matched else None)
            if progress and position % 100 == 0:
                progress(position, len(plans))
    return run


def _record_payment(*, section, line, invoice=None, debtor=None, user=None) -> Payment:
    return payment_record(section=section, invoice=invoice, debtor=debtor, on=line.booking_date, amount=line.amount,
                          mode=Payment.Mode.TRANSFER, reference=line.bank_ref, drawer=line.counterparty,
                          comment=line.remittance, user=user)


# ---------------------------------------------------------------- manual matching

def pending_entries(*, section: Section):
    return BankStatementEntry.objects.filter(section=section, status=BankStatementEntry.Status.PENDING).order_by(
        "booking_date", "pk")


@transaction.atomic
def entry_match(*, entry: BankStatementEntry, user=None, invoice: Invoice | None = None,
                debtor: Debtor | None = None) -> Payment:
    """A clerk's choice for a pending line: a credit becomes a payment naming ``invoice`` (or of
    ``debtor``, oldest due first); a debit becomes a refund of ``debtor``'s credit. The choices must
    belong to the entry's section (checked here too, whatever the form offered)."""
    entry = BankStatementEntry.objects.select_for_update().get(pk=entry.pk)
    if entry.status != BankStatementEntry.Status.PENDING:
        raise ValidationError(_("Cette ligne du relevé a déjà été traitée."))
    section = entry.section
    if invoice is not None and invoice.section_id != section.pk:
        raise ValidationError(_("La facture %(n)s n'appartient pas à cette section.") % {"n": invoice})
    if debtor is not None and debtor.section_id != section.pk:
        raise ValidationError(_("Ce débiteur n'appartient pas à cette section."))
    line = StatementLine(line=0, account=entry.account, entry_ref=entry.entry_ref, bank_ref=entry.entry_ref[:80],
                         booking_date=entry.booking_date, amount=entry.amount, direction=entry.direction,
                         remittance=entry.remittance, counterparty=entry.counterparty)
    if entry.direction == BankStatementEntry.Direction.DEBIT:
        if debtor is None and invoice is not None:
            debtor = Debtor.of(invoice)
        if debtor is None:
            raise ValidationError(_("Indiquez le débiteur remboursé."))
        payment = refund_record(debtor=debtor, on=entry.booking_date, amount=entry.amount,
                                mode=Payment.Mode.TRANSFER, reference=line.bank_ref,
                                comment=entry.remittance[:250], user=user)
    else:
        if invoice is None and debtor is None:
            raise ValidationError(_("Choisissez une facture ou un débiteur."))
        payment = _record_payment(section=section, line=line, invoice=invoice, debtor=debtor, user=user)
    entry.payment, entry.status = payment, BankStatementEntry.Status.MANUAL
    entry.processed_by = user if (user and user.is_authenticated) else None
    entry.processed_at = timezone.now()
    entry.save(update_fields=["payment", "status", "processed_by", "processed_at"])
    return payment


@transaction.atomic
def entry_ignore(*, entry: BankStatementEntry, reason: str, user=None) -> BankStatementEntry:
    """Set a pending line aside (not a resident's payment: a subsidy, bank fees…): reason required."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Le motif est obligatoire pour écarter une ligne.")})
    entry = BankStatementEntry.objects.select_for_update().get(pk=entry.pk)
    if entry.status != BankStatementEntry.Status.PENDING:
        raise ValidationError(_("Cette ligne du relevé a déjà été traitée."))
    entry.status, entry.reason = BankStatementEntry.Status.IGNORED, reason[:250]
    entry.processed_by = user if (user and user.is_authenticated) else None
    entry.processed_at = timezone.now()
    entry.save(update_fields=["status", "reason", "processed_by", "processed_at"])
    return entry


# ---------------------------------------------------------------- browser: large files in a job

def statement_run_start(*, section: Section, data: bytes, name: str, user=None, dry_run: bool = False) -> ImportRun:
    """Keep the file and parse/import it in a job (after commit); the run stays *pending* meanwhile."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from core.services.jobs import job_create, job_enqueue
    from core.tasks import run_job

    run = ImportRun.objects.create(kind=ImportRun.Kind.BANK_STATEMENT, status=ImportRun.Status.PENDING,
                                   section=section, establishment=section.establishment, dry_run=dry_run,
                                   created_by=user if getattr(user, "is_authenticated", False) else None,
                                   files=[{"name": name, "size": len(data)}])
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[-80:] or "releve.xml"
    path = default_storage.save(f"imports/releves/{run.pk}/{safe}", ContentFile(data))
    job = job_create(kind=JOB_KIND, user=user, section=section, params={"run_id": run.pk},
                     label=_("Relevé bancaire n° %(n)s") % {"n": run.pk})
    run.stored_files, run.job = [{"role": "statement", "name": name, "path": path}], job
    run.save(update_fields=["stored_files", "job"])
    job_enqueue(job=job, task=run_job)
    return run


def statement_import_job(*, job, progress) -> dict:
    """Job runner "imports.bank_statement": params {"run_id": …}."""
    from django.core.files.storage import default_storage

    from core.services.jobs import JobError

    run = ImportRun.objects.filter(pk=job.params.get("run_id"), kind=ImportRun.Kind.BANK_STATEMENT).select_related(
        "section__establishment", "created_by").first()
    if run is None or not run.stored_files:
        raise JobError(_("Import introuvable."))
    stored = run.stored_files[0]
    with default_storage.open(stored["path"], "rb") as fh:
        data = fh.read()
    try:
        run = statement_import_apply(section=run.section, data=data, name=stored["name"], user=run.created_by,
                                     dry_run=run.dry_run, run=run, progress=progress)
    except StatementImportError as exc:
        raise JobError(str(exc)) from exc
    return run.summary
