"""The reminders panel of the invoice page (registered in ``billing.services.panels`` by
``RemindersConfig.ready``): level reached, dispute flag, link to the history."""
from __future__ import annotations

from django.template.loader import render_to_string

from ..models import InvoiceDispute, Reminder


def invoice_reminders_panel(*, invoice, section, user=None) -> str:
    sent = list(Reminder.objects.filter(invoice=invoice, status=Reminder.Status.SENT).order_by("level")
                .values_list("level", "print_date"))
    dispute = InvoiceDispute.objects.filter(invoice=invoice, is_disputed=True).first()
    return render_to_string("reminders/_invoice_summary.html", {
        "invoice": invoice, "section": section, "last": sent[-1] if sent else None, "dispute": dispute})


def resident_reminders_link(*, resident, section, user=None) -> str:
    """The link to a resident's reminder history, on the *Compte* tab of the resident file."""
    return render_to_string("reminders/_account_link.html", {"resident": resident, "section": section})
