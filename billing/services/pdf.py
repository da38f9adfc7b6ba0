"""Invoice PDFs: HTML from a Django template, PDF with WeasyPrint, stored per invoice.

* One WeasyPrint document per invoice (half the memory of a combined one); a period's print
  file is the concatenation of the stored per-invoice PDFs (``period_merged_pdf``, pypdf). Every
  print file (invoices, statements, tax certificates) is put together by ``pdfs_merge``.
* One ``FontConfiguration`` and one image cache per process, created
  lazily so that a forked Celery child builds its own (``shared_font_config()``).
* Everything shown comes from the invoice's snapshots (establishment identity, debtor name and
  address) so that a re-render of an issued invoice gives the same document.
* Amounts, dates and quantities are formatted in Python; the template only places strings
  (fast and identical everywhere). CSS is small and tables use ``table-layout: fixed``.
"""
from __future__ import annotations

import base64
import gc
import io
import logging
import mimetypes
import os
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Callable, Iterable

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.template.loader import get_template
from django.utils import timezone
from django.utils.translation import gettext as _

from core.money import ZERO, format_euros, round_money
from core.formats import fr_date

from ..models import BillingPeriod, Invoice

logger = logging.getLogger(__name__)

CHUNK_SIZE = 25
JOB_KIND = "billing.render_pdfs"
TEMPLATE = "billing/pdf/invoice.html"
RENDERED_STATUSES = (Invoice.Status.ISSUED, Invoice.Status.CANCELLED)  # an issued (even cancelled) invoice

LEGAL_MENTIONS = {
    "association": "Exonération de TVA, article 261-7-1° b du CGI",
    "public": "Établissement public — hors champ de la TVA (article 256 B du CGI)",
}
TITLES = {
    Invoice.Kind.INVOICE: "FACTURE",
    Invoice.Kind.CREDIT_NOTE: "AVOIR",
    Invoice.Kind.RAPPEL: "FACTURE DE RAPPEL",
}


# --- Process-wide WeasyPrint state ---------------------------------------------------------------
_FONT_CONFIG = None
_IMAGE_CACHE: dict = {}


def shared_font_config():
    """The process's one ``FontConfiguration`` (building one costs ~50 ms and memory)."""
    global _FONT_CONFIG
    if _FONT_CONFIG is None:
        from weasyprint.text.fonts import FontConfiguration

        _FONT_CONFIG = FontConfiguration()
    return _FONT_CONFIG


def _allowed_roots() -> list[Path]:
    return [Path(settings.MEDIA_ROOT).resolve(), Path(settings.STATIC_ROOT).resolve(),
            *(Path(p).resolve() for p in settings.STATICFILES_DIRS)]


def _url_fetcher():
    """Only inline data and local media/static files: invoice HTML never reaches the network.
    (WeasyPrint 70 takes a ``URLFetcher`` instance; it keeps per-request state, so one per render.)"""
    from urllib.parse import unquote, urlparse

    from weasyprint.urls import URLFetcher

    class LocalFetcher(URLFetcher):
        def fetch(self, url, headers=None):
            if url.startswith("file:"):
                path = Path(unquote(urlparse(url).path)).resolve()
                if not any(path.is_relative_to(root) for root in _allowed_roots()):
                    raise ValueError(f"Fichier refusé dans un PDF de facture : {path}")
            return super().fetch(url, headers)

    return LocalFetcher(allowed_protocols=("file", "data"))


# --- Formatting -----------------------------------------------------------------------------------
def fr_quantity(value: Decimal) -> str:
    text = format(value.normalize(), "f") if value == value.to_integral() else format(value, "f").rstrip("0")
    return text.replace(".", ",")


def fr_rate(value: Decimal) -> str:
    return fr_quantity(Decimal(value)) + "\u00a0%"


def _logo_src(name: str) -> str:
    """A URL WeasyPrint can load for the logo stored under ``name`` ('' if none / missing)."""
    if not name:
        return ""
    try:
        path = Path(default_storage.path(name))
    except NotImplementedError:  # remote storage: inline it
        try:
            with default_storage.open(name, "rb") as handle:
                data = handle.read()
        except OSError:
            return ""
        mime = mimetypes.guess_type(name)[0] or "image/png"
        return f"data:{mime};base64,{base64.b64encode(data).decode()}"
    return path.as_uri() if path.is_file() else ""


def legal_mention(legal_status: str) -> str:
    return LEGAL_MENTIONS.get(legal_status, "")


@dataclass
class VatRow:
    rate: str
    base: str
    vat: str
    total: str


def vat_breakdown(lines) -> tuple[list[VatRow], Decimal, Decimal, Decimal]:
    """Per rate: (HT, TVA, TTC). Line amounts are what the family pays (TTC, as tariffs are
    published), so the base is ``TTC / (1 + rate)`` rounded half up and TVA the difference."""
    by_rate: dict[Decimal, Decimal] = {}
    for line in lines:
        by_rate[line.vat_rate] = by_rate.get(line.vat_rate, ZERO) + line.amount
    rows, total_ht, total_vat, total_ttc = [], ZERO, ZERO, ZERO
    for rate in sorted(by_rate):
        ttc = by_rate[rate]
        ht = round_money(ttc / (1 + rate / 100))
        vat = ttc - ht
        rows.append(VatRow(fr_rate(rate), format_euros(ht), format_euros(vat), format_euros(ttc)))
        total_ht, total_vat, total_ttc = total_ht + ht, total_vat + vat, total_ttc + ttc
    return rows, total_ht, total_vat, total_ttc


def _resident_name(resident) -> str:
    if resident is None:
        return ""
    return f"{resident.get_civility_display()} {resident.full_name}".strip()


def invoice_context(invoice: Invoice) -> dict:
    snap = invoice.establishment_snapshot or {}
    if not snap:  # a draft has no snapshot yet: show the establishment as it is now
        from .issuing import establishment_snapshot

        snap = establishment_snapshot(invoice.establishment)
    legal_status = snap.get("legal_status", "")
    commercial = legal_status == "commercial"
    lines = list(invoice.lines.all())
    is_rappel = invoice.kind == Invoice.Kind.RAPPEL or any(ln.previous_unit_price is not None for ln in lines)
    rows = [{
        "label": ln.label, "date_from": fr_date(ln.date_from), "date_to": fr_date(ln.date_to),
        "quantity": fr_quantity(ln.quantity), "unit_price": format_euros(ln.unit_price),
        "previous_unit_price": format_euros(ln.previous_unit_price) if ln.previous_unit_price is not None else "",
        "amount": format_euros(ln.amount), "vat_rate": fr_rate(ln.vat_rate),
    } for ln in lines]
    vat_rows, total_ht, total_vat, total_ttc = vat_breakdown(lines) if commercial else ([], ZERO, ZERO, ZERO)
    is_credit = invoice.kind == Invoice.Kind.CREDIT_NOTE
    credited = invoice.credited_invoice if is_credit else None
    is_draft = invoice.status == Invoice.Status.DRAFT
    debtor_name, debtor_address, mode = invoice.debtor_name, invoice.debtor_address, invoice.payment_mode
    if is_draft and not debtor_name:  # preview: the identity the issue would copy
        from .issuing import _debtor_identity

        debtor_name, debtor_address, _email, mode = _debtor_identity(invoice)
    due = invoice.due_date
    if due is None and is_draft:
        from datetime import timedelta

        due = timezone.localdate() + timedelta(days=invoice.section.payment_due_days)
    return {
        "invoice": invoice,
        "is_draft": is_draft,
        "title": TITLES.get(invoice.kind, "FACTURE"),
        "number": invoice.number or _("Brouillon n° %(pk)s") % {"pk": invoice.pk},
        "issue_date": fr_date(invoice.issue_date) or fr_date(timezone.localdate()),
        "date_from": fr_date(invoice.date_from),
        "date_to": fr_date(invoice.date_to),
        "due_date": fr_date(due),
        "credited_number": credited.number if credited else "",
        "credited_date": fr_date(credited.issue_date) if credited else "",
        "est": snap,
        "logo_src": _logo_src(snap.get("logo", "")),
        "legal_mention": legal_mention(legal_status),
        "commercial": commercial,
        "debtor_name": debtor_name or _debtor_fallback(invoice),
        "debtor_address_lines": [ln for ln in (debtor_address or "").splitlines() if ln.strip()],
        # Issued: the name copied at issue (snapshot), never the live record.
        "resident_name": (invoice.resident_name or _resident_name(invoice.resident)) if not is_draft
        else _resident_name(invoice.resident),
        "on_receipt": invoice.section.payment_due_days == 0 if is_draft else (
            due is not None and due == invoice.issue_date),
        "is_rappel": is_rappel,
        "is_credit": is_credit,
        "rows": rows,
        "total": format_euros(abs(invoice.total) if is_credit else invoice.total),
        "vat_rows": vat_rows,
        "total_ht": format_euros(total_ht),
        "total_vat": format_euros(total_vat),
        "total_ttc": format_euros(total_ttc),
        "payment_mode": mode,
        "show_transfer": mode not in ("direct_debit", "cheque", "cash") and bool(snap.get("iban")),
        "show_cheque": mode not in ("direct_debit", "transfer", "cash"),
    }


def _debtor_fallback(invoice: Invoice) -> str:
    from ..selectors import debtor_label

    return debtor_label(invoice)


# --- Rendering ------------------------------------------------------------------------------------
def invoice_render_html(invoice: Invoice) -> str:
    return get_template(TEMPLATE).render(invoice_context(invoice))


def html_to_pdf(html: str, *, font_config=None, pdf_variant: str | None = None) -> bytes:
    """``pdf_variant="pdf/a-3b"`` for a Factur-X (PDF/A-3 with output intent and XMP)."""
    from weasyprint import HTML

    options = {"pdf_variant": pdf_variant} if pdf_variant else {}
    return HTML(string=html, url_fetcher=_url_fetcher()).write_pdf(
        font_config=font_config or shared_font_config(), cache=_IMAGE_CACHE, **options)


def invoice_render_pdf(invoice: Invoice, font_config=None) -> bytes:
    """The invoice as PDF bytes (drafts carry a « BROUILLON » watermark). Nothing is stored. An issued
    invoice to a payer that receives its invoices through Chorus Pro is a Factur-X (``facturx``)."""
    from .facturx import invoice_facturx_pdf, is_facturx

    if is_facturx(invoice):
        return invoice_facturx_pdf(invoice, font_config=font_config)
    return html_to_pdf(invoice_render_html(invoice), font_config=font_config)


def invoices_for_render():
    return Invoice.objects.select_related("establishment__organisation", "section", "resident", "relative", "payer",
                                          "payer_group", "credited_invoice").prefetch_related("lines")


def invoice_pdf_name(invoice: Invoice) -> str:
    code = (invoice.establishment_snapshot or {}).get("code") or invoice.establishment.code
    year = (invoice.issue_date or timezone.localdate()).year
    return f"invoices/{year}/{code}/{invoice.number}.pdf"


def _has_stored_pdf(invoice: Invoice) -> bool:
    return bool(invoice.pdf and invoice.pdf.name) and invoice.pdf.storage.exists(invoice.pdf.name)


def invoice_store_pdf(invoice: Invoice, *, font_config=None) -> str:
    """Render an issued invoice and store it (overwriting a previous file); returns the name."""
    if invoice.status not in RENDERED_STATUSES:
        raise ValueError("Seule une facture émise a un PDF archivé.")
    data = invoice_render_pdf(invoice, font_config=font_config)
    name = store_file(invoice.pdf.storage, invoice_pdf_name(invoice), data)
    now = timezone.now()
    # A single UPDATE of the two delivery fields (both in Invoice.MUTABLE_WHEN_ISSUED).
    Invoice.objects.filter(pk=invoice.pk).update(pdf=name, pdf_rendered_at=now)
    invoice.pdf.name, invoice.pdf_rendered_at = name, now
    return name


def store_file(storage, name: str, data: bytes) -> str:
    """Write ``data`` at exactly ``name``, replacing a previous file. On a local disk the file is
    written aside and renamed, so a reader (or a concurrent re-render) never sees half a PDF."""
    try:
        target = Path(storage.path(name))
    except NotImplementedError:
        if storage.exists(name):
            storage.delete(name)
        return storage.save(name, ContentFile(data))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-", suffix=".pdf")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, getattr(storage, "file_permissions_mode", None) or 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return name


def invoices_render_pdfs(invoice_ids: Iterable[int], progress: Callable | None = None, *, force: bool = False,
                         chunk_size: int = CHUNK_SIZE) -> dict:
    """Render and store the PDFs of the issued invoices among ``invoice_ids``, ``chunk_size`` at a
    time. Already rendered ones (file present) are skipped unless ``force``: safe to re-run.
    ``progress(current, total, message)`` is called after each chunk."""
    ids = list(Invoice.objects.filter(pk__in=list(invoice_ids), status__in=RENDERED_STATUSES)
               .order_by("number", "pk").values_list("pk", flat=True))
    total = len(ids)
    rendered = skipped = 0
    fonts = shared_font_config()
    if progress:
        progress(0, total, _("%(n)s facture(s) à traiter") % {"n": total})
    for start in range(0, total, chunk_size):
        chunk = list(invoices_for_render().filter(pk__in=ids[start:start + chunk_size]).order_by("number", "pk"))
        for invoice in chunk:
            if not force and _has_stored_pdf(invoice):
                skipped += 1
                continue
            invoice_store_pdf(invoice, font_config=fonts)
            rendered += 1
        del chunk
        gc.collect()
        done = min(start + chunk_size, total)
        if progress:
            progress(done, total, _("%(done)s / %(total)s facture(s)") % {"done": done, "total": total})
    return {"total": total, "rendered": rendered, "skipped": skipped}


def period_invoices(period: BillingPeriod):
    return Invoice.objects.filter(period=period, status__in=RENDERED_STATUSES).order_by("kind", "number", "pk")


def period_missing_pdfs(period: BillingPeriod) -> int:
    return period_invoices(period).filter(pdf="").count()


def period_merged_pdf(period: BillingPeriod) -> bytes:
    """One print file: the stored PDFs of the period's issued invoices, in number order (credit
    notes after invoices). Missing PDFs are rendered and stored first."""
    invoices = list(period_invoices(period))
    missing = [inv.pk for inv in invoices if not _has_stored_pdf(inv)]
    if missing:
        invoices_render_pdfs(missing)
        invoices = list(period_invoices(period))

    def stored():
        for invoice in invoices:
            with invoice.pdf.storage.open(invoice.pdf.name, "rb") as handle:
                yield handle.read()

    return pdfs_merge(stored(), title=f"Factures {period.section.alias} — {period.label}")


def pdfs_merge(documents: Iterable[bytes], *, title: str = "") -> bytes:
    """One print file: the PDF documents one after the other (pypdf), in the order given. Given a
    generator, the caller renders (or reads) each document only when its turn comes, and can report
    progress between them."""
    from pypdf import PdfWriter

    writer = PdfWriter()
    for data in documents:
        writer.append(io.BytesIO(data))
    if title:
        writer.add_metadata({"/Title": title})
    out = io.BytesIO()
    writer.write(out)
    writer.close()
    return out.getvalue()


# --- Job ----------------------------------------------------------------------------------------
def pdf_render_job(*, job, progress) -> dict:
    """Job runner "billing.render_pdfs": params {"period_id": …} or {"invoice_ids": […]},
    optional "force". Renders sequentially in chunks of 25, reporting progress per chunk."""
    from core.services.jobs import JobError

    params = job.params or {}
    if params.get("period_id"):
        period = BillingPeriod.objects.filter(pk=params["period_id"]).first()
        if period is None:
            raise JobError(_("Période introuvable."))
        ids = list(period_invoices(period).values_list("pk", flat=True))
    elif params.get("invoice_ids"):
        ids = [int(pk) for pk in params["invoice_ids"]]
    else:
        raise JobError(_("Aucune facture à mettre en PDF."))
    result = invoices_render_pdfs(ids, progress=progress, force=bool(params.get("force")))
    result["message"] = _("%(rendered)s PDF créé(s), %(skipped)s déjà prêt(s).") % result
    return result


def period_render_pdfs_start(period: BillingPeriod, user=None, *, force: bool = False):
    """Create and enqueue the PDF job of a period (call it after issuing)."""
    from core.services.jobs import job_create, job_enqueue
    from core.tasks import run_job

    params = {"period_id": period.pk}
    if force:
        params["force"] = True
    job = job_create(kind=JOB_KIND, label=_("PDF des factures — %(label)s") % {"label": period.label},
                     user=user, section=period.section, params=params)
    return job_enqueue(job=job, task=run_job)


def invoices_render_pdfs_start(*, invoice_ids: list[int], section, user=None):
    """Create and enqueue the PDF job of a few invoices (credit notes, rappels)."""
    from core.services.jobs import job_create, job_enqueue
    from core.tasks import run_job

    job = job_create(kind=JOB_KIND, label=_("PDF de %(n)s facture(s)") % {"n": len(invoice_ids)},
                     user=user, section=section, params={"invoice_ids": list(invoice_ids)})
    return job_enqueue(job=job, task=run_job)
