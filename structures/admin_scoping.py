"""Admin base class applying the same section scoping as the app (``structures.access``)."""
from django.contrib import admin

from . import access


class SectionScopedAdmin(admin.ModelAdmin):
    """Non-superuser staff see only rows reachable from sections where they are *responsable*.

    ``section_lookup`` is the ORM path from the model to ``Section`` (e.g. ``"stays__section"``).
    """

    section_lookup = "section"
    scoped_role = access.Role.MANAGER

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        if request.user.is_superuser:
            return qs
        sections = access.sections_for(request.user, self.scoped_role)
        return qs.filter(**{f"{self.section_lookup}__in": sections}).distinct()
