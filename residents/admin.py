from django.contrib import admin

from core.admin_helpers import KeySearchAdminMixin
from structures.admin_scoping import SectionScopedAdmin, SectionScopedStackedInline, SectionScopedTabularInline

from .models import Absence, AbsenceReason, GirAssessment, Relative, Resident, Stay


class RelativeInline(SectionScopedStackedInline):
    model = Relative
    extra = 0


class StayInline(SectionScopedTabularInline):
    model = Stay
    extra = 0
    fk_name = "resident"
    fields = ["section", "entry_date", "end_date", "end_reason", "room"]


class GirInline(SectionScopedTabularInline):
    model = GirAssessment
    extra = 0


@admin.register(Resident)
class ResidentAdmin(KeySearchAdminMixin, SectionScopedAdmin):
    section_lookup = "stays__section"
    list_display = ["last_name", "first_name", "birth_date", "external_ref", "organisation", "payment_mode"]
    list_filter = ["organisation", "payment_mode", "stays__section"]
    search_fields = ["last_name", "first_name", "birth_name", "external_ref", "nir"]
    inlines = [StayInline, GirInline, RelativeInline]


@admin.register(Relative)
class RelativeAdmin(KeySearchAdminMixin, SectionScopedAdmin):
    section_lookup = "resident__stays__section"
    list_display = ["last_name", "first_name", "resident", "relationship", "receives_invoices", "is_guardian",
                    "is_payer"]
    list_filter = ["receives_invoices", "is_guardian", "is_payer"]
    search_fields = ["last_name", "first_name", "resident__last_name", "email"]
    raw_id_fields = ["resident"]


@admin.register(Stay)
class StayAdmin(KeySearchAdminMixin, SectionScopedAdmin):
    search_key_lookup = "resident__search_key"
    list_display = ["resident", "section", "entry_date", "end_date", "end_reason", "room"]
    list_filter = ["section", "end_reason"]
    search_fields = ["resident__last_name", "resident__first_name", "room"]
    date_hierarchy = "entry_date"
    raw_id_fields = ["resident", "transferred_from"]


@admin.register(GirAssessment)
class GirAssessmentAdmin(SectionScopedAdmin):
    section_lookup = "resident__stays__section"
    list_display = ["resident", "gir", "valid_from"]
    list_filter = ["gir"]
    search_fields = ["resident__last_name"]
    raw_id_fields = ["resident"]


@admin.register(AbsenceReason)
class AbsenceReasonAdmin(SectionScopedAdmin):
    section_lookup = "establishment__sections"
    list_display = ["code", "label", "rule", "establishment"]
    list_filter = ["establishment", "rule"]
    search_fields = ["code", "label"]


@admin.register(Absence)
class AbsenceAdmin(SectionScopedAdmin):
    section_lookup = "stay__section"
    list_display = ["stay", "reason", "first_day", "last_day", "source"]
    list_filter = ["reason__rule", "source", "stay__section"]
    search_fields = ["stay__resident__last_name"]
    date_hierarchy = "first_day"
    raw_id_fields = ["stay"]
