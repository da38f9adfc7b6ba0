"""Section scoping: the ONE place that decides which sections a user may read or change.

Every view, admin and selector that shows section-bound data goes through ``sections_for``.
Roles are ordered: reader < clerk < manager. Superusers act as managers everywhere.
Above the sections, an *administrateur de l'association* (``OrganisationAdministrator``) alone may
see and change the association's settings and SMTP account, and run the SMTP test.
"""
from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404

from .models import Organisation, OrganisationAdministrator, Section, SectionAccess

Role = SectionAccess.Role
ROLE_RANK = {Role.READER: 1, Role.CLERK: 2, Role.MANAGER: 3}


def roles_at_least(role: str) -> list[str]:
    return [r for r, rank in ROLE_RANK.items() if rank >= ROLE_RANK[role]]


def sections_for(user, role: str = Role.READER) -> QuerySet[Section]:
    """Sections in which ``user`` has at least ``role``."""
    if not user or not user.is_authenticated or not user.is_active:
        return Section.objects.none()
    qs = Section.objects.select_related("establishment", "establishment__organisation")
    if user.is_superuser:
        return qs
    return qs.filter(accesses__user=user, accesses__role__in=roles_at_least(role)).distinct()


def role_in(user, section: Section) -> str | None:
    if not user or not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return Role.MANAGER
    return SectionAccess.objects.filter(user=user, section=section).values_list("role", flat=True).first()


def has_role(user, section: Section, role: str) -> bool:
    current = role_in(user, section)
    return current is not None and ROLE_RANK[current] >= ROLE_RANK[role]


def section_for_user_or_404(user, alias: str) -> Section:
    """The section named in a URL, if the user may at least read it — else 404 (no leak)."""
    try:
        return sections_for(user).get(alias=alias)
    except Section.DoesNotExist as exc:
        raise Http404("Section inconnue ou non autorisée.") from exc


def require_role(user, section: Section, role: str) -> None:
    if not has_role(user, section, role):
        raise PermissionDenied("Vos droits sur cette section ne permettent pas cette action.")


def organisations_administered(user) -> QuerySet[Organisation]:
    """Associations whose settings (SMTP account) ``user`` may see and change."""
    if not user or not user.is_authenticated or not user.is_active:
        return Organisation.objects.none()
    if user.is_superuser:
        return Organisation.objects.all()
    return Organisation.objects.filter(administrators__user=user)


def is_organisation_admin(user, organisation: Organisation) -> bool:
    if not user or not user.is_authenticated or not user.is_active:
        return False
    return user.is_superuser or OrganisationAdministrator.objects.filter(user=user,
                                                                         organisation=organisation).exists()


def require_organisation_admin(user, organisation: Organisation) -> None:
    if not is_organisation_admin(user, organisation):
        raise PermissionDenied("Seuls les administrateurs de l'association peuvent voir et modifier ses paramètres "
                               "et son serveur d'envoi (SMTP).")
