"""Reminder letters sent to a payer, in the « Envois » tab of the payer file (registered in
``payers.sendings`` by ``RemindersConfig.ready``: ``payers`` imports nothing of this app)."""
from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext as _

from core.money import format_euros
from payers.sendings import Sending

from ..models import Reminder, ReminderLetter, ReminderRun


def payer_reminder_sendings(*, payer, sections) -> list[Sending]:
    """The validated reminder letters to ``payer`` in ``sections`` (already scoped by the caller)."""
    letters = (ReminderLetter.objects.filter(payer=payer, run__section__in=sections,
                                             run__status=ReminderRun.Status.VALIDATED)
               .select_related("run__section").prefetch_related("reminders__invoice")
               .order_by("-run__print_date", "-pk"))
    found = []
    for letter in letters:
        numbers = [r.invoice.number for r in letter.reminders.all() if r.status != Reminder.Status.SKIPPED]
        found.append(Sending(
            day=letter.run.print_date, kind=letter.get_level_display(),
            label=_("%(invoices)s — %(total)s") % {"invoices": ", ".join(numbers),
                                                   "total": format_euros(letter.total_due)},
            channel=(_("courriel : %(to)s") % {"to": ", ".join(letter.emails)}) if letter.emails else _("à poster"),
            url=reverse("reminders:letter-pdf", kwargs={"alias": letter.run.section.alias, "pk": letter.pk}),
            section=letter.run.section.alias))
    return found
