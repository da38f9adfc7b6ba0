"""Issuing invoices: gapless numbers from a row-locked counter, identity snapshots, immutability;
credit notes as the only correction."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from core.formats import fr_date
from core.money import format_euros, round_money
from core.text import text_key
from residents.models import Relative

from ..models import Invoice, InvoiceLine, NumberSequence
from .payments import credit_note_allocate

SERIES_OF_KIND = {Invoice.Kind.INVOICE: "invoice", Invoice.Kind.RAPPEL: "invoice",
                  Invoice.Kind.CREDIT_NOTE: "credit_note"}


def format_number(*, code: str, series: str, year: int, number: int) -> str:
    if series == "credit_note":
        return f"{code}-AV-{year}-{number:06d}"
    return f"{code}-{year}-{number:06d}"


def next_numbers(*, establishment, series: str, year: int, count: int) -> list[str]:
    """Reserve ``count`` consecutive numbers. Must run inside the issuing transaction: the counter
    row stays locked (SELECT … FOR UPDATE) until commit, so concurrent issues queue up and a
    rolled-back issue gives its numbers back — no gap, no duplicate."""
    NumberSequence.objects.get_or_create(establishment=establishment, kind=series, year=year)
    sequence = NumberSequence.objects.select_for_update().get(establishment=establishment, kind=series, year=year)
    first = sequence.last_number + 1
    sequence.last_number += count
    sequence.save(update_fields=["last_number"])
    return [format_number(code=establishment.code, series=series, year=year, number=n)
            for n in range(first, first + count)]


def establishment_snapshot(establishment) -> dict:
    return {
        "name": establishment.name, "code": establishment.code, "address": establishment.address,
        "postal_code": establishment.postal_code, "city": establishment.city, "finess": establishment.finess,
        "siret": establishment.siret, "legal_status": establishment.legal_status, "phone": establishment.phone,
        "iban": establishment.iban, "bic": establishment.bic, "creditor_id": establishment.creditor_id,
        "organisation": establishment.organisation.name,
        "logo": establishment.logo.name if establishment.logo else "",
    }


def _debtor_identity(invoice: Invoice, recipients: dict | None = None) -> tuple[str, str, str, str]:
    """(name, address, e-mail, payment mode) of the debtor at issue time."""
    if invoice.debtor_kind == Invoice.DebtorKind.PAYER:
        payer = invoice.payer
        name = payer.name + (f" — {invoice.payer_group.label}" if invoice.payer_group else "")
        return name, "\n".join(payer.address_lines), payer.email, "transfer"
    resident = invoice.resident
    if invoice.debtor_kind == Invoice.DebtorKind.RELATIVE and invoice.relative:
        rel = invoice.relative
        name = f"{rel.get_civility_display()} {rel}".strip()
        return name, "\n".join(rel.address_lines), rel.email, resident.payment_mode
    name = f"{resident.get_civility_display()} {resident.full_name}".strip()
    if recipients is not None:
        recipient = recipients.get(resident.pk)
    else:
        recipient = Relative.objects.filter(resident=resident, receives_invoices=True).first()
    if recipient and recipient.address_lines:
        address = "\n".join([_("Chez %(name)s") % {"name": f"{recipient.get_civility_display()} {recipient}".strip()},
                             *recipient.address_lines])
    else:
        address = "\n".join(resident.address_lines)
    return name, address, resident.email, resident.payment_mode


def _sort_name(invoice: Invoice) -> str:
    """The debtor's name without civility, for the numbering order (billing-rules §6)."""
    if invoice.debtor_kind == Invoice.DebtorKind.PAYER and invoice.payer_id:
        return invoice.payer.name + (f" {invoice.payer_group.label}" if invoice.payer_group_id else "")
    if invoice.debtor_kind == Invoice.DebtorKind.RELATIVE and invoice.relative_id:
        rel = invoice.relative
        return f"{rel.last_name} {getattr(rel, 'first_name', '')}"
    if invoice.resident_id:
        return f"{invoice.resident.last_name} {invoice.resident.first_name}"
    return invoice.debtor_name


def _resident_label(resident) -> str:
    if resident is None:
        return ""
    return f"{resident.get_civility_display()} {resident.full_name}".strip()


def _check_chronology(*, establishment, series: str, kinds: list[str], issue_date: date) -> None:
    """An issue date is never earlier than the last one of its series (checked under the series lock)."""
    last = (Invoice.objects.filter(establishment=establishment, kind__in=kinds, issue_date__year=issue_date.year)
            .exclude(status=Invoice.Status.DRAFT).order_by("-issue_date").values_list("issue_date", flat=True)
            .first())
    if last and issue_date < last:
        label = _("des avoirs") if series == "credit_note" else _("des factures")
        raise ValidationError(_(
            "Date d'émission du %(date)s refusée : la série %(series)s %(year)s de %(code)s a déjà une émission "
            "au %(last)s. Les numéros suivent l'ordre chronologique : choisissez le %(last)s ou une date "
            "postérieure.") % {"date": fr_date(issue_date), "series": label, "year": issue_date.year,
                                "code": establishment.code, "last": fr_date(last)})


@transaction.atomic
def invoices_issue(*, invoice_ids: list[int], user=None, issue_date: date | None = None) -> list[Invoice]:
    """Issue drafts: lock them, number them in a stable order (debtor name, accent-insensitive, then
    draft id), copy identities, freeze them."""
    issue_date = issue_date or timezone.localdate()
    # Lock the invoice rows only (``of``): PostgreSQL refuses FOR UPDATE on the nullable side of the joins.
    invoices = list(Invoice.objects.select_for_update(of=("self",))
                    .filter(pk__in=invoice_ids, status=Invoice.Status.DRAFT)
                    .select_related("establishment__organisation", "resident", "relative", "payer", "payer_group",
                                    "section")
                    .order_by("pk"))
    if not invoices:
        return []
    line_sums = dict(InvoiceLine.objects.filter(invoice__in=[inv.pk for inv in invoices]).order_by()
                     .values("invoice_id").annotate(total=Sum("amount")).values_list("invoice_id", "total"))
    for inv in invoices:
        if inv.kind != Invoice.Kind.CREDIT_NOTE and inv.total < 0:
            raise ValidationError(_("La facture brouillon n° %(pk)s a un total négatif.") % {"pk": inv.pk})
        if inv.pk not in line_sums or round_money(line_sums[inv.pk]) != inv.total:
            raise ValidationError(_("La facture brouillon n° %(pk)s ne peut pas être émise : son total (%(total)s) "
                                    "n'est pas la somme de ses lignes (%(lines)s). Régénérez la période.") % {
                "pk": inv.pk, "total": format_euros(inv.total),
                "lines": format_euros(line_sums.get(inv.pk) or 0)})
    einvoices = _einvoice_snapshots(invoices)
    snapshots = {}
    recipients = {r.resident_id: r for r in Relative.objects.filter(
        resident_id__in={i.resident_id for i in invoices if i.resident_id}, receives_invoices=True)}
    for inv in invoices:
        name, address, email, mode = _debtor_identity(inv, recipients)
        inv.debtor_name, inv.debtor_address, inv.debtor_email, inv.payment_mode = name[:250], address, email, mode
        inv.resident_name = _resident_label(inv.resident)[:250]
    invoices.sort(key=lambda i: (i.establishment_id, SERIES_OF_KIND[i.kind], text_key(_sort_name(i)), i.pk))
    by_series: dict[tuple, list[Invoice]] = {}
    for inv in invoices:
        by_series.setdefault((inv.establishment_id, SERIES_OF_KIND[inv.kind]), []).append(inv)
    for (_establishment_id, series), group in by_series.items():
        establishment = group[0].establishment
        numbers = next_numbers(establishment=establishment, series=series, year=issue_date.year, count=len(group))
        _check_chronology(establishment=establishment, series=series, issue_date=issue_date,
                          kinds=[k for k, v in SERIES_OF_KIND.items() if v == series])
        if establishment.pk not in snapshots:
            snapshots[establishment.pk] = establishment_snapshot(establishment)
        for inv, number in zip(group, numbers):
            inv.number = number
            inv.status = Invoice.Status.ISSUED
            inv.issue_date = issue_date
            # §6: issue date + the section's payment delay (0 = au comptant, due on receipt);
            # a credit note is owed to the debtor: no due date.
            inv.due_date = (None if inv.kind == Invoice.Kind.CREDIT_NOTE
                            else issue_date + timedelta(days=inv.section.payment_due_days))
            inv.establishment_snapshot = snapshots[establishment.pk]
            inv.issued_by = user if (user and user.is_authenticated) else None
            inv.einvoice = einvoices.get(inv.pk, {})
    _write_issued(invoices)
    return invoices


def _einvoice_snapshots(invoices: list[Invoice]) -> dict[int, dict]:
    """The Chorus Pro data of the invoices addressed to a payer that requires Chorus Pro (books.md §3),
    copied at issue so that the Factur-X re-rendered later carries the same identifiers. Refuses to
    issue, naming the payer and the field, when a required identifier is missing or invalid."""
    from stdnum.fr import siret as stdnum_siret

    result = {}
    for inv in invoices:
        payer = inv.payer if inv.debtor_kind == Invoice.DebtorKind.PAYER else None
        if payer is None or not payer.chorus_pro:
            continue
        if not stdnum_siret.is_valid(payer.siret or ""):
            raise ValidationError(_("La facture brouillon n° %(pk)s ne peut pas être émise : le payeur %(payer)s "
                                    "reçoit ses factures par Chorus Pro et son SIRET « %(siret)s » est absent ou "
                                    "invalide (fiche du payeur, Définition).") % {
                "pk": inv.pk, "payer": payer, "siret": payer.siret})
        credited = inv.credited_invoice.einvoice if inv.credited_invoice_id and inv.credited_invoice else {}
        engagement = credited.get("engagement_number") or payer.chorus_engagement_number
        if payer.chorus_engagement_required and not engagement:
            raise ValidationError(_("La facture brouillon n° %(pk)s ne peut pas être émise : le payeur %(payer)s "
                                    "exige un numéro d'engagement (fiche du payeur, Paramétrage).") % {
                "pk": inv.pk, "payer": payer})
        result[inv.pk] = {
            "buyer_siret": payer.siret, "buyer_name": payer.name,
            "service_code": credited.get("service_code") or payer.chorus_service_code,
            "engagement_number": engagement, "profile": payer.facturx_profile or "en16931",
        }
    return result


def _write_issued(invoices: list[Invoice]) -> None:
    """Persist the issue in a few statements (``bulk_update``'s CASE expressions are slow at 10 000 rows):
    one executemany for the per-invoice values, then one UPDATE per establishment for the shared ones."""
    table = connection.ops.quote_name(Invoice._meta.db_table)
    now = timezone.now()
    rows = [(inv.number, inv.debtor_name, inv.debtor_address, inv.debtor_email, inv.resident_name, inv.payment_mode,
             inv.issue_date, inv.due_date, inv.pk) for inv in invoices]
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET number = %s, debtor_name = %s, debtor_address = %s, debtor_email = %s, "
            f"resident_name = %s, payment_mode = %s, issue_date = %s, due_date = %s WHERE id = %s", rows)
    for inv in invoices:  # the few invoices to Chorus Pro payers (still drafts here)
        if inv.einvoice:
            Invoice.objects.filter(pk=inv.pk, status=Invoice.Status.DRAFT).update(einvoice=inv.einvoice)
    by_establishment: dict[int, list[Invoice]] = {}
    for inv in invoices:
        by_establishment.setdefault(inv.establishment_id, []).append(inv)
    for group in by_establishment.values():
        first = group[0]
        Invoice.objects.filter(pk__in=[inv.pk for inv in group], status=Invoice.Status.DRAFT).update(
            status=Invoice.Status.ISSUED, establishment_snapshot=first.establishment_snapshot,
            issued_by=first.issued_by, updated_at=now)
    _log_issued(invoices, now)


def _log_issued(invoices: list[Invoice], now) -> None:
    """One audit-log entry per issued invoice (the bulk writes above send no model signals)."""
    from core.audit import log_changes_bulk

    by_actor: dict = {}
    for inv in invoices:
        by_actor.setdefault(inv.issued_by, []).append(inv)
    for actor, group in by_actor.items():
        log_changes_bulk(Invoice, [
            (inv.pk, inv.number, {"status": [Invoice.Status.DRAFT.value, Invoice.Status.ISSUED.value],
                                  "number": ["", inv.number], "issue_date": ["None", str(inv.issue_date)]})
            for inv in group], actor=actor, timestamp=now)


@transaction.atomic
def period_issue(*, period, user=None, issue_date: date | None = None) -> list[Invoice]:
    """Issue the period's drafts under the period's row lock, as generation takes it: a generation
    running at the same time waits (and then keeps what was issued) instead of deleting drafts that
    are being numbered. Stale drafts (data changed after generation) are refused."""
    from ..models import BillingPeriod

    period = BillingPeriod.objects.select_for_update().get(pk=period.pk)
    if period.drafts_stale_since and period.invoices.filter(status=Invoice.Status.DRAFT).exists():
        raise ValidationError(_(
            "Les brouillons de la période %(label)s sont à régénérer : des données de facturation ont changé "
            "depuis la génération. Régénérez la période avant d'émettre.") % {"label": period.label})
    ids = list(period.invoices.filter(status=Invoice.Status.DRAFT).values_list("pk", flat=True))
    return invoices_issue(invoice_ids=ids, user=user, issue_date=issue_date)


def credit_left_by_line(invoice: Invoice) -> dict[int, Decimal]:
    """What is left to credit on each line of ``invoice``, signed like the line: its amount plus the
    (opposite-signed) credit lines of the credit notes already issued on it."""
    credited = dict(InvoiceLine.objects.filter(credited_line__invoice=invoice)
                    .exclude(invoice__status=Invoice.Status.DRAFT)
                    .values("credited_line_id").annotate(total=Sum("amount")).values_list("credited_line_id", "total"))
    return {ln.pk: ln.amount + credited.get(ln.pk, Decimal("0.00")) for ln in invoice.lines.all()}


def full_credit_total(invoice: Invoice) -> Decimal:
    """The total of the credit note that would cancel what is left of ``invoice`` (negative or zero)."""
    return -sum(credit_left_by_line(invoice).values(), Decimal("0.00"))


@transaction.atomic
def credit_note_create(*, invoice: Invoice, user=None, lines: dict[int, Decimal] | None = None,
                       reason: str = "", issue_date: date | None = None,
                       line_reason: str = InvoiceLine.Reason.CREDIT) -> Invoice:
    """Issue a credit note cancelling what is left of ``invoice`` (``lines=None``) or part of it
    (``lines`` = {line id: amount to credit, positive}). Each line is credited at most what earlier
    credit notes left of it; a negative line (social-aid deduction) is credited with the opposite
    sign. When nothing is left on any line, the invoice is cancelled. ``line_reason`` marks credit lines
    of their own kind (the quarterly pocket money gives back part of the contribution lines)."""
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if invoice.status != Invoice.Status.ISSUED or invoice.kind == Invoice.Kind.CREDIT_NOTE:
        raise ValidationError(_("Seule une facture émise peut faire l'objet d'un avoir."))
    source_lines = {ln.pk: ln for ln in invoice.lines.all()}
    left = credit_left_by_line(invoice)
    if lines is None:  # full credit: every line's remainder, zero lines included for the record
        selection = {pk: -left[pk] for pk, ln in source_lines.items() if left[pk] != 0 or ln.amount == 0}
        if not any(left.values()) and all(ln.amount != 0 for ln in source_lines.values()):
            raise ValidationError(_("La facture %(number)s est déjà entièrement créditée.") % {
                "number": invoice.number})
    else:
        selection = {}
        for line_id, amount in lines.items():
            source = source_lines.get(line_id)
            if source is None:
                raise ValidationError(_("La ligne %(id)s n'appartient pas à la facture %(number)s.") % {
                    "id": line_id, "number": invoice.number})
            amount = round_money(amount)
            maximum = abs(left[line_id])
            if amount <= 0 or amount > maximum:
                raise ValidationError(_(
                    "Montant à créditer invalide pour « %(label)s » : %(amount)s (maximum %(max)s).") % {
                    "label": source.label, "amount": format_euros(amount), "max": format_euros(maximum)})
            selection[line_id] = amount if source.amount < 0 else -amount
    if not selection:
        raise ValidationError(_("Choisissez au moins une ligne à créditer."))
    total = sum(selection.values(), Decimal("0.00"))
    if lines is not None and total > 0:
        raise ValidationError(_(
            "Cet avoir augmenterait la somme due (%(amount)s) : créditez aussi les lignes positives, ou "
            "établissez une facture complémentaire.") % {"amount": format_euros(total)})
    already = sum((cn.total for cn in invoice.credit_notes.exclude(status=Invoice.Status.DRAFT)), Decimal("0.00"))
    if -(total + already) > invoice.total:
        raise ValidationError(_(
            "Le total des avoirs (%(credited)s) dépasserait le montant de la facture %(number)s (%(total)s) : "
            "créditez aussi les lignes négatives (déductions).") % {
            "credited": format_euros(-(total + already)), "number": invoice.number,
            "total": format_euros(invoice.total)})
    credit = Invoice.objects.create(
        period=invoice.period, section=invoice.section, establishment=invoice.establishment,
        kind=Invoice.Kind.CREDIT_NOTE, debtor_kind=invoice.debtor_kind, resident=invoice.resident,
        relative=invoice.relative, payer=invoice.payer, payer_group=invoice.payer_group, credited_invoice=invoice,
        date_from=invoice.date_from, date_to=invoice.date_to, comment=reason[:200], total=total)
    InvoiceLine.objects.bulk_create([
        InvoiceLine(invoice=credit, resident=source.resident, stay=source.stay, product=source.product,
                    label=(_("Avoir sur %(number)s : %(label)s") % {"number": invoice.number,
                                                                   "label": source.label})[:250],
                    reason=line_reason, date_from=source.date_from, date_to=source.date_to,
                    quantity=Decimal("1"), unit_price=amount, amount=amount, vat_rate=source.vat_rate,
                    position=position, credited_line=source)
        for position, (source, amount) in enumerate((source_lines[pk], amount) for pk, amount in selection.items())])
    invoices_issue(invoice_ids=[credit.pk], user=user, issue_date=issue_date)
    credit.refresh_from_db()
    if not any(credit_left_by_line(invoice).values()):
        invoice.status = Invoice.Status.CANCELLED
        invoice.save(update_fields=["status", "updated_at"])
    credit_note_allocate(credit_note=credit, user=user)
    return credit
