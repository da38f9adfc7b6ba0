"""Money: the one place where amounts are rounded.

Every amount in Séjour is a ``Decimal`` in euros with two places. A line's amount is
``round_money(quantity * unit_price)`` rounded **half up** (commercial rounding, as French
invoices do); totals are sums of already rounded lines. Never use ``float``.
"""
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")
NNBSP = "\u202f"  # narrow no-break space: thousands separator
NBSP = "\u00a0"  # no-break space before the euro sign
ZERO = Decimal("0.00")


def to_decimal(value) -> Decimal:
    """Convert user/file input to Decimal without going through float."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        # openpyxl gives floats for numeric cells: str() keeps the shortest repr (12.3 -> "12.3").
        value = repr(value)
    if isinstance(value, str):
        value = value.strip().replace("\u00a0", "").replace(" ", "").replace(",", ".")
    try:
        return Decimal(value)
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise ValueError(f"montant invalide : {value!r}") from exc


def round_money(value) -> Decimal:
    """Round to the cent, half up: 0.005 -> 0.01, -0.005 -> -0.01."""
    return to_decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


def format_euros(value) -> str:
    """French display: 1 234,56 €."""
    amount = round_money(value)
    sign = "-" if amount < 0 else ""
    integer, _, cents = f"{abs(amount):.2f}".partition(".")
    groups = []
    while integer:
        groups.insert(0, integer[-3:])
        integer = integer[:-3]
    return f"{sign}{NNBSP.join(groups)},{cents}{NBSP}€"
