"""Invoice journal of a period: the filtered list with its totals, and its export line by line
(CSV for accounting imports, XLSX for people).

Bounded for big periods (10 000 invoices): the list is one query, the totals one aggregate, and an
export is two streamed queries (invoice heads via ``iterator()``, then lines as ``values()``),
whatever the number of invoices or lines. Money stays ``Decimal`` end to end (openpyxl writes
``Decimal`` as a number).
"""
from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import NamedTuple

from django.db.models import Case, Count, F, IntegerField, Q, QuerySet, Sum, Value, When
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from core.exports import csv_bytes, xlsx_bytes
from core.money import ZERO, round_money
from residents.models import PaymentMode

from ..models import Invoice, InvoiceLine
from ..selectors import debtor_label
from .payments import unpaid_q

HEADERS = ("NUMERO_FACTURE", "STATUT", "DEBITEUR", "REF_EXTERNE", "PRODUIT", "LIBELLE", "DU", "AU", "QUANTITE",
           "PRIX_UNITAIRE", "MONTANT", "DATE_EMISSION", "ECHEANCE", "MODE_REGLEMENT", "COMPTE_PRODUIT", "COMPTE_TIERS")
CHUNK = 2000
# What every period total includes — the period page, the journal and both exports give the same figure.
TOTALS_CAPTION = gettext_lazy("Total des factures, factures de rappel et avoirs (en négatif) de la période, brouillons "
                              "compris ; une facture annulée et son avoir s'annulent.")

# Column widths of the XLSX sheet (characters), in HEADERS order.
XLSX_WIDTHS = (20, 11, 36, 14, 10, 52, 12, 12, 11, 15, 14, 14, 12, 18, 15, 15)


class JournalRow(NamedTuple):
    """One invoice line of the journal, typed (dates are ``date``, numbers ``Decimal``)."""

    numero_facture: str
    statut: str
    debiteur: str
    ref_externe: str
    produit: str
    libelle: str
    du: date
    au: date
    quantite: Decimal
    prix_unitaire: Decimal
    montant: Decimal
    date_emission: date | None = None
    echeance: date | None = None
    mode_reglement: str = ""
    compte_produit: str = ""
    compte_tiers: str = ""


class Journal(NamedTuple):
    invoices: QuerySet[Invoice]
    totals: dict


def _effective_payment_mode():
    """The invoice's payment mode: its snapshot once issued; for drafts what issuing will copy
    (a payer pays by transfer, a resident or relative by the resident's mode)."""
    return Case(
        When(~Q(payment_mode=""), then=F("payment_mode")),
        When(debtor_kind=Invoice.DebtorKind.PAYER, then=Value(PaymentMode.TRANSFER.value)),
        default=F("resident__payment_mode"),
    )


def _check_choice(value, choices, what: str):
    if value in (None, ""):
        return None
    if value not in choices.values:
        raise ValueError(_("Filtre « %(what)s » inconnu : %(value)s") % {"what": what, "value": value})
    return value


def journal_queryset(*, period, status=None, debtor_kind=None, payment_mode=None,
                     unpaid: bool = False) -> QuerySet[Invoice]:
    """The invoices of ``period`` matching the filters, issued ones by number then drafts
    (``unpaid``: « impayées », issued invoices with a balance left)."""
    status = _check_choice(status, Invoice.Status, "état")
    debtor_kind = _check_choice(debtor_kind, Invoice.DebtorKind, "débiteur")
    payment_mode = _check_choice(payment_mode, PaymentMode, "mode de règlement")
    qs = (Invoice.objects.filter(period=period)
          .select_related("resident", "relative", "payer", "payer_group")
          .annotate(effective_payment_mode=_effective_payment_mode(),
                    draft_last=Case(When(number="", then=Value(1)), default=Value(0), output_field=IntegerField()))
          .order_by("draft_last", "number", "pk"))
    if status:
        qs = qs.filter(status=status)
    if debtor_kind:
        qs = qs.filter(debtor_kind=debtor_kind)
    if payment_mode:
        qs = qs.filter(effective_payment_mode=payment_mode)
    if unpaid:
        qs = qs.filter(unpaid_q())
    return qs


def journal_totals(invoices: QuerySet[Invoice]) -> dict:
    """Count and sum of the invoices, overall and per status — one aggregate query.

    ``{"count": 3, "total": Decimal, "by_status": [{"status", "label", "count", "total"}, …]}``
    (every status listed, zero included, in the order draft / issued / cancelled).
    """
    # Aliases must not be field names ("total" is one).
    aggregates = {"n_all": Count("pk"), "sum_all": Coalesce(Sum("total"), ZERO)}
    for status in Invoice.Status.values:
        aggregates[f"n_{status}"] = Count("pk", filter=Q(status=status))
        aggregates[f"sum_{status}"] = Coalesce(Sum("total", filter=Q(status=status)), ZERO)
    data = invoices.order_by().aggregate(**aggregates)
    return {
        "count": data["n_all"],
        "total": round_money(data["sum_all"]),  # SQLite sums decimals with extra places
        "by_status": [{"status": status, "label": str(label), "count": data[f"n_{status}"],
                       "total": round_money(data[f"sum_{status}"])} for status, label in Invoice.Status.choices],
    }


def journal_invoices(*, period, status=None, debtor_kind=None, payment_mode=None, unpaid=False) -> Journal:
    """``(invoices, totals)`` of a period's journal. Unknown filter values raise ``ValueError``."""
    invoices = journal_queryset(period=period, status=status, debtor_kind=debtor_kind, payment_mode=payment_mode,
                                unpaid=unpaid)
    return Journal(invoices, journal_totals(invoices))


def journal_rows(invoices: QuerySet[Invoice]) -> Iterator[JournalRow]:
    """One row per invoice line: issued invoices by number, then drafts; lines in their position
    (the order of ``journal_queryset``).

    Two queries in all: invoice heads (number, status, debtor label) streamed into a small dict,
    then the lines streamed as value tuples in the same order."""
    statuses = {value: str(label) for value, label in Invoice.Status.choices}
    modes = {value: str(label) for value, label in PaymentMode.choices}
    heads: dict[int, tuple] = {}
    for invoice in invoices.select_related("resident", "relative", "payer", "payer_group").iterator(chunk_size=CHUNK):
        mode = getattr(invoice, "effective_payment_mode", invoice.payment_mode) or ""
        heads[invoice.pk] = (invoice.number, statuses.get(invoice.status, invoice.status), debtor_label(invoice),
                             invoice.issue_date, invoice.due_date, modes.get(mode, mode),
                             invoice.payer.accounting_account if invoice.payer_id else "")
    if not heads:
        return
    lines = (InvoiceLine.objects.filter(invoice__in=invoices.order_by().values("pk"))
             .annotate(external_ref=Coalesce("resident__external_ref", "invoice__resident__external_ref", Value("")),
                       product_code=Coalesce("product__code", Value("")),
                       product_account=Coalesce("product__accounting_account", Value("")))
             .order_by(Case(When(invoice__number="", then=Value(1)), default=Value(0), output_field=IntegerField()),
                       "invoice__number", "invoice_id", "position", "pk")
             .values_list("invoice_id", "external_ref", "product_code", "label", "date_from", "date_to", "quantity",
                          "unit_price", "amount", "product_account"))
    for invoice_id, external_ref, product_code, label, date_from, date_to, quantity, unit_price, amount, account in (
            lines.iterator(chunk_size=CHUNK)):
        number, status, debtor, issue_date, due_date, mode, payer_account = heads[invoice_id]
        yield JournalRow(number, status, debtor, external_ref or "", product_code or "", label, date_from, date_to,
                         quantity, unit_price, amount, issue_date, due_date, mode, account or "", payer_account)


def total_label() -> str:
    """Label of the export's last row (the same total as the journal page and the period page)."""
    return _("TOTAL — %(caption)s") % {"caption": TOTALS_CAPTION}


def _with_total(rows: Iterator[JournalRow]) -> Iterator[tuple]:
    """The rows, then one total row (label under LIBELLE, amount under MONTANT)."""
    total = ZERO
    for row in rows:
        total += row.montant
        yield row
    yield ("", "", "", "", "", total_label(), None, None, None, None, round_money(total),
           None, None, "", "", "")


def journal_csv(period, **filters) -> bytes:
    """Semicolon-separated, decimal comma, UTF-8 with BOM, CRLF (what French spreadsheet and
    accounting imports expect), through the shared writer (formula-like texts neutralised)."""
    rows = _with_total(journal_rows(journal_queryset(period=period, **filters)))  # typed: dates, Decimals
    return csv_bytes(itertools.chain([HEADERS], rows))


def journal_xlsx(period, **filters) -> bytes:
    """One sheet, same columns as the CSV; real dates and numbers, bold frozen header; texts are
    never formulas (shared writer)."""
    rows = _with_total(journal_rows(journal_queryset(period=period, **filters)))  # typed: dates, Decimals
    return xlsx_bytes(_("Journal"), rows, headers=HEADERS, widths=XLSX_WIDTHS)


def journal_filename(period, fmt: str) -> str:
    return f"journal_{period.section.alias}_{period.start:%Y-%m}.{fmt}"


def journal_export_job(*, job, progress) -> dict:
    """Job runner "billing.export_journal": params {"period_id", "fmt", "filters"}. The file is stored
    under MEDIA_ROOT/exports/<job id>/ and downloaded through the job page (same access as the job)."""
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage
    from django.utils.translation import gettext as _

    from core.services.jobs import JobError

    from ..models import BillingPeriod

    period = BillingPeriod.objects.filter(pk=job.params.get("period_id")).select_related("section").first()
    fmt = job.params.get("fmt")
    if period is None or fmt not in ("csv", "xlsx"):
        raise JobError(_("Export impossible : période ou format inconnu."))
    progress(0, 1, _("Écriture du fichier"))
    try:
        content = (journal_csv if fmt == "csv" else journal_xlsx)(period, **(job.params.get("filters") or {}))
    except ValueError as exc:
        raise JobError(str(exc)) from exc
    name = default_storage.save(f"exports/{job.pk}/{journal_filename(period, fmt)}", ContentFile(content))
    return {"file": name, "size": len(content),
            "message": _("Export prêt : %(name)s.") % {"name": journal_filename(period, fmt)}}
