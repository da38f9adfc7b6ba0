"""Accounting export (books.md §2): account map, entries of a date range, FEC / CSV / XLSX files.

* ``account_map_for`` gives an establishment's account map, created with the defaults of its legal
  status (association/commercial: ESSMS chart of accounts, 512 bank; public: M22, 515 Trésor).
* ``export_build`` turns what is not exported yet into entries of a draft export (one draft per
  establishment; building again replaces it):
  - sales journal: each issued invoice, rappel or credit note (debit 411 + auxiliary / credit the
    revenue accounts of its lines; a credit note the other way round);
  - payments journal: each payment (debit bank or cash / credit 411), each cancellation (the
    reversing entry, dated the day of the cancellation), each refund (debit 411 / credit bank) and
    what other apps register with ``register_entry_source`` (SEPA bank returns).
  Entries are numbered per journal, continuing the numbers of the transmitted exports, and the 411
  lines of invoices and of the payments and credit notes that settle them completely (all in this
  export) share a letter (``EcritureLet``) dated by the last of them (``DateLet``).
* ``export_transmit`` marks an export « transmis à la comptabilité » once the FEC passes the
  checker: its entries are frozen, and later entries (even dated in its range) go to the next export.
"""
from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Min, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from core import exports, fec
from core.money import ZERO, round_money

from ..models import Invoice, Payment, PaymentAllocation, Product
from ..models.accounting import (AccountingEntry, AccountingExport, AccountingLine, AccountMap, Financing,
                                 FrozenExportError, RevenueAccount)

SALES, BANK = "sales", "bank"
_PK = Product.Kind

# (product kind or "" for every kind, financing) → (account, label). books.md §1.4 and §2 (ESSMS chart).
_REVENUE_COMMON = {
    (_PK.ACCOMMODATION, Financing.RESIDENT): ("73531", "Hébergement - usager"),
    (_PK.TEMPORARY, Financing.RESIDENT): ("73535", "Accueil temporaire - usager"),
    (_PK.DAY_CARE, Financing.RESIDENT): ("73535", "Accueil temporaire - usager"),
    (_PK.DEPENDENCY_56, Financing.RESIDENT): ("73532", "Dépendance GIR 5-6 - usager"),
    (_PK.DEPENDENCY_34, Financing.RESIDENT): ("73533", "Dépendance selon ressources - usager"),
    (_PK.DEPENDENCY_12, Financing.RESIDENT): ("73533", "Dépendance selon ressources - usager"),
    (_PK.OTHER, Financing.RESIDENT): ("7088", "Autres prestations"),
    (_PK.ACCOMMODATION, Financing.DEPARTEMENT): ("735221", "Hébergement - département (aide sociale)"),
    (_PK.DEPENDENCY_12, Financing.DEPARTEMENT): ("735222", "Dépendance - département (APA)"),
    (_PK.DEPENDENCY_34, Financing.DEPARTEMENT): ("735222", "Dépendance - département (APA)"),
    (_PK.DEPENDENCY_56, Financing.DEPARTEMENT): ("735222", "Dépendance - département (APA)"),
    (_PK.TEMPORARY, Financing.DEPARTEMENT): ("73523", "Accueil temporaire - département"),
    (_PK.DAY_CARE, Financing.DEPARTEMENT): ("73523", "Accueil temporaire - département"),
    ("", Financing.HEALTH_INSURANCE): ("7351", "Produits à la charge de l'assurance maladie"),
    ("", Financing.PENSION_FUND): ("7358", "Produits à la charge d'autres financeurs"),
    ("", Financing.MUTUAL): ("7358", "Produits à la charge d'autres financeurs"),
    ("", Financing.OTHER): ("7358", "Produits à la charge d'autres financeurs"),
}
DEFAULTS = {
    # Association or company: ESSMS private chart [E1]; bank 512, cash 530.
    "association": {"fields": {"cheque_account": "512", "transfer_account": "512", "direct_debit_account": "512",
                               "payer_account": "512", "cash_account": "530"},
                    "revenue": _REVENUE_COMMON},
    # Public (M22): same 735 sub-accounts (UNCERTAIN, books.md §1.4); funds at the Trésor (515), cash 531.
    "public": {"fields": {"cheque_account": "515", "transfer_account": "515", "direct_debit_account": "515",
                          "payer_account": "515", "cash_account": "531"},
               "revenue": _REVENUE_COMMON},
}
PAYER_FINANCING = {"departement": Financing.DEPARTEMENT, "health_insurance": Financing.HEALTH_INSURANCE,
                   "pension_fund": Financing.PENSION_FUND, "mutual": Financing.MUTUAL, "other": Financing.OTHER}


# ---------------------------------------------------------------- account map

def _defaults(establishment) -> dict:
    return DEFAULTS["public" if establishment.legal_status == "public" else "association"]


@transaction.atomic
def account_map_for(establishment) -> AccountMap:
    """The establishment's account map, created with its legal status's defaults the first time."""
    account_map = AccountMap.objects.filter(establishment=establishment).first()
    if account_map is None:
        account_map = account_map_reset(establishment=establishment)
    return account_map


@transaction.atomic
def account_map_reset(*, establishment) -> AccountMap:
    """(Re)set the account map to the defaults of the establishment's legal status."""
    defaults = _defaults(establishment)
    account_map, _created = AccountMap.objects.update_or_create(establishment=establishment,
                                                                defaults=defaults["fields"])
    account_map.revenue_accounts.all().delete()
    RevenueAccount.objects.bulk_create(
        RevenueAccount(account_map=account_map, product_kind=kind, financing=financing, account=account, label=label)
        for (kind, financing), (account, label) in defaults["revenue"].items())
    return account_map


@dataclass
class _Resolver:
    """Account lookups of one export (the map's rows read once)."""

    account_map: AccountMap
    split: bool
    rows: dict = field(default_factory=dict)

    def __post_init__(self):
        self.rows = {(r.product_kind, r.financing): r for r in self.account_map.revenue_accounts.all()}

    def revenue(self, product: Product | None, financing: str) -> tuple[str, str]:
        kind = product.kind if product else ""
        financing = financing if self.split else Financing.RESIDENT
        if financing == Financing.RESIDENT and product is not None and product.accounting_account:
            return product.accounting_account, product.label
        for key in ((kind, financing), ("", financing)):
            row = self.rows.get(key)
            if row is not None:
                return row.account, row.label or row.get_product_kind_display()
        if product is not None and product.accounting_account:
            return product.accounting_account, product.label
        row = self.rows.get((kind, Financing.RESIDENT)) if financing != Financing.RESIDENT else None
        if row is not None:
            return row.account, row.label
        return self.account_map.default_revenue_account, _("Autres produits")

    def customer(self, obj) -> tuple[str, str, str]:
        """(CompteNum, CompAuxNum, CompAuxLib) of an invoice's or a payment's debtor: the collective
        customer account with an auxiliary per debtor (R resident, F paying relative, P payer); a
        payer with its own account is booked on it."""
        if obj.debtor_kind == Invoice.DebtorKind.PAYER:
            payer = obj.payer
            if payer.accounting_account:
                return payer.accounting_account, "", payer.name
            return self.account_map.customer_account, f"P{payer.pk:06d}", payer.name
        if obj.debtor_kind == Invoice.DebtorKind.RELATIVE:
            relative, resident = obj.relative, obj.resident
            name = f"{relative.last_name} {relative.first_name}".strip()
            return (self.account_map.customer_account, f"F{relative.pk:06d}",
                    f"{name} (pour {resident.last_name} {resident.first_name})")
        resident = obj.resident
        return self.account_map.customer_account, f"R{resident.pk:06d}", f"{resident.last_name} {resident.first_name}"


# ---------------------------------------------------------------- entry drafts

@dataclass
class LineDraft:
    account: str
    label: str
    debit: Decimal = ZERO
    credit: Decimal = ZERO
    account_label: str = ""
    aux_account: str = ""
    aux_label: str = ""
    node: str = ""  # lettering: "invoice:<pk>" or "payment:<pk>" on the customer line
    letter: str = ""
    letter_date: date | None = None


@dataclass
class EntryDraft:
    journal: str  # SALES or BANK
    date: date
    piece_ref: str
    piece_date: date
    label: str
    source_key: str
    lines: list[LineDraft]


EntrySource = Callable[..., list[EntryDraft]]
_ENTRY_SOURCES: list[EntrySource] = []


def register_entry_source(source: EntrySource) -> EntrySource:
    """Hook for other apps (SEPA bank returns): ``source(*, establishment, account_map, customer, date_from,
    date_to, exported)`` returns ``EntryDraft`` objects (``source_key`` unique, e.g. "bank-return:12";
    ``customer(payment)`` gives the debtor's account triple); a bank return books debit 411 / credit
    bank with ``node="payment:<pk>"`` on the 411 line so it letters with the payment it cancels."""
    if source not in _ENTRY_SOURCES:
        _ENTRY_SOURCES.append(source)
    return source


def _signed(line: LineDraft, amount: Decimal, *, credit_side: bool) -> LineDraft:
    """Put a signed amount on its natural side (``credit_side`` for a positive amount) or the other."""
    if (amount > 0) == credit_side:
        line.credit = abs(amount)
    else:
        line.debit = abs(amount)
    return line


def _invoice_entry(invoice: Invoice, resolver: _Resolver) -> EntryDraft | None:
    if invoice.total == 0:
        return None
    financing = (PAYER_FINANCING.get(invoice.payer.kind, Financing.OTHER)
                 if invoice.debtor_kind == Invoice.DebtorKind.PAYER else Financing.RESIDENT)
    revenue: dict[str, list] = {}
    for line in invoice.lines.all():
        product = line.product or (line.credited_line.product if line.credited_line_id else None)
        account, label = resolver.revenue(product, financing)
        revenue.setdefault(account, [label, ZERO])[1] += line.amount
    if round_money(sum((amount for _l, amount in revenue.values()), ZERO)) != invoice.total:
        raise ValidationError(_("La facture %(number)s : la somme des lignes ne fait pas son total (%(total)s).")
                              % {"number": invoice.number, "total": invoice.total})
    is_credit_note = invoice.kind == Invoice.Kind.CREDIT_NOTE
    title = _("Avoir") if is_credit_note else _("Facture")
    label = f"{title} {invoice.number} {invoice.debtor_name}".strip()[:200]
    account, aux, aux_label = resolver.customer(invoice)
    lines = [_signed(LineDraft(account=account, aux_account=aux, aux_label=aux_label, label=label,
                               account_label=_("Clients"), node=f"invoice:{invoice.pk}"),
                     invoice.total, credit_side=False)]
    for revenue_account, (account_label, amount) in sorted(revenue.items()):
        if amount:
            lines.append(_signed(LineDraft(account=revenue_account, account_label=account_label[:80], label=label),
                                 amount, credit_side=True))
    return EntryDraft(journal=SALES, date=invoice.issue_date, piece_ref=invoice.number, piece_date=invoice.issue_date,
                      label=label, source_key=f"invoice:{invoice.pk}", lines=lines)


def _payment_entries(payment: Payment, resolver: _Resolver, exported: set[str],
                     date_from: date, date_to: date) -> list[EntryDraft]:
    account, aux, aux_label = resolver.customer(payment)
    bank = resolver.account_map.bank_account_for(payment.mode)
    mode = payment.get_mode_display()
    drafts = []
    if payment.kind == Payment.Kind.REFUND:
        key = f"refund:{payment.pk}"
        piece = f"RBT{payment.pk:06d}"
        label = f"{_('Remboursement')} {mode} {aux_label} {payment.reference}".strip()[:200]
        if key not in exported and date_from <= payment.date <= date_to:
            drafts.append(EntryDraft(BANK, payment.date, piece, payment.date, label, key, [
                LineDraft(account=account, aux_account=aux, aux_label=aux_label, account_label=_("Clients"),
                          label=label, debit=payment.amount, node=f"payment:{payment.pk}"),
                LineDraft(account=bank, account_label=mode, label=label, credit=payment.amount)]))
    else:
        key = f"payment:{payment.pk}"
        piece = payment.reference[:40] or f"REG{payment.pk:06d}"
        label = f"{_('Règlement')} {mode} {aux_label} {payment.reference}".strip()[:200]
        if key not in exported and date_from <= payment.date <= date_to:
            drafts.append(EntryDraft(BANK, payment.date, piece, payment.date, label, key, [
                LineDraft(account=bank, account_label=mode, label=label, debit=payment.amount),
                LineDraft(account=account, aux_account=aux, aux_label=aux_label, account_label=_("Clients"),
                          label=label, credit=payment.amount, node=f"payment:{payment.pk}")]))
    if payment.cancelled_at is not None:
        cancel_key = f"payment-cancel:{payment.pk}"
        on = timezone.localdate(payment.cancelled_at)
        label = f"{_('Annulation')} {piece} : {payment.cancel_reason}"[:200]
        if cancel_key not in exported and date_from <= on <= date_to:
            customer = LineDraft(account=account, aux_account=aux, aux_label=aux_label, account_label=_("Clients"),
                                 label=label, node=f"payment:{payment.pk}")
            other = LineDraft(account=bank, account_label=mode, label=label)
            if payment.kind == Payment.Kind.REFUND:
                customer.credit = other.debit = payment.amount
            else:
                customer.debit = other.credit = payment.amount
            drafts.append(EntryDraft(BANK, on, piece, payment.date, label, cancel_key, [customer, other]))
    return drafts


def _letter_code(index: int) -> str:
    """A, B, …, Z, AA, AB, … (bijective base 26)."""
    code = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        code = chr(65 + rest) + code
    return code


def _letter(drafts: list[EntryDraft], offset: int) -> int:
    """Letter the customer lines of groups (invoices ↔ payments and credit notes through their net
    allocations) whose lines are all in this export and balance; returns the number of letters."""
    nodes: dict[str, list[tuple[LineDraft, date]]] = defaultdict(list)
    for draft in drafts:
        for line in draft.lines:
            if line.node:
                nodes[line.node].append((line, draft.date))
    if not nodes:
        return 0
    parent = {node: node for node in nodes}

    def find(node):
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    invoice_ids = [int(n.split(":")[1]) for n in nodes if n.startswith("invoice:")]
    payment_ids = [int(n.split(":")[1]) for n in nodes if n.startswith("payment:")]
    nets: dict[tuple[str, str], Decimal] = defaultdict(lambda: ZERO)
    allocations = PaymentAllocation.objects.filter(invoice_id__in=invoice_ids) | PaymentAllocation.objects.filter(
        payment_id__in=payment_ids) | PaymentAllocation.objects.filter(credit_note_id__in=invoice_ids)
    for invoice_id, payment_id, credit_note_id, amount in allocations.values_list(
            "invoice_id", "payment_id", "credit_note_id", "amount"):
        source = f"payment:{payment_id}" if payment_id else f"invoice:{credit_note_id}"
        nets[(f"invoice:{invoice_id}", source)] += amount
    complete = {n: True for n in nodes}
    for (invoice_node, source_node), net in nets.items():
        if not net:
            continue
        for node in (invoice_node, source_node):
            if node not in parent:  # part of the settlement is outside this export
                parent[node] = node
                complete[node] = False
        parent[find(invoice_node)] = find(source_node)
    groups: dict[str, list[str]] = defaultdict(list)
    for node in parent:
        groups[find(node)].append(node)
    count = 0
    for members in sorted(groups.values(), key=lambda m: min(min(d for _l, d in nodes.get(n, [(None, date.max)]))
                                                            for n in m)):
        if not all(complete.get(n, False) for n in members):
            continue
        lines = [item for n in members for item in nodes[n]]
        if len(lines) < 2 or sum((l.debit - l.credit for l, _d in lines), ZERO) != 0:
            continue
        code, letter_date = _letter_code(offset + count), max(d for _l, d in lines)
        for line, _d in lines:
            line.letter, line.letter_date = code, letter_date
        count += 1
    return count


# ---------------------------------------------------------------- building an export

def _drafts(*, establishment, account_map: AccountMap, split: bool, date_from: date, date_to: date,
            exported: set[str]) -> list[EntryDraft]:
    resolver = _Resolver(account_map, split)
    drafts: list[EntryDraft] = []
    invoices = (Invoice.objects.filter(establishment=establishment, issue_date__gte=date_from,
                                       issue_date__lte=date_to)
                .exclude(status=Invoice.Status.DRAFT).exclude(number="")
                .select_related("payer", "resident", "relative")
                .prefetch_related("lines__product", "lines__credited_line__product").order_by("issue_date", "number"))
    for invoice in invoices:
        if f"invoice:{invoice.pk}" not in exported:
            draft = _invoice_entry(invoice, resolver)
            if draft is not None:
                drafts.append(draft)
    since = timezone.make_aware(datetime.combine(date_from, time.min))
    payments = (Payment.objects.filter(Q(date__gte=date_from, date__lte=date_to) | Q(cancelled_at__gte=since),
                                       section__establishment=establishment)
                .select_related("payer", "resident", "relative").order_by("date", "pk"))
    for payment in payments:
        drafts.extend(_payment_entries(payment, resolver, exported, date_from, date_to))
    for source in _ENTRY_SOURCES:
        drafts.extend(d for d in source(establishment=establishment, account_map=account_map,
                                        customer=resolver.customer, date_from=date_from, date_to=date_to,
                                        exported=exported) if d.source_key not in exported)
    order = {SALES: 0, BANK: 1}
    drafts.sort(key=lambda d: (d.date, order[d.journal], d.piece_ref, d.source_key))
    return drafts


@transaction.atomic
def export_build(*, establishment, date_from: date, date_to: date, user=None,
                 split_by_financing: bool | None = None) -> AccountingExport:
    """Build the draft export of what is not exported yet, dated from ``date_from`` (or the start
    of the first export, for late entries) to ``date_to``; an existing draft is replaced."""
    if date_from > date_to:
        raise ValidationError(_("La période est vide : le %(start)s est après le %(end)s.") % {
            "start": f"{date_from:%d/%m/%Y}", "end": f"{date_to:%d/%m/%Y}"})
    account_map = account_map_for(establishment)
    AccountMap.objects.select_for_update().get(pk=account_map.pk)  # one export built at a time
    AccountingExport.objects.filter(establishment=establishment, status=AccountingExport.Status.DRAFT).delete()
    split = account_map.split_by_financing if split_by_financing is None else split_by_financing
    first = AccountingExport.objects.filter(establishment=establishment).aggregate(d=Min("date_from"))["d"]
    since = min(first, date_from) if first else date_from
    exported = set(AccountingEntry.objects.filter(establishment=establishment).values_list("source_key", flat=True))
    drafts = _drafts(establishment=establishment, account_map=account_map, split=split, date_from=since,
                     date_to=date_to, exported=exported)
    offset = AccountingExport.objects.filter(establishment=establishment).aggregate(
        n=Sum("letters_count"))["n"] or 0
    letters = _letter(drafts, offset)
    export = AccountingExport.objects.create(establishment=establishment, date_from=date_from, date_to=date_to,
                                             split_by_financing=split, letters_count=letters,
                                             created_by=user if (user and user.is_authenticated) else None)
    journals = {SALES: (account_map.sales_journal, account_map.sales_journal_label),
                BANK: (account_map.bank_journal, account_map.bank_journal_label)}
    numbers = {code: (AccountingEntry.objects.filter(establishment=establishment, journal=code)
                      .order_by("-number").values_list("number", flat=True).first() or 0)
               for code, _label in journals.values()}
    for draft in drafts:
        code, journal_label = journals[draft.journal]
        numbers[code] += 1
        entry = AccountingEntry.objects.create(
            export=export, establishment=establishment, journal=code, journal_label=journal_label,
            number=numbers[code], date=draft.date, piece_ref=draft.piece_ref[:40], piece_date=draft.piece_date,
            label=draft.label[:200], source_key=draft.source_key)
        AccountingLine.objects.bulk_create(
            AccountingLine(entry=entry, position=i, account=l.account, account_label=l.account_label[:80],
                           aux_account=l.aux_account, aux_label=l.aux_label[:120], label=l.label[:200],
                           debit=l.debit, credit=l.credit, letter=l.letter, letter_date=l.letter_date)
            for i, l in enumerate(draft.lines))
    return export


@transaction.atomic
def export_transmit(*, export: AccountingExport, user=None) -> AccountingExport:
    """Mark the export « transmis à la comptabilité » (after the checker): frozen from now on."""
    export = AccountingExport.objects.select_for_update().get(pk=export.pk)
    if export.is_transmitted:
        raise FrozenExportError(_("Cet export est déjà transmis à la comptabilité."))
    content = export_fec(export)
    fec.fec_assert_valid(content)
    AccountingExport.objects.filter(pk=export.pk).update(
        status=AccountingExport.Status.TRANSMITTED, transmitted_at=timezone.now(),
        transmitted_by=user if (user and user.is_authenticated) else None,
        fec_sha256=hashlib.sha256(content).hexdigest())
    export.refresh_from_db()
    return export


# ---------------------------------------------------------------- files

def export_rows(export: AccountingExport) -> list[tuple]:
    """The FEC rows (18 values) of the export, in date order (numbers continue per journal)."""
    rows = []
    entries = (export.entries.prefetch_related("lines").order_by("date", "journal", "number"))
    for entry in entries:
        for line in entry.lines.all():
            rows.append((entry.journal, entry.journal_label, str(entry.number), entry.date, line.account,
                         line.account_label, line.aux_account, line.aux_label, entry.piece_ref, entry.piece_date,
                         line.label, line.debit, line.credit, line.letter, line.letter_date, entry.date,
                         None, ""))
    return rows


def export_fec(export: AccountingExport, *, separator: str = "\t") -> bytes:
    return fec.fec_bytes(export_rows(export), separator=separator)


CSV_HEADERS = ("Code journal", "Date", "N° écriture", "N° de pièce", "Compte général", "Compte tiers",
               "Libellé", "Débit", "Crédit", "Lettrage", "Date de lettrage")


@dataclass(frozen=True)
class Layout:
    """The columns an accounting package's import wizard maps (books.md §2), one row per FEC line."""
    label: str
    headers: tuple[str, ...]
    row: Callable[[tuple, int], list]
    widths: tuple[int, ...] = ()


def _generic_row(row: tuple, _index: int) -> list:
    (journal, _jl, number, on, account, _al, aux, _xl, piece, _pd, label, debit, credit, letter, letter_date,
     *_rest) = row
    return [journal, on, int(number), piece, account, aux, label, debit, credit, letter, letter_date]


def _sage_row(row: tuple, _index: int) -> list:
    """Sage 100 Comptabilité, « format paramétrable » of the écritures import: one line per FEC line,
    the third-party account in its own column, the due date of an invoice left empty."""
    (journal, _jl, _number, on, account, _al, aux, _xl, piece, _pd, label, debit, credit, letter, *_rest) = row
    return [journal, on, piece[:13], piece, account, aux, label[:69], debit, credit, letter]


def _cegid_row(row: tuple, _index: int) -> list:
    """Cegid (Expert / Loop) écritures import: the third-party account flagged with the type « X »,
    one amount and its sense."""
    (journal, _jl, number, on, account, _al, aux, _xl, piece, _pd, label, debit, credit, letter, *_rest) = row
    return [journal, on, int(number), account, "X" if aux else "", aux, piece[:35], label[:35],
            "D" if debit else "C", debit or credit, letter]


def _ebp_row(row: tuple, index: int) -> list:
    """EBP Compta écritures import: line number, date, journal, account (the auxiliary when there is one:
    EBP keeps the third parties as 411 sub-accounts), automatic label (empty), label, piece, amount, sense."""
    (journal, _jl, _number, on, account, _al, aux, _xl, piece, _pd, label, debit, credit, *_rest) = row
    return [index, on, journal, aux or account, "", label[:40], piece[:15], debit or credit,
            "D" if debit else "C", None, "EUR"]


LAYOUTS = {
    "generic": Layout("Générique", CSV_HEADERS, _generic_row, (8, 12, 10, 18, 12, 12, 50, 12, 12, 9, 12)),
    "sage": Layout("Sage", ("Code journal", "Date", "N° de pièce", "Référence", "N° compte général",
                            "N° compte tiers", "Libellé écriture", "Débit", "Crédit", "Lettrage"), _sage_row,
                   (8, 12, 14, 18, 12, 12, 50, 12, 12, 9)),
    "cegid": Layout("Cegid", ("Journal", "Date", "N° pièce", "Compte général", "Type de compte", "Compte auxiliaire",
                              "Référence", "Libellé", "Sens", "Montant", "Lettrage"), _cegid_row,
                    (8, 12, 10, 12, 8, 12, 18, 40, 6, 12, 9)),
    "ebp": Layout("EBP", ("N° ligne", "Date", "Code journal", "N° compte", "Libellé automatique", "Libellé",
                          "N° pièce", "Montant", "Sens", "Date d'échéance", "Devise"), _ebp_row,
                  (8, 12, 8, 14, 8, 40, 16, 12, 6, 12, 6)),
}


def _layout(name: str) -> Layout:
    if name not in LAYOUTS:
        raise ValidationError(_("Présentation inconnue : « %(layout)s » (%(choices)s).") % {
            "layout": name, "choices": ", ".join(LAYOUTS)})
    return LAYOUTS[name]


def _table(export: AccountingExport, layout: str = "generic"):
    make_row = _layout(layout).row
    for index, row in enumerate(export_rows(export), start=1):
        yield make_row(row, index)


def export_csv(export: AccountingExport, layout: str = "generic") -> bytes:
    return exports.csv_bytes([_layout(layout).headers, *_table(export, layout)])


def export_xlsx(export: AccountingExport, layout: str = "generic") -> bytes:
    chosen = _layout(layout)
    return exports.xlsx_bytes(_("Écritures"), _table(export, layout), headers=chosen.headers, widths=chosen.widths)


def export_filename(export: AccountingExport, fmt: str, layout: str = "generic") -> str:
    """``SIRENFECAAAAMMJJ.txt`` for the FEC (SIREN of the establishment or of its association)."""
    if fmt == "fec":
        siret = export.establishment.siret or export.establishment.organisation.siret
        if not siret:
            raise ValidationError(_("Le SIRET de l'établissement %(name)s (ou de son association) est nécessaire "
                                    "au nom du FEC.") % {"name": export.establishment})
        return fec.fec_filename(siret[:9], export.date_to)
    suffix = "" if layout == "generic" else f"-{layout}"
    return f"ecritures-{export.establishment.code}-{export.date_from:%Y%m%d}-{export.date_to:%Y%m%d}{suffix}.{fmt}"


def export_content(export: AccountingExport, fmt: str, layout: str = "generic") -> bytes:
    """The file of ``fmt`` (fec, csv, xlsx); CSV and XLSX in the columns of ``layout`` (``LAYOUTS``)."""
    if fmt == "fec":
        content = export_fec(export)
        fec.fec_assert_valid(content)
        return content
    if fmt == "csv":
        return export_csv(export, layout)
    if fmt == "xlsx":
        return export_xlsx(export, layout)
    raise ValidationError(_("Format inconnu : « %(fmt)s » (fec, csv ou xlsx).") % {"fmt": fmt})
