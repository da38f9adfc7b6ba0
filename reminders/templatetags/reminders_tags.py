"""Small includes other pages use (the home to-do list). The invoice page's panel is registered in
``billing.services.panels`` (``reminders.services.invoice_panel``)."""
from django import template

register = template.Library()


@register.inclusion_tag("reminders/_todo.html")
def reminders_todo(sections):
    from ..selectors import proposals_todo

    return {"lines": proposals_todo(sections)}
