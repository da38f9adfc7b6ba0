from django.contrib import admin

from .admin_scoping import SectionScopedAdmin, SectionScopedTabularInline
from .models import Establishment, Organisation, OrganisationAdministrator, Section, SectionAccess


@admin.register(Organisation)
class OrganisationAdmin(SectionScopedAdmin):
    section_lookup = "establishments__sections"
    list_display = ["name", "siret", "city", "smtp_host", "smtp_blocked_at"]
    search_fields = ["name", "siret"]

    def get_queryset(self, request):
        """The association (SMTP account included) is for its administrators, not section managers."""
        from . import access

        qs = admin.ModelAdmin.get_queryset(self, request)
        if request.user.is_superuser:
            return qs
        return qs.filter(pk__in=access.organisations_administered(request.user).values("pk"))


@admin.register(OrganisationAdministrator)
class OrganisationAdministratorAdmin(admin.ModelAdmin):
    """Granted by superusers only."""

    list_display = ["user", "organisation"]
    list_filter = ["organisation"]
    search_fields = ["user__username", "organisation__name"]

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    has_add_permission = has_change_permission = has_delete_permission = has_view_permission


class SectionInline(SectionScopedTabularInline):
    model = Section
    extra = 0


@admin.register(Establishment)
class EstablishmentAdmin(SectionScopedAdmin):
    section_lookup = "sections"
    list_display = ["name", "code", "organisation", "departement", "legal_status", "finess"]
    list_filter = ["organisation", "legal_status", "departement"]
    search_fields = ["name", "code", "finess", "siret"]
    inlines = [SectionInline]


@admin.register(Section)
class SectionAdmin(SectionScopedAdmin):
    section_lookup = "pk"
    list_display = ["alias", "name", "establishment", "kind", "periodicity", "places", "is_active"]
    list_filter = ["kind", "establishment", "is_active"]
    search_fields = ["alias", "name"]

    def get_queryset(self, request):
        qs = admin.ModelAdmin.get_queryset(self, request)
        if request.user.is_superuser:
            return qs
        from . import access

        return qs.filter(pk__in=access.sections_for(request.user, self.scoped_role).values("pk"))


@admin.register(SectionAccess)
class SectionAccessAdmin(SectionScopedAdmin):
    list_display = ["user", "section", "role"]
    list_filter = ["role", "section"]
    search_fields = ["user__username", "section__alias"]
    autocomplete_fields = ["section"]
