"""The per-campaign report as an Excel file (the same data as the printable page)."""
from __future__ import annotations

import io

from django.utils import timezone
from django.utils.translation import gettext as _

from ..models import MailCampaign
from .outbox import campaign_counts

HEADERS = ("Document", "Destinataires", "État", "Tentatives", "Dernière tentative", "Envoyé le", "Code SMTP",
           "Explication", "Adresses refusées", "Message-ID")
WIDTHS = (40, 45, 28, 11, 18, 18, 10, 80, 40, 50)


def _local(value):
    return timezone.localtime(value).replace(tzinfo=None) if value else None


def campaign_xlsx(campaign: MailCampaign) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = _("Envoi")[:31]
    counts = campaign_counts(campaign)
    sheet.append([campaign.label])
    sheet["A1"].font = Font(bold=True, size=13)
    sheet.append([_("Créé le"), _local(campaign.created_at), _("par"), str(campaign.created_by or _("automatique"))])
    sheet["B2"].number_format = "DD/MM/YYYY HH:MM"
    sheet.append([_("Objet"), campaign.subject])
    sheet.append([_("Envoyés"), counts["sent"], _("Échecs"), counts["failed"], _("À vérifier"), counts["uncertain"],
                  _("Restants"), counts["remaining"]])
    sheet.append([])
    sheet.append(list(HEADERS))
    header_row = sheet.max_row
    for cell in sheet[header_row]:
        cell.font = Font(bold=True)
    for message in campaign.messages.order_by("related_label", "pk"):
        refused = "; ".join(f"{addr} ({d.get('code')})" for addr, d in (message.refused or {}).items())
        sheet.append([message.related_label or message.subject, ", ".join(message.recipients),
                      message.get_status_display(), message.attempts, _local(message.last_attempt_at),
                      _local(message.sent_at), message.last_code, message.explanation, refused, message.message_id])
        for column in (5, 6):
            sheet.cell(row=sheet.max_row, column=column).number_format = "DD/MM/YYYY HH:MM"
        sheet.cell(row=sheet.max_row, column=8).alignment = Alignment(wrap_text=True, vertical="top")
    for index, width in enumerate(WIDTHS, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = sheet.cell(row=header_row + 1, column=1)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()
