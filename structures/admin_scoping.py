"""Admin base classes applying the same section scoping as the app (``structures.access``).

Two leaks to close for non-superuser staff:
- rows: the changelist and change pages only show rows reachable from the user's sections;
- choices: a foreign key to a section, an establishment or an association only offers those of
  the user's sections (otherwise a *responsable* of TIL-HP could grant himself VER-HP, or move a
  stay there, by picking it in a form).
"""
from django.contrib import admin

from core.admin_helpers import AuditHistoryAdminMixin

from . import access
from .models import Establishment, Organisation, Section


def scoped_choices(model, user, role):
    """Queryset of ``model`` rows ``user`` may pick, or None when ``model`` is not a structure."""
    if model is Section:
        return access.sections_for(user, role)
    sections = access.sections_for(user, role)
    if model is Establishment:
        return Establishment.objects.filter(sections__in=sections).distinct()
    if model is Organisation:
        return Organisation.objects.filter(establishments__sections__in=sections).distinct()
    return None


class SectionScopedChoicesMixin:
    """Limits foreign-key choices to structures reachable from the user's sections."""

    scoped_role = access.Role.MANAGER

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if not request.user.is_superuser and "queryset" not in kwargs:
            queryset = scoped_choices(db_field.related_model, request.user, self.scoped_role)
            if queryset is not None:
                kwargs["queryset"] = queryset
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class SectionScopedAdmin(AuditHistoryAdminMixin, SectionScopedChoicesMixin, admin.ModelAdmin):
    """Non-superuser staff see only rows reachable from sections where they are *responsable*.

    ``section_lookup`` is the ORM path from the model to ``Section`` (e.g. ``"stays__section"``).
    """

    section_lookup = "section"

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        sections = access.sections_for(request.user, self.scoped_role)
        return qs.filter(**{f"{self.section_lookup}__in": sections}).distinct()


class SectionScopedTabularInline(SectionScopedChoicesMixin, admin.TabularInline):
    """Inline whose foreign keys to structures offer only the user's (e.g. a stay's section)."""


class SectionScopedStackedInline(SectionScopedChoicesMixin, admin.StackedInline):
    pass
