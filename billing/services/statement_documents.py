"""Statement documents: the PDF (WeasyPrint, like the invoices), the XLSX export of a period (through
``core.exports``), the e-mail through the outbox (one campaign, the PDF attached by the worker;
payers without an e-mail address are reported, never skipped silently) and the batch print (a job
that merges the chosen statements' PDFs, in payer order, into one file)."""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db.models import F
from django.dispatch import receiver
from django.template.loader import get_template
from django.utils import timezone
from django.utils.translation import gettext as _

from core.exports import xlsx_bytes
from core.formats import fr_date
from core.money import format_euros
from core.text import text_key
from mailing.models import MailCampaign, OutgoingMessage
from mailing.services.campaigns import campaign_create, campaign_start
from mailing.services.documents import Attachment, DocumentUnavailable, document_key, register_document
from mailing.services.outbox import message_build, messages_queue
from mailing.signals import message_sent

from ..models import Statement
from .issuing import establishment_snapshot
from .mailing import _sender
from .pdf import html_to_pdf, pdfs_merge, store_file
from .statements import statement_settlement

STATEMENT_KIND = "billing.statement"


def statement_title(statement: Statement) -> str:
    return (_("Bordereau n° %(number)s") % {"number": statement.number} if statement.number
            else _("Bordereau provisoire (non validé)"))


def statement_html(statement: Statement) -> str:
    payer = statement.payer
    lines = list(statement.lines.select_related("invoice").order_by("resident_name", "pk"))
    return get_template("billing/pdf/statement.html").render({
        "statement": statement, "title": statement_title(statement), "payer": payer,
        "est": establishment_snapshot(statement.establishment), "section": statement.section,
        "period": statement.period, "period_label": statement.period_label, "date": fr_date(statement.statement_date),
        "group": statement.payer_group, "printed": fr_date(timezone.localdate()),
        "rows": [{"name": ln.resident_name, "invoice": ln.invoice.number, "days": ln.days,
                  "deduction": ln.is_deduction, "amount": format_euros(ln.amount)} for ln in lines],
        "beneficiaries": len({ln.resident_name for ln in lines}),
        "total": format_euros(statement.total)})


def statement_pdf(statement: Statement) -> bytes:
    return html_to_pdf(statement_html(statement))


def statement_filename(statement: Statement) -> str:
    return f"{statement.number or f'bordereau-provisoire-{statement.pk}'}.pdf"


def statements_xlsx(statements) -> bytes:
    """One row per statement line: the statement, the payer, the beneficiary, the invoice, days, amount,
    with what is settled and left per statement."""
    statements = list(statements)
    settled = statement_settlement(statements)
    rows = []
    for statement in statements:
        paid, left = settled[statement.pk]
        for line in statement.lines.select_related("invoice").order_by("resident_name", "pk"):
            rows.append([statement.number or _("provisoire"), statement.statement_date, statement.payer.code,
                         statement.payer.name, statement.payer_group.code if statement.payer_group else "",
                         statement.get_status_display(), line.resident_name, line.invoice.number, line.days,
                         line.amount, _("déduction") if line.is_deduction else "", statement.total, paid, left])
    return xlsx_bytes(_("Bordereaux"), rows, headers=[
        "BORDEREAU", "DATE", "PAYEUR", "NOM_PAYEUR", "GROUPE", "ETAT", "BENEFICIAIRE", "FACTURE", "JOURS", "MONTANT",
        "DEDUCTION", "TOTAL_BORDEREAU", "REGLE", "RESTE"], widths=[22, 12, 10, 30, 8, 10, 30, 22, 8, 12, 10, 14, 12, 12])


# --- e-mail ------------------------------------------------------------------------------------------
def statement_key(statement) -> str:
    return document_key(STATEMENT_KIND, getattr(statement, "pk", statement))


def statement_attachment(ident: str) -> Attachment:
    statement = Statement.objects.select_related("payer", "establishment", "section", "period").filter(
        pk=ident).first()
    if statement is None:
        raise DocumentUnavailable(_("Bordereau introuvable (n° interne %(pk)s).") % {"pk": ident})
    return Attachment(statement_filename(statement), statement_pdf(statement), "application/pdf")


register_document(STATEMENT_KIND, statement_attachment)


@receiver(message_sent, dispatch_uid="billing.statement_last_sent_at")
def _statement_sent(sender, message: OutgoingMessage, **kwargs):
    kind, _sep, ident = message.related_key.rpartition(":")
    if kind == STATEMENT_KIND and ident.isdigit() and message.sent_at is not None:
        Statement.objects.filter(pk=int(ident)).update(last_sent_at=message.sent_at)


def statements_send(*, statements, user=None, start: bool = True) -> tuple[MailCampaign | None, list[Statement]]:
    """Queue one message per validated statement to its payer's address (one campaign). Returns the
    campaign and the statements whose payer has no e-mail address (not sent, to print)."""
    statements = list(statements)
    if any(s.status != Statement.Status.VALIDATED for s in statements):
        raise ValidationError(_("Seuls les bordereaux validés s'envoient."))
    sendable = [s for s in statements if s.payer.email]
    without = [s for s in statements if not s.payer.email]
    if not sendable:
        return None, without
    first = sendable[0]
    sender = _sender(first.establishment)
    campaign = campaign_create(organisation=first.establishment.organisation, section=first.section,
                               kind=MailCampaign.Kind.PERIOD,
                               label=_("Bordereaux — %(period)s") % {"period": first.period_label},
                               user=user, context={"statement_ids": [s.pk for s in sendable]})
    messages = []
    for statement in sendable:
        subject = _("Bordereau %(number)s — %(period)s") % {"number": statement.number,
                                                             "period": statement.period_label}
        body = _("Bonjour,\n\nVeuillez trouver ci-joint le bordereau n° %(number)s du %(date)s (%(period)s) : "
                 "%(total)s.\n\nCordialement,\n%(establishment)s") % {
            "number": statement.number, "date": fr_date(statement.statement_date), "period": statement.period_label,
            "total": format_euros(statement.total), "establishment": statement.establishment.name}
        messages.append(message_build(
            organisation=statement.establishment.organisation, section=statement.section, campaign=campaign,
            sender_name=sender[0], sender_email=sender[1], recipients=[statement.payer.email], subject=subject,
            body=body, attachments=[{"document": statement_key(statement)}], related_key=statement_key(statement),
            related_label=f"{statement.number} — {statement.payer.name}", user=user))
    messages_queue(messages)
    if start:
        campaign_start(campaign=campaign, user=user)
    return campaign, without


# --- batch print (one PDF for many statements) -------------------------------------------------------
PRINT_JOB_KIND = "billing.statements_print"


def statements_print_order(statements):
    """Payer order, as the statements lists show them: payer code, then group, beneficiary, date, number."""
    return statements.order_by("payer__code", F("payer_group__code").asc(nulls_first=True),
                               F("resident__sort_key").asc(nulls_first=True), "statement_date", "number", "pk")


def statements_print_check(*, section, statement_ids) -> list[Statement]:
    """The statements chosen for one print file, checked against the section they are printed from:
    an id that is not a statement of ``section`` (another section's, or gone) refuses the whole batch
    with a message naming it. Returned in payer order."""
    ids = []
    for raw in statement_ids:
        try:
            ids.append(int(raw))
        except (TypeError, ValueError) as exc:
            raise ValidationError(_("Bordereau « %(value)s » : identifiant invalide, impression refusée.") % {
                "value": raw}) from exc
    if not ids:
        raise ValidationError(_("Cochez au moins un bordereau à imprimer."))
    found = list(statements_print_order(Statement.objects.filter(section=section, pk__in=ids)
                                        .select_related("payer", "payer_group", "period", "establishment",
                                                        "section")))
    unknown = sorted(set(ids) - {s.pk for s in found})
    if unknown:
        raise ValidationError(_("Bordereau(x) n° interne %(ids)s : inconnu(s) dans la section %(alias)s, "
                                "impression refusée.") % {"ids": ", ".join(map(str, unknown)),
                                                         "alias": section.alias})
    return found


def statements_print_filename(section, statements: list[Statement]) -> str:
    """``bordereaux-TIL-HP-avril-2026.pdf`` when they share a period (or range), else ``…-selection.pdf``."""
    periods = {s.period_label for s in statements}
    slug = "-".join(text_key(periods.pop()).split()) if len(periods) == 1 else ""
    return f"bordereaux-{section.alias}-{slug or 'selection'}.pdf"


def statements_print_job(*, job, progress) -> dict:
    """Job runner "billing.statements_print": params {"statement_ids": […], "period_id"?}. Renders each
    statement's PDF (``statement_pdf``, as the one-by-one download does) in payer order and merges them
    (``pdfs_merge``) into one file stored under exports/<job id>/, downloaded from the job's progress
    block. Writes nothing else: a re-run (or a redelivered message) only writes the file again."""
    from django.core.files.storage import default_storage

    from core.services.jobs import JobError

    section = job.section
    if section is None:
        raise JobError(_("Section introuvable."))
    try:
        statements = statements_print_check(section=section, statement_ids=(job.params or {}).get("statement_ids")
                                            or [])
    except ValidationError as exc:
        raise JobError(" ".join(exc.messages)) from exc
    total = len(statements)
    progress(0, total, _("%(n)s bordereau(x) à imprimer") % {"n": total})

    def rendered():
        for index, statement in enumerate(statements, start=1):
            yield statement_pdf(statement)
            progress(index, total, _("%(done)s / %(total)s bordereau(x)") % {"done": index, "total": total})

    content = pdfs_merge(rendered(), title=_("Bordereaux %(alias)s") % {"alias": section.alias})
    name = store_file(default_storage, f"exports/{job.pk}/{statements_print_filename(section, statements)}", content)
    payers = list(dict.fromkeys(s.payer.code for s in statements))
    return {"file": name, "count": total, "statement_ids": [s.pk for s in statements], "payers": payers,
            "message": _("%(n)s bordereau(x) de %(p)s payeur(s) réunis dans un PDF à imprimer.") % {
                "n": total, "p": len(payers)}}


def statements_print_start(*, section, statement_ids, period=None, user=None):
    """Check the chosen statements against ``section`` (refused with a French message otherwise), then
    create and enqueue the print job. ``period`` (the page it was started from) only labels it and lets
    that page find it again."""
    from core.services.jobs import job_create, job_enqueue
    from core.tasks import run_job

    statements = statements_print_check(section=section, statement_ids=statement_ids)
    where = period.label if period is not None else _("plage de dates")
    job = job_create(kind=PRINT_JOB_KIND, user=user, section=section,
                     label=_("Impression de %(n)s bordereau(x) — %(where)s") % {"n": len(statements), "where": where},
                     params={"statement_ids": [s.pk for s in statements],
                             "period_id": period.pk if period is not None else None})
    return job_enqueue(job=job, task=run_job)
