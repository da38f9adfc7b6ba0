"""Reminder letters by e-mail through the outbox (imported by ``mailing``'s app config in every
process, like ``billing/services/mailing.py``): the letter PDF is a registered document, attached
when the message is sent; debtors without an address are listed to post."""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from billing.services.mailing import _sender, invoice_recipients
from mailing.models import MailCampaign
from mailing.services import placeholders
from mailing.services.campaigns import campaign_create, campaign_start
from mailing.services.documents import Attachment, DocumentUnavailable, document_key, register_document
from mailing.services.outbox import message_build, messages_queue

LETTER_KIND = "reminders.letter"

placeholders.register_placeholder("date_limite", label="date limite de paiement d'une relance", sample="15/05/2026")
placeholders.register_placeholder("total_du", label="total dû d'une relance", sample="1 234,56\u00a0€")

SUBJECT = "{titre} — {etablissement}"
BODY = ("Bonjour,\n\nVeuillez trouver ci-joint un courrier de {etablissement} concernant des factures restant "
        "impayées ({total_du}).\n\nSi votre règlement a été effectué entre-temps, merci de ne pas tenir compte de ce "
        "message.\n\nCordialement,\n{etablissement}")


def letter_attachment(ident: str) -> Attachment:
    from ..models import ReminderLetter

    letter = ReminderLetter.objects.filter(pk=ident).first() if ident.isdigit() else None
    if letter is None or not letter.pdf:
        raise DocumentUnavailable(_("Lettre de relance introuvable (n° interne %(pk)s).") % {"pk": ident})
    with letter.pdf.open("rb") as handle:
        return Attachment(f"relance_{letter.pk}.pdf", handle.read(), "application/pdf")


register_document(LETTER_KIND, letter_attachment)


def letters_email(*, run, letters, user=None) -> dict:
    """Queue one message per letter whose debtor has an address (current addresses of the first
    invoice's debtor, as for invoices), start the sending job; the others are to post."""
    from core.money import format_euros

    from ..models import Audience
    from .letters import fill, reminder_texts

    establishment = run.section.establishment
    to_post = [letter.pk for letter, _invoice in letters]
    if not letters:
        return {"emailed": [], "to_post": []}
    try:
        sender = _sender(establishment)
    except ValidationError as exc:
        return {"emailed": [], "to_post": to_post, "error": " ".join(exc.messages)}
    texts = {audience: reminder_texts(establishment, audience) for audience in Audience.values}
    campaign = campaign_create(organisation=establishment.organisation, section=run.section,
                               kind=MailCampaign.Kind.SINGLE,
                               label=_("Relances %(alias)s du %(day)s") % {
                                   "alias": run.section.alias, "day": run.print_date.strftime("%d/%m/%Y")},
                               subject=SUBJECT, body=BODY, user=user, context={"reminder_run_id": run.pk})
    messages, emailed, to_post = [], [], []
    for letter, invoice in letters:
        relatives = list(invoice.resident.relatives.all()) if invoice.resident_id else []
        recipients = [r.email for r in invoice_recipients(invoice, relatives=relatives)]
        if not recipients:
            to_post.append(letter.pk)
            continue
        audience = Audience.PAYER if letter.payer_id else Audience.FAMILY
        values = {"titre": texts[audience][letter.level].title, "etablissement": establishment.name,
                  "total_du": format_euros(letter.total_due)}
        subject = fill(SUBJECT.replace("{titre}", values["titre"]), values)
        messages.append(message_build(
            organisation=establishment.organisation, section=run.section, campaign=campaign,
            sender_name=sender[0], sender_email=sender[1], recipients=recipients, subject=subject,
            body=fill(BODY, values), attachments=[{"document": document_key(LETTER_KIND, letter.pk)}],
            related_key=document_key(LETTER_KIND, letter.pk), related_label=letter.debtor_name, user=user))
        letter.emails = recipients
        letter.save(update_fields=["emails"])
        emailed.append(letter.pk)
    messages_queue(messages)
    if messages:
        campaign_start(campaign=campaign, user=user)
    return {"emailed": emailed, "to_post": to_post, "campaign_id": campaign.pk}
