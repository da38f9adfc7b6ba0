"""*Relevé de compte*: a debtor's account (the resident or a paying relative) over a date range —
opening balance, invoices, credit notes, payments, refunds and cancellations in date order with a
running balance, closing balance — as PDF (WeasyPrint) and XLSX (shared writer), and by e-mail
through the outbox (the statement is rendered when the message is sent).

The entries are those of the *Compte* tab (``selectors.account_entries``): the opening balance is
the balance after every entry dated before the first day; positive = owed, negative = credit.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.template.loader import get_template
from django.utils import timezone
from django.utils.translation import gettext as _

from core.exports import xlsx_bytes
from core.formats import fr_date
from core.money import ZERO, format_euros
from mailing.services import placeholders as mail_placeholders
from mailing.services.documents import Attachment, DocumentUnavailable, document_key, register_document
from residents.models import Relative, Resident

from ..models import Invoice
from ..selectors import account_entries
from .issuing import establishment_snapshot
from .payments import Debtor
from .pdf import html_to_pdf

DOCUMENT_KIND = "billing.account_statement"
XLSX_HEADERS = ("DATE", "ECRITURE", "PIECE", "DEBIT", "CREDIT", "SOLDE")
MAIL_SUBJECT = "Relevé de compte du {du} au {au} — {personne}"
MAIL_BODY = ("Bonjour,\n\nVeuillez trouver ci-joint le relevé de compte de {personne} du {du} au {au}.\n\n"
             "Cordialement,\n{etablissement}")

mail_placeholders.register_placeholder("du", label="début du relevé de compte", sample="01/01/2026")
mail_placeholders.register_placeholder("au", label="fin du relevé de compte", sample="31/12/2026")


@dataclass
class Statement:
    section: object
    debtor: Debtor
    name: str
    address_lines: list[str]
    resident: Resident
    start: date
    end: date
    opening: Decimal
    entries: list[dict]
    closing: Decimal


def debtor_for(*, section, resident: Resident, relative_id: int | None = None) -> tuple[Debtor, str, list[str]]:
    """The account of ``resident`` (or of one of their relatives paying for them): (debtor, name, address)."""
    if relative_id:
        relative = Relative.objects.filter(pk=relative_id, resident=resident).first()
        if relative is None:
            raise ValidationError(_("Ce proche n'est pas un proche du résident."))
        return (Debtor(section.pk, Invoice.DebtorKind.RELATIVE, resident_id=resident.pk, relative_id=relative.pk),
                f"{relative.get_civility_display()} {relative}".strip(), relative.address_lines)
    return (Debtor(section.pk, Invoice.DebtorKind.RESIDENT, resident_id=resident.pk),
            f"{resident.get_civility_display()} {resident.full_name}".strip(), resident.address_lines)


def statement_build(*, section, resident: Resident, start: date, end: date, relative_id: int | None = None
                    ) -> Statement:
    if start > end:
        raise ValidationError(_("La date de début (%(start)s) est après la date de fin (%(end)s).") % {
            "start": fr_date(start), "end": fr_date(end)})
    debtor, name, address = debtor_for(section=section, resident=resident, relative_id=relative_id)
    opening, entries = ZERO, []
    for entry in account_entries(debtor):
        if entry["date"] < start:
            opening = entry["balance"]
        elif entry["date"] <= end:
            entries.append(entry)
    closing = entries[-1]["balance"] if entries else opening
    return Statement(section, debtor, name, list(address), resident, start, end, opening, entries, closing)


def _balance_text(value: Decimal) -> str:
    if value > 0:
        return _("%(amount)s dû") % {"amount": format_euros(value)}
    if value < 0:
        return _("%(amount)s en votre faveur") % {"amount": format_euros(-value)}
    return _("soldé")


def statement_html(statement: Statement) -> str:
    rows = [{"date": fr_date(e["date"]), "label": str(e["label"]), "reference": e["reference"],
             "debit": format_euros(e["debit"]) if e["debit"] is not None else "",
             "credit": format_euros(e["credit"]) if e["credit"] is not None else "",
             "balance": format_euros(e["balance"])} for e in statement.entries]
    return get_template("billing/pdf/account_statement.html").render({
        "st": statement, "est": establishment_snapshot(statement.section.establishment), "rows": rows,
        "start": fr_date(statement.start), "end": fr_date(statement.end),
        "opening": format_euros(statement.opening), "closing": format_euros(statement.closing),
        "closing_text": _balance_text(statement.closing), "resident_name": statement.resident.full_name,
        "printed": fr_date(timezone.localdate())})


def statement_pdf(statement: Statement) -> bytes:
    return html_to_pdf(statement_html(statement))


def statement_xlsx(statement: Statement) -> bytes:
    rows = [[statement.start, _("Solde au %(date)s") % {"date": fr_date(statement.start)}, "", None, None,
             statement.opening]]
    rows += [[e["date"], str(e["label"]), e["reference"], e["debit"], e["credit"], e["balance"]]
             for e in statement.entries]
    rows.append([statement.end, _("Solde au %(date)s") % {"date": fr_date(statement.end)}, "", None, None,
                 statement.closing])
    return xlsx_bytes(_("Relevé de compte"), rows, headers=XLSX_HEADERS, widths=(12, 40, 22, 13, 13, 13))


def statement_filename(statement: Statement, ext: str) -> str:
    from core.text import text_key
    import re

    name = re.sub(r"[^a-z0-9]+", "-", text_key(statement.name)).strip("-") or "compte"
    return f"releve-{name}-{statement.start:%Y%m%d}-{statement.end:%Y%m%d}.{ext}"


# ---------------------------------------------------------------- e-mail

def statement_key(statement: Statement) -> str:
    d = statement.debtor
    return document_key(DOCUMENT_KIND, f"{d.section_id}-{d.resident_id}-{d.relative_id or 0}-"
                                       f"{statement.start:%Y%m%d}-{statement.end:%Y%m%d}")


def statement_attachment(ident: str) -> Attachment:
    from datetime import datetime

    from structures.models import Section

    try:
        section_id, resident_id, relative_id, start, end = ident.split("-")
        start_d, end_d = datetime.strptime(start, "%Y%m%d").date(), datetime.strptime(end, "%Y%m%d").date()
        section = Section.objects.select_related("establishment").get(pk=int(section_id))
        resident = Resident.objects.get(pk=int(resident_id))
        statement = statement_build(section=section, resident=resident, start=start_d, end=end_d,
                                    relative_id=int(relative_id) or None)
    except (ValueError, Section.DoesNotExist, Resident.DoesNotExist, ValidationError) as exc:
        raise DocumentUnavailable(_("Relevé de compte introuvable : %(ident)s") % {"ident": ident}) from exc
    return Attachment(statement_filename(statement, "pdf"), statement_pdf(statement), "application/pdf")


register_document(DOCUMENT_KIND, statement_attachment)


def statement_recipients(statement: Statement) -> list[str]:
    """A paying relative's own address; for the resident's account, the addresses the resident's
    invoices go to (resident, legal guardian, *destinataire des factures*)."""
    from .mailing import invoice_recipients

    if statement.debtor.relative_id:
        email = Relative.objects.filter(pk=statement.debtor.relative_id).values_list("email", flat=True).first()
        return [email] if email else []
    probe = Invoice(debtor_kind=Invoice.DebtorKind.RESIDENT, resident=statement.resident)
    return [r.email for r in invoice_recipients(probe)]


def statement_send(*, statement: Statement, recipients: list[str] | None = None, user=None, start: bool = True):
    """Queue the statement for ``recipients`` (default: the debtor's addresses) in a campaign."""
    from mailing.models import MailCampaign
    from mailing.services.campaigns import campaign_create, campaign_start
    from mailing.services.outbox import message_build, messages_queue

    from .mailing import _sender

    addresses = []
    for address in (recipients if recipients is not None else statement_recipients(statement)):
        address = (address or "").strip()
        if not address:
            continue
        try:
            validate_email(address)
        except ValidationError as exc:
            raise ValidationError(_("Adresse e-mail invalide : « %(address)s ».") % {"address": address}) from exc
        if address.lower() not in {a.lower() for a in addresses}:
            addresses.append(address)
    if not addresses:
        raise ValidationError(_("Aucune adresse e-mail pour %(name)s : saisissez-en une.") % {"name": statement.name})
    establishment = statement.section.establishment
    sender = _sender(establishment)
    values = {"personne": statement.resident.full_name, "du": fr_date(statement.start), "au": fr_date(statement.end),
              "etablissement": establishment.name}
    label = _("Relevé de compte — %(name)s") % {"name": statement.name}
    campaign = campaign_create(organisation=establishment.organisation, section=statement.section,
                               kind=MailCampaign.Kind.SINGLE, label=label, subject=MAIL_SUBJECT, body=MAIL_BODY,
                               user=user, context={"resident_id": statement.resident.pk})
    key = statement_key(statement)
    messages_queue([message_build(
        organisation=establishment.organisation, section=statement.section, campaign=campaign, sender_name=sender[0],
        sender_email=sender[1], recipients=addresses, subject=mail_placeholders.render(MAIL_SUBJECT, values),
        body=mail_placeholders.render(MAIL_BODY, values), attachments=[{"document": key}], related_key=key,
        related_label=label, user=user)])
    if start:
        campaign_start(campaign=campaign, user=user)
    return campaign
