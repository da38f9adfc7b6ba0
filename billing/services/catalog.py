"""Catalogue writes: dated tariffs (history kept, no duplicates), calendar creation rules."""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from ..models import Calendar, Product, Tariff


@transaction.atomic
def tariff_add(*, product: Product, valid_from: date, price: Decimal, act_reference: str = "") -> Tariff:
    """A new dated row; the previous tariff stays in the history and ends the day before."""
    if price is None or price < 0:
        raise ValidationError({"price": _("Le prix doit être positif ou nul.")})
    if Tariff.objects.filter(product=product, valid_from=valid_from).exists():
        raise ValidationError({"valid_from": _("Un tarif commence déjà le %(day)s pour %(code)s : "
                                               "modifiez-le dans l'administration ou choisissez une autre date.") % {
            "day": valid_from.strftime("%d/%m/%Y"), "code": product.code}})
    tariff = Tariff(product=product, valid_from=valid_from, price=price, act_reference=act_reference)
    tariff.full_clean()
    tariff.save()
    return tariff


def tariff_history(product: Product) -> list[dict]:
    rows = list(product.tariffs.order_by("valid_from"))
    out = []
    for i, t in enumerate(rows):
        until = rows[i + 1].valid_from if i + 1 < len(rows) else None
        out.append({"tariff": t, "valid_to": (until.toordinal() - 1) if until else None})
    for row in out:
        row["valid_to"] = date.fromordinal(row["valid_to"]) if row["valid_to"] else None
    return list(reversed(out))


@transaction.atomic
def calendar_create(*, section, code: str, label: str, mode: str) -> Calendar:
    """One calendar per section, extended year after year. A second calendar for a new year is the
    classic mistake that produces invoices at zero: refuse it and explain."""
    existing = section.calendars.first()
    if existing:
        raise ValidationError(_(
            "La section %(alias)s a déjà le calendrier %(code)s. Ne créez pas un nouveau calendrier pour une nouvelle "
            "année : prolongez le calendrier existant (bouton « Générer une année »), sinon les factures sortiraient "
            "à zéro.") % {"alias": section.alias, "code": existing.code})
    calendar = Calendar(establishment=section.establishment, code=code, label=label, mode=mode)
    calendar.full_clean()
    calendar.save()
    calendar.sections.add(section)
    return calendar
