"""Reads of resident data, always through the section scoping of ``structures.access``."""
from __future__ import annotations

from django.db.models import Prefetch, Q, QuerySet
from django.http import Http404
from django.utils import timezone

from structures.access import sections_for
from structures.models import Section

from .models import Absence, Resident, Stay


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
        terms = query.split()
        for term in terms:
            qs = qs.filter(
                Q(last_name__icontains=term) | Q(first_name__icontains=term) | Q(birth_name__icontains=term)
                | Q(external_ref__icontains=term)
                | Q(stays__room__iexact=term, stays__section=section)
            )
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


def stay_get(user, *, section: Section, pk: int) -> Stay:
    try:
        return Stay.objects.select_related("resident", "section").get(pk=pk, section__in=sections_for(user),
                                                                       section=section)
    except Stay.DoesNotExist as exc:
        raise Http404("Séjour introuvable dans cette section.") from exc


def absence_get(user, *, section: Section, pk: int) -> Absence:
    try:
        return Absence.objects.select_related("stay", "reason").get(
            pk=pk, stay__section__in=sections_for(user), stay__section=section
        )
    except Absence.DoesNotExist as exc:
        raise Http404("Absence introuvable dans cette section.") from exc
