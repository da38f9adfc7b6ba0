"""Reads of resident data, always through the section scoping of ``structures.access``."""
from __future__ import annotations

from django.db.models import Prefetch, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from core.text import text_key
from structures.access import sections_for
from structures.models import Section

from .models import Absence, AbsenceReason, GirAssessment, Relative, Resident, Stay


def residents_visible(user, *, section: Section | None = None) -> QuerySet[Resident]:
    """Residents with a stay in a section the user may read (optionally one given section)."""
    sections = sections_for(user)
    if section is not None:
        sections = sections.filter(pk=section.pk)
    return Resident.objects.in_sections(sections)


def resident_list(user, *, section: Section, query: str = "", presence: str = "present") -> QuerySet[Resident]:
    today = timezone.localdate()
    qs = residents_visible(user, section=section)
    if query:
        # Names and references through the normalised key: "lefevre" finds LEFÈVRE, "darcy" D'ARÇY.
        for word in query.split():
            term = text_key(word)
            match = Q(stays__room__iexact=word, stays__section=section)
            if term:
                match |= Q(search_key__contains=term)
            qs = qs.filter(match)
    current = Q(stays__section=section, stays__entry_date__lte=today) & (
        Q(stays__end_date__isnull=True) | Q(stays__end_date__gte=today)
    )
    if presence == "present":
        qs = qs.filter(current)
    elif presence == "left":
        qs = qs.exclude(pk__in=Resident.objects.filter(current).values("pk"))
    stays = Stay.objects.filter(section=section).order_by("-entry_date")
    return qs.distinct().prefetch_related(Prefetch("stays", queryset=stays, to_attr="section_stays"))


def resident_get(user, *, section: Section, pk: int) -> Resident:
    """A resident visible in ``section`` for ``user`` — else 404 (guessing ids leaks nothing)."""
    try:
        return residents_visible(user, section=section).get(pk=pk)
    except Resident.DoesNotExist as exc:
        raise Http404("Résident introuvable dans cette section.") from exc


def stay_get(user, *, section: Section, pk: int, resident: Resident | None = None) -> Stay:
    """A stay of ``section`` (and of ``resident`` when given) — else 404."""
    filters = {"resident": resident} if resident is not None else {}
    try:
        return Stay.objects.select_related("resident", "section").get(pk=pk, section__in=sections_for(user),
                                                                       section=section, **filters)
    except Stay.DoesNotExist as exc:
        raise Http404("Séjour introuvable dans cette section.") from exc


def absence_get(user, *, section: Section, pk: int, resident: Resident | None = None) -> Absence:
    """An absence during a stay of ``section`` (and of ``resident`` when given) — else 404."""
    filters = {"stay__resident": resident} if resident is not None else {}
    try:
        return Absence.objects.select_related("stay", "stay__section", "reason").get(
            pk=pk, stay__section__in=sections_for(user), stay__section=section, **filters
        )
    except Absence.DoesNotExist as exc:
        raise Http404("Absence introuvable dans cette section.") from exc


def relative_get(*, resident: Resident, pk: int) -> Relative:
    """A relative of ``resident`` (itself obtained through ``resident_get``) — else 404."""
    try:
        return resident.relatives.get(pk=pk)
    except Relative.DoesNotExist as exc:
        raise Http404("Proche introuvable.") from exc


def resident_stays(user, *, resident: Resident) -> QuerySet[Stay]:
    """Every stay of ``resident`` in the sections ``user`` may read (the transfer history)."""
    return (Stay.objects.filter(resident=resident, section__in=sections_for(user))
            .select_related("section", "section__establishment", "transferred_from__section")
            .order_by("-entry_date", "-pk"))


def resident_absences(user, *, resident: Resident) -> QuerySet[Absence]:
    """Absences of ``resident`` during stays in the sections ``user`` may read."""
    return (Absence.objects.filter(stay__resident=resident, stay__section__in=sections_for(user))
            .select_related("stay__section", "reason").order_by("-first_day", "-pk"))


def resident_gir_history(*, resident: Resident) -> QuerySet[GirAssessment]:
    return resident.gir_assessments.order_by("-valid_from")


def absence_reasons_for(*, section: Section) -> QuerySet[AbsenceReason]:
    """Absence reasons of the establishment of ``section``."""
    return AbsenceReason.objects.filter(establishment_id=section.establishment_id).order_by("code")
