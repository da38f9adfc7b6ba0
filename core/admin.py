from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from .admin_helpers import AuditHistoryAdminMixin, readable_json
from .models import Job


@admin.register(Job)
class JobAdmin(AuditHistoryAdminMixin, admin.ModelAdmin):
    list_display = ["label", "kind", "status", "progress_current", "progress_total", "created_by", "created_at",
                    "finished_at"]
    list_filter = ["status", "kind"]
    search_fields = ["label", "kind", "error"]
    # Parameters and result are shown readably, never as raw JSON.
    fields = [f.name for f in Job._meta.fields if f.name not in ("id", "params", "result")] + [
        "params_display", "result_display"]
    readonly_fields = fields

    @admin.display(description=_("paramètres"))
    def params_display(self, obj):
        return readable_json(obj.params)

    @admin.display(description=_("résultat"))
    def result_display(self, obj):
        return readable_json(obj.result)

    def has_add_permission(self, request):
        return False
