from django.contrib import admin

from core.admin_helpers import ReadableJsonAdminMixin
from structures.admin_scoping import SectionScopedAdmin

from .models import AbsenceCodeMapping, BankStatementEntry, ImportRun


@admin.register(ImportRun)
class ImportRunAdmin(ReadableJsonAdminMixin, SectionScopedAdmin):
    list_display = ["__str__", "kind", "status", "section", "created_by", "created_at"]
    list_filter = ["kind", "status", "section"]
    readonly_fields = [f.name for f in ImportRun._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(AbsenceCodeMapping)
class AbsenceCodeMappingAdmin(SectionScopedAdmin):
    section_lookup = "establishment__sections"
    list_display = ["establishment", "external_code", "reason"]
    list_filter = ["establishment"]


@admin.register(BankStatementEntry)
class BankStatementEntryAdmin(SectionScopedAdmin):
    list_display = ["booking_date", "entry_ref", "direction", "amount", "status", "section"]
    list_filter = ["status", "direction", "section"]
    readonly_fields = [f.name for f in BankStatementEntry._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
