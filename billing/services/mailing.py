"""Invoices by e-mail, on top of the outbox of ``mailing`` (which knows nothing of invoices).

* **Recipients** — a resident's invoice goes to the resident's address, the legal guardian's and
  the relative marked *destinataire des factures* (up to three distinct addresses, seed 000); a
  paying relative's invoice to that relative; a payer's invoice to the payer. An invoice with no
  address is listed apart with the reason, never silently skipped.
* **Placeholders** — ``{personne}`` (and the historical ``&personne``), ``{periode}``
  (``&periode``), ``{numero}``, ``{montant}``, ``{etablissement}``, registered with sample values.
* **Plugging into the outbox** (this module is imported by ``mailing``'s app config in every
  process): the invoice PDF is attached when the message is *sent* (rendered then if it is
  missing), and ``Invoice.last_sent_at`` is set when the SMTP server accepts the message.
* **Campaigns** — a period's campaign from the journal, one invoice to chosen addresses, and
  the ``send_invoices`` command, all through the same outbox, throttle and log.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import Exists, OuterRef, Prefetch, QuerySet
from django.dispatch import receiver
from django.utils.translation import gettext as _

from core.money import format_euros
from mailing.models import MailCampaign, OutgoingMessage
from mailing.services import placeholders
from mailing.services.campaigns import campaign_create, campaign_start
from mailing.services.documents import Attachment, DocumentUnavailable, document_key, register_document
from mailing.services.outbox import message_build, messages_queue
from mailing.signals import message_sent
from residents.models import Relative

from ..models import BillingPeriod, Invoice
from .calendars import month_bounds
from .periods import month_label

INVOICE_KIND = "billing.invoice"
MAX_RESIDENT_ADDRESSES = 3
NO_ADDRESS = "aucune adresse e-mail"

# --- Placeholders --------------------------------------------------------------------------------
placeholders.register_placeholder("personne", label="nom du résident (ou du débiteur)", sample="MAILLY Josiane",
                                  legacy="&personne")
placeholders.register_placeholder("periode", label="période facturée", sample="septembre 2022", legacy="&periode")
placeholders.register_placeholder("numero", label="numéro de la facture", sample="TIL-2022-000123")
placeholders.register_placeholder("montant", label="montant de la facture", sample="1 234,56\u00a0€")
placeholders.register_placeholder("etablissement", label="nom de l'établissement", sample="EHPAD Les Tilleuls")
placeholders.register_placeholder("document", label="« facture » ou « avoir »", sample="facture")
placeholders.register_placeholder("facture_creditee", label="numéro de la facture corrigée par un avoir",
                                  sample="TIL-2022-000099")

# A credit note is sent with its own text: it says *avoir*, never *facture* (billing-rules §6).
CREDIT_NOTE_SUBJECT = "Avoir {numero} — {periode}"
CREDIT_NOTE_BODY = ("Bonjour,\n\nVeuillez trouver ci-joint l'avoir n° {numero} de {montant} en faveur de &personne, "
                    "qui corrige la facture n° {facture_creditee} (période de &periode). Ce montant sera déduit "
                    "de votre prochaine échéance ou remboursé.\n\nCordialement,\n{etablissement}")


def default_text(*, establishment, invoice: Invoice | None = None) -> dict[str, str]:
    """The subject and text offered for ``invoice``: the establishment's invoice text, or the
    credit-note text for a credit note."""
    if invoice is not None and invoice.kind == Invoice.Kind.CREDIT_NOTE:
        return {"subject": CREDIT_NOTE_SUBJECT, "body": CREDIT_NOTE_BODY}
    return {"subject": establishment.mail_subject, "body": establishment.mail_body}


def period_text(invoice: Invoice) -> str:
    """« septembre 2022 » for a monthly period, else « du 01/09/2022 au 15/09/2022 »."""
    start, end = (invoice.period.start, invoice.period.end) if invoice.period_id else (invoice.date_from,
                                                                                      invoice.date_to)
    if (start, end) == month_bounds(start.year, start.month):
        return month_label(start)
    return _("du %(start)s au %(end)s") % {"start": start.strftime("%d/%m/%Y"), "end": end.strftime("%d/%m/%Y")}


def invoice_person(invoice: Invoice) -> str:
    if invoice.resident_id:
        return invoice.resident.full_name
    return invoice.debtor_name or (invoice.payer.name if invoice.payer_id else "")


def invoice_values(invoice: Invoice) -> dict[str, str]:
    snapshot = invoice.establishment_snapshot or {}
    credit = invoice.kind == Invoice.Kind.CREDIT_NOTE
    return {
        "personne": invoice_person(invoice),
        "periode": period_text(invoice),
        "numero": invoice.number,
        "montant": format_euros(abs(invoice.total) if credit else invoice.total),
        "document": "avoir" if credit else "facture",
        "facture_creditee": invoice.credited_invoice.number if credit and invoice.credited_invoice_id else "",
        "etablissement": snapshot.get("name") or invoice.establishment.name,
    }


def render_for_invoice(text: str, invoice: Invoice) -> str:
    return placeholders.render(text, invoice_values(invoice))


def check_placeholders(*, subject: str, body: str) -> None:
    errors = {}
    for name, text in (("subject", subject), ("body", body)):
        unknown = placeholders.unknown_placeholders(text)
        if unknown:
            errors[name] = _("Mot-clé inconnu : %(unknown)s. Mots-clés possibles : %(known)s.") % {
                "unknown": ", ".join(unknown),
                "known": ", ".join(p.token for p in placeholders.placeholders())}
    if errors:
        raise ValidationError(errors)


# --- Recipients ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Recipient:
    email: str
    role: str
    name: str = ""

    def __str__(self):
        return f"{self.email} ({self.role})"


def _add(found: list[Recipient], email: str, role: str, name: str = "") -> None:
    email = (email or "").strip()
    if email and email.lower() not in {r.email.lower() for r in found}:
        found.append(Recipient(email, role, name))


def invoice_recipients(invoice: Invoice, *, relatives: list[Relative] | None = None) -> list[Recipient]:
    """Who receives this invoice by e-mail (current addresses of the people, not the snapshot)."""
    found: list[Recipient] = []
    if invoice.debtor_kind == Invoice.DebtorKind.PAYER:
        if invoice.payer_id:
            _add(found, invoice.payer.email, _("payeur"), invoice.payer.name)
        return found
    if invoice.debtor_kind == Invoice.DebtorKind.RELATIVE:
        if invoice.relative_id:
            _add(found, invoice.relative.email, _("proche payeur"), str(invoice.relative))
        return found
    resident = invoice.resident
    if resident is None:
        return found
    if relatives is None:
        relatives = list(resident.relatives.all())
    _add(found, resident.email, _("résident"), resident.full_name)
    for relative in relatives:
        if relative.is_guardian:
            _add(found, relative.email, _("tuteur / représentant légal"), str(relative))
    for relative in relatives:
        if relative.receives_invoices:
            _add(found, relative.email, _("destinataire des factures"), str(relative))
    return found[:MAX_RESIDENT_ADDRESSES]


def invoice_candidate_addresses(invoice: Invoice) -> list[Recipient]:
    """For sending one invoice: the usual recipients, then every other relative with an address."""
    found = list(invoice_recipients(invoice))
    if invoice.resident_id:
        for relative in invoice.resident.relatives.all():
            _add(found, relative.email, relative.relationship.lower() or _("proche"), str(relative))
    return found


# --- Outbox plug-ins -----------------------------------------------------------------------------
def invoice_key(invoice_or_pk) -> str:
    return document_key(INVOICE_KIND, getattr(invoice_or_pk, "pk", invoice_or_pk))


def invoice_attachment(ident: str) -> Attachment:
    """The stored PDF of an issued invoice (rendered and stored first if missing)."""
    from . import pdf

    invoice = Invoice.objects.only("pk", "number", "status", "pdf").filter(pk=ident).first()
    if invoice is None:
        raise DocumentUnavailable(_("Facture introuvable (n° interne %(pk)s).") % {"pk": ident})
    if invoice.status == Invoice.Status.DRAFT:
        raise DocumentUnavailable(_("Une facture brouillon ne s'envoie pas."))
    if not (invoice.pdf and invoice.pdf.storage.exists(invoice.pdf.name)):
        invoice = pdf.invoices_for_render().get(pk=invoice.pk)
        pdf.invoice_store_pdf(invoice)
    with invoice.pdf.storage.open(invoice.pdf.name, "rb") as handle:
        content = handle.read()
    return Attachment(f"{invoice.number}.pdf", content, "application/pdf")


register_document(INVOICE_KIND, invoice_attachment)


@receiver(message_sent, dispatch_uid="billing.invoice_last_sent_at")
def _invoice_sent(sender, message: OutgoingMessage, **kwargs):
    """The journal's envelope: the last time the invoice was accepted by the SMTP server."""
    kind, _sep, ident = message.related_key.rpartition(":")
    if kind != INVOICE_KIND or not ident.isdigit() or message.sent_at is None:
        return
    from django.db.models import Q

    Invoice.objects.filter(Q(last_sent_at__isnull=True) | Q(last_sent_at__lt=message.sent_at), pk=int(ident)) \
        .update(last_sent_at=message.sent_at)


# --- A period's invoices -----------------------------------------------------------------------------
@dataclass
class MailingRow:
    invoice: Invoice
    recipients: list[Recipient]
    reason: str = ""
    pending: bool = False
    last_message: OutgoingMessage | None = None
    attachments: list = field(default_factory=list)

    @property
    def has_address(self) -> bool:
        return bool(self.recipients)


def period_sendable(period: BillingPeriod) -> QuerySet[Invoice]:
    return (Invoice.objects.filter(period=period, status=Invoice.Status.ISSUED)
            .select_related("resident", "relative", "payer", "period", "establishment")
            .prefetch_related(Prefetch("resident__relatives", queryset=Relative.objects.order_by("pk")))
            .order_by("number", "pk"))


def _pending_keys(keys: list[str]) -> set[str]:
    return set(OutgoingMessage.objects.filter(related_key__in=keys, status__in=OutgoingMessage.PENDING)
               .values_list("related_key", flat=True))


def period_mailing_rows(period: BillingPeriod) -> tuple[list[MailingRow], list[MailingRow]]:
    """(invoices with at least one address, invoices without any) of the period's issued invoices."""
    invoices = list(period_sendable(period))
    pending = _pending_keys([invoice_key(i) for i in invoices])
    with_address, without = [], []
    for invoice in invoices:
        relatives = list(invoice.resident.relatives.all()) if invoice.resident_id else []
        recipients = invoice_recipients(invoice, relatives=relatives)
        row = MailingRow(invoice, recipients, pending=invoice_key(invoice) in pending)
        if recipients:
            with_address.append(row)
        else:
            row.reason = NO_ADDRESS
            without.append(row)
    return with_address, without


def _sender(establishment) -> tuple[str, str]:
    if not establishment.sender_email:
        raise ValidationError(_("Renseignez l'adresse de l'expéditeur de l'établissement %(name)s (paramètres de "
                                "l'envoi par e-mail) avant d'envoyer.") % {"name": establishment.name})
    if not establishment.organisation.smtp_host:
        raise ValidationError(_("Renseignez le serveur SMTP de l'association avant d'envoyer."))
    return establishment.sender_name or establishment.name, establishment.sender_email


def _invoice_message(*, invoice: Invoice, recipients: list[str], subject: str, body: str, read_receipt: bool,
                     attachments: list, campaign: MailCampaign, sender: tuple[str, str], user=None) -> OutgoingMessage:
    return message_build(
        organisation=invoice.establishment.organisation, section=invoice.section, campaign=campaign,
        sender_name=sender[0], sender_email=sender[1], recipients=recipients,
        subject=render_for_invoice(subject, invoice), body=render_for_invoice(body, invoice),
        attachments=[{"document": invoice_key(invoice)}, *attachments], read_receipt=read_receipt,
        related_key=invoice_key(invoice), related_label=f"{invoice.number} — {invoice_person(invoice)}", user=user)


def period_campaign_create(*, period: BillingPeriod, invoice_ids: list[int], subject: str, body: str,
                           read_receipt: bool = False, general_attachments: list | None = None,
                           individual_attachments: dict[int, list] | None = None, user=None,
                           kind: str = MailCampaign.Kind.PERIOD) -> MailCampaign:
    """Queue one message per selected invoice of the period (with its addresses) in a campaign.
    Invoices without any address are not queued (the screen lists them apart)."""
    check_placeholders(subject=subject, body=body)
    establishment = period.section.establishment
    sender = _sender(establishment)
    wanted = {int(pk) for pk in invoice_ids}
    if not wanted:
        raise ValidationError(_("Sélectionnez au moins une facture."))
    invoices = [i for i in period_sendable(period) if i.pk in wanted]
    if not invoices:
        raise ValidationError(_("Aucune des factures choisies n'est une facture émise de cette période."))
    general_attachments = list(general_attachments or [])
    individual_attachments = individual_attachments or {}
    campaign = campaign_create(
        organisation=establishment.organisation, section=period.section, kind=kind,
        label=_("Factures %(period)s — %(alias)s") % {"period": period.label, "alias": period.section.alias},
        subject=subject, body=body, read_receipt=read_receipt, attachments=general_attachments, user=user,
        context={"period_id": period.pk, "no_address": []})
    messages, no_address = [], []
    for invoice in invoices:
        relatives = list(invoice.resident.relatives.all()) if invoice.resident_id else []
        recipients = [r.email for r in invoice_recipients(invoice, relatives=relatives)]
        if not recipients:
            no_address.append(invoice.number)
            continue
        messages.append(_invoice_message(
            invoice=invoice, recipients=recipients, subject=subject, body=body, read_receipt=read_receipt,
            attachments=general_attachments + list(individual_attachments.get(invoice.pk, [])), campaign=campaign,
            sender=sender, user=user))
    messages_queue(messages)
    if no_address:
        campaign.context["no_address"] = no_address
        campaign.save(update_fields=["context"])
    return campaign


def period_campaign_send(*, user=None, **kwargs) -> MailCampaign:
    """Create the campaign and start its sending job (progress on the campaign page)."""
    campaign = period_campaign_create(user=user, **kwargs)
    campaign_start(campaign=campaign, user=user)
    return campaign


def invoice_send(*, invoice: Invoice, recipients: list[str], subject: str, body: str, read_receipt: bool = False,
                 attachments: list | None = None, user=None, start: bool = True) -> MailCampaign:
    """One invoice to addresses chosen by hand (relatives or typed), logged like any campaign."""
    if invoice.status != Invoice.Status.ISSUED:
        raise ValidationError(_("Seule une facture émise peut être envoyée."))
    check_placeholders(subject=subject, body=body)
    clean = []
    for address in recipients:
        address = address.strip()
        if not address:
            continue
        try:
            validate_email(address)
        except ValidationError as exc:
            raise ValidationError(_("Adresse e-mail invalide : « %(address)s ».") % {"address": address}) from exc
        if address.lower() not in {a.lower() for a in clean}:
            clean.append(address)
    if not clean:
        raise ValidationError(_("Choisissez ou saisissez au moins une adresse."))
    sender = _sender(invoice.establishment)
    campaign = campaign_create(
        organisation=invoice.establishment.organisation, section=invoice.section, kind=MailCampaign.Kind.SINGLE,
        label=(_("Avoir %(number)s") if invoice.kind == Invoice.Kind.CREDIT_NOTE else _("Facture %(number)s")) % {
            "number": invoice.number}, subject=subject, body=body,
        read_receipt=read_receipt, attachments=list(attachments or []), user=user,
        context={"invoice_id": invoice.pk})
    messages_queue([_invoice_message(invoice=invoice, recipients=clean, subject=subject, body=body,
                                     read_receipt=read_receipt, attachments=list(attachments or []),
                                     campaign=campaign, sender=sender, user=user)])
    if start:
        campaign_start(campaign=campaign, user=user)
    return campaign


# --- The command: every invoice of a period never sent --------------------------------------------------
def period_unsent(period: BillingPeriod) -> QuerySet[Invoice]:
    """Issued invoices of the period with no message sent, on its way or awaiting a check."""
    handled = OutgoingMessage.objects.filter(related_key=_key_expression(), status__in=OutgoingMessage.NOT_TO_REQUEUE)
    return period_sendable(period).annotate(handled=Exists(handled)).filter(handled=False)


def _key_expression():
    from django.db.models import CharField, Value
    from django.db.models.functions import Cast, Concat

    return Concat(Value(INVOICE_KIND + ":"), Cast(OuterRef("pk"), CharField()), output_field=CharField())


def period_pending_messages(period: BillingPeriod) -> QuerySet[OutgoingMessage]:
    keys = [invoice_key(pk) for pk in period_sendable(period).values_list("pk", flat=True)]
    return OutgoingMessage.objects.filter(related_key__in=keys)


def month_period(*, section, month: str) -> BillingPeriod:
    from .periods import parse_month, period_for_month

    year, number = parse_month(month)
    period = period_for_month(section=section, year=year, month=number)
    if period is None:
        raise ValidationError(_("Aucune période de %(month)s dans la section %(alias)s.") % {
            "month": month_label(date(year, number, 1)), "alias": section.alias})
    return period
