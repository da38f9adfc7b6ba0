"""Stale drafts: the billing engine listens to the models it reads (its own and those of the layers
below: residents, payers, catalogue) and marks the open periods concerned « brouillons à régénérer »
(``services.stale``). Connected in ``BillingConfig.ready``."""
from __future__ import annotations

from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save

from payers.models import AidPlan, CoverageRule, SocialAidDecision
from residents.models import Absence, GirAssessment, Stay
from structures.models import Section

from .models import CalendarDay, StayPackage, Tariff
from .services.stale import periods_mark_stale

DATE_FIELDS = {
    Tariff: ("valid_from",), CalendarDay: ("day",), Absence: ("first_day", "last_day"), Stay: ("entry_date", "end_date"),
    GirAssessment: ("valid_from",), StayPackage: ("valid_from",), CoverageRule: ("valid_from",),
    SocialAidDecision: ("valid_from",), AidPlan: ("valid_from", "valid_to"),
}


def _sections_and_start(instance) -> tuple[set[int], object, object]:
    """(section ids, first day concerned, last day concerned or None) of a changed row."""
    model = type(instance)
    if model is Tariff:
        return set(Section.objects.filter(establishment_id=instance.product.establishment_id)
                   .values_list("pk", flat=True)), instance.valid_from, None
    if model is CalendarDay:
        return set(instance.calendar.sections.values_list("pk", flat=True)), instance.day, instance.day
    if model is Stay:
        dates = [d for d in (instance.entry_date, instance.end_date) if d]
        return {instance.section_id}, min(dates) if dates else None, None
    if model is GirAssessment:
        return set(Stay.objects.filter(resident_id=instance.resident_id).values_list("section_id", flat=True)), \
            instance.valid_from, None
    stay = Stay.objects.filter(pk=instance.stay_id).values("section_id").first()
    sections = {stay["section_id"]} if stay else set()
    if model is Absence:
        # Convenience days count towards a yearly cap: later periods of the year may change too.
        convenience = instance.reason_id and instance.reason.rule == "CONVENIENCE"
        return sections, instance.first_day, None if convenience else instance.last_day
    return sections, getattr(instance, "valid_from", None), None


def _remember(sender, instance, **kwargs):
    """Keep the stored dates: moving a date earlier or later affects both the old and the new days."""
    if instance.pk:
        fields = DATE_FIELDS[sender]
        instance._stale_before = sender.objects.filter(pk=instance.pk).values(*fields).first()


def _changed(sender, instance, **kwargs):
    try:
        sections, start, end = _sections_and_start(instance)
    except Exception:  # noqa: BLE001 - a row whose parents are already gone (cascade delete)
        return
    before = getattr(instance, "_stale_before", None) or {}
    earlier = [d for d in before.values() if d]
    if earlier and start:
        start, end = min([start, *earlier]), (max([end, *earlier]) if end else None)
    periods_mark_stale(section_ids=sections, start=start, end=end)


def _rule_products_changed(sender, instance, action, **kwargs):
    if action in ("post_add", "post_remove", "post_clear") and isinstance(instance, CoverageRule):
        _changed(CoverageRule, instance)


def connect():
    for model in DATE_FIELDS:
        uid = f"billing-stale-{model._meta.label_lower}"
        pre_save.connect(_remember, sender=model, dispatch_uid=uid + "-pre")
        post_save.connect(_changed, sender=model, dispatch_uid=uid + "-save")
        post_delete.connect(_changed, sender=model, dispatch_uid=uid + "-delete")
    m2m_changed.connect(_rule_products_changed, sender=CoverageRule.products.through,
                        dispatch_uid="billing-stale-coverage-products")
