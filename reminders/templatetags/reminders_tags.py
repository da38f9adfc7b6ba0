"""Small includes other pages use (the invoice page, the home to-do list)."""
from django import template

from ..models import InvoiceDispute, Reminder

register = template.Library()


@register.inclusion_tag("reminders/_invoice_summary.html")
def invoice_reminders(invoice, section):
    """On the invoice page: level reached, dispute flag, link to the history."""
    sent = list(Reminder.objects.filter(invoice=invoice, status=Reminder.Status.SENT).order_by("level")
                .values_list("level", "print_date"))
    dispute = InvoiceDispute.objects.filter(invoice=invoice, is_disputed=True).first()
    return {"invoice": invoice, "section": section, "last": sent[-1] if sent else None, "dispute": dispute}


@register.inclusion_tag("reminders/_todo.html")
def reminders_todo(sections):
    from ..selectors import proposals_todo

    return {"lines": proposals_todo(sections)}
