"""Dated rows already used by issued invoices are frozen: tariffs, calendar days, national and
département parameters can no longer be edited or deleted — a change is a new dated row.

"Used" means an issued (or cancelled) invoice covers the row's validity (``valid_from`` until the
day before the next row) — or the day, for a calendar day. The checks read the stored values, so
moving a row's date out of an issued period is refused as well.
"""
from __future__ import annotations

from datetime import date

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext as _


class FrozenRowError(ValidationError):
    pass


def _issued_invoices():
    from .invoices import Invoice

    return Invoice.objects.exclude(status=Invoice.Status.DRAFT)


def _overlapping(qs, start: date, end_exclusive: date | None, *, prefix: str = ""):
    qs = qs.filter(**{f"{prefix}date_to__gte": start})
    if end_exclusive is not None:
        qs = qs.filter(**{f"{prefix}date_from__lt": end_exclusive})
    return qs


def tariff_is_used(*, product_id: int, valid_from: date) -> bool:
    from .catalog import Tariff
    from .invoices import Invoice, InvoiceLine

    following = (Tariff.objects.filter(product_id=product_id, valid_from__gt=valid_from)
                 .order_by("valid_from").values_list("valid_from", flat=True).first())
    lines = InvoiceLine.objects.filter(product_id=product_id).exclude(invoice__status=Invoice.Status.DRAFT)
    return _overlapping(lines, valid_from, following).exists()


def calendar_day_is_used(*, calendar_id: int, day: date) -> bool:
    return _issued_invoices().filter(section__calendars=calendar_id, date_from__lte=day, date_to__gte=day).exists()


def national_parameter_is_used(*, kind: str, valid_from: date) -> bool:
    from .catalog import NationalParameter

    following = (NationalParameter.objects.filter(kind=kind, valid_from__gt=valid_from)
                 .order_by("valid_from").values_list("valid_from", flat=True).first())
    return _overlapping(_issued_invoices(), valid_from, following).exists()


def departement_parameter_is_used(*, departement: str, valid_from: date) -> bool:
    from .catalog import DepartementParameter

    following = (DepartementParameter.objects.filter(departement=departement, valid_from__gt=valid_from)
                 .order_by("valid_from").values_list("valid_from", flat=True).first())
    return _overlapping(_issued_invoices().filter(establishment__departement=departement), valid_from,
                        following).exists()


class FrozenWhenUsedQuerySet(models.QuerySet):
    """``delete()`` and ``update()`` of frozen fields refuse rows used by issued invoices."""

    def delete(self):
        for obj in self:
            obj.refuse_if_used(deleting=True)
        return super().delete()

    def update(self, **kwargs):
        frozen = set(self.model.FROZEN_FIELDS) | {name.removesuffix("_id") for name in self.model.FROZEN_FIELDS}
        if set(kwargs) & frozen:
            for obj in self:
                obj.refuse_if_used()
        return super().update(**kwargs)


class FrozenWhenUsedMixin:
    """Model mixin: ``FROZEN_FIELDS`` can't change, nor the row be deleted, once ``is_used()``."""

    FROZEN_FIELDS: tuple[str, ...] = ()

    def is_used(self) -> bool:  # pragma: no cover - implemented by each model
        raise NotImplementedError

    def frozen_message(self) -> str:
        return _("« %(row)s » est utilisé par des factures émises : il ne peut plus être modifié ni supprimé. "
                 "Créez une nouvelle ligne datée à la place.") % {"row": self}

    def refuse_if_used(self, *, deleting: bool = False) -> None:
        stored = type(self)._base_manager.filter(pk=self.pk).first() if self.pk else None
        if stored is not None and stored.is_used():
            raise FrozenRowError(stored.frozen_message())

    def frozen_changed(self) -> bool:
        if not self.pk:
            return False
        stored = type(self)._base_manager.filter(pk=self.pk).values(*self.FROZEN_FIELDS).first()
        if stored is None:
            return False
        return any(stored[name] != getattr(self, name) for name in self.FROZEN_FIELDS)

    def save(self, *args, **kwargs):
        if self.frozen_changed():
            self.refuse_if_used()
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        self.refuse_if_used(deleting=True)
        return super().delete(*args, **kwargs)
