from django import template

from core.money import format_euros

register = template.Library()


@register.filter
def euros(value):
    """1234.5 -> « 1 234,50 € » (French format, the one rounding helper)."""
    if value in (None, ""):
        return ""
    return format_euros(value)
