"""Reminder texts per establishment and delays per section are edited in the administration
(scoped like the rest); runs, letters and reminders are read-only there (screens and services)."""
from django.contrib import admin

from structures.admin_scoping import SectionScopedAdmin

from .models import InvoiceDispute, ReminderDelays, ReminderText


@admin.register(ReminderText)
class ReminderTextAdmin(SectionScopedAdmin):
    section_lookup = "establishment__sections"
    list_display = ["establishment", "audience", "level", "title"]
    list_filter = ["establishment", "audience", "level"]


@admin.register(ReminderDelays)
class ReminderDelaysAdmin(SectionScopedAdmin):
    list_display = ["section", "level1_days", "level2_days", "level3_days"]


@admin.register(InvoiceDispute)
class InvoiceDisputeAdmin(SectionScopedAdmin):
    section_lookup = "invoice__section"
    list_display = ["invoice", "is_disputed", "comment", "updated_at"]
    raw_id_fields = ["invoice"]
