"""Read-only admin of the outbox (the log is never edited by hand; decisions go through the pages)."""
from django.contrib import admin

from core.admin_helpers import ReadableJsonAdminMixin
from structures.admin_scoping import SectionScopedAdmin

from .models import MailCampaign, MessageAttempt, OutgoingMessage, SmtpThrottle


class ReadOnlyMixin:
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class MessageAttemptInline(ReadOnlyMixin, admin.TabularInline):
    model = MessageAttempt
    extra = 0
    fields = ["started_at", "outcome", "step", "code", "reply", "explanation", "worker"]
    readonly_fields = fields


@admin.register(OutgoingMessage)
class OutgoingMessageAdmin(ReadableJsonAdminMixin, ReadOnlyMixin, SectionScopedAdmin):
    list_display = ["pk", "related_label", "subject", "recipients_display", "status", "attempts", "sent_at"]
    list_filter = ["status"]
    search_fields = ["related_label", "subject", "message_id", "related_key"]
    inlines = [MessageAttemptInline]


@admin.register(MailCampaign)
class MailCampaignAdmin(ReadableJsonAdminMixin, ReadOnlyMixin, SectionScopedAdmin):
    list_display = ["label", "kind", "created_at", "created_by"]
    list_filter = ["kind"]
    search_fields = ["label"]


@admin.register(SmtpThrottle)
class SmtpThrottleAdmin(ReadOnlyMixin, admin.ModelAdmin):
    list_display = ["organisation", "next_send_at", "sent_since_pause"]

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_module_permission(self, request):
        return request.user.is_superuser
