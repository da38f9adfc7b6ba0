"""The per-campaign report as an Excel file (the same data as the printable page)."""
from __future__ import annotations

from django.utils.translation import gettext as _

from core.exports import XlsxWriter

from ..models import MailCampaign
from .outbox import campaign_counts

HEADERS = ("Document", "Destinataires", "État", "Tentatives", "Dernière tentative", "Envoyé le", "Code SMTP",
           "Explication", "Adresses refusées", "Message-ID")
WIDTHS = (40, 45, 28, 11, 18, 18, 10, 80, 40, 50)


def campaign_xlsx(campaign: MailCampaign) -> bytes:
    """Through the shared writer: subjects, names and SMTP explanations are texts, never formulas."""
    counts = campaign_counts(campaign)
    writer = XlsxWriter()
    # Rows 1–4: the campaign; row 6: the headers; the panes freeze below them.
    writer.sheet(_("Envoi"), widths=WIDTHS, freeze="A7")
    writer.append([writer.cell(campaign.label, bold=True, size=13)])
    writer.append([_("Créé le"), campaign.created_at, _("par"), str(campaign.created_by or _("automatique"))])
    writer.append([_("Objet"), campaign.subject])
    writer.append([_("Envoyés"), counts["sent"], _("Échecs"), counts["failed"], _("À vérifier"), counts["uncertain"],
                   _("Restants"), counts["remaining"]])
    writer.append([])
    writer.append([writer.cell(header, bold=True) for header in HEADERS])
    for message in campaign.messages.order_by("related_label", "pk"):
        refused = "; ".join(f"{addr} ({d.get('code')})" for addr, d in (message.refused or {}).items())
        writer.append([message.related_label or message.subject, ", ".join(message.recipients),
                       message.get_status_display(), message.attempts, message.last_attempt_at, message.sent_at,
                       message.last_code, writer.cell(message.explanation, wrap=True), refused, message.message_id])
    return writer.to_bytes()
