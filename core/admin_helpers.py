"""Shared admin helpers: money columns in the French format, readable JSON, and the audit log
(django-auditlog) shown on each object's *Historique* page."""
from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.utils.html import format_html, format_html_join

from .money import format_euros
from .text import search_terms

def euros(field: str, description=None):
    """A ``list_display`` / ``readonly_fields`` callable showing ``field`` as « 1 234,56 € »."""

    def display(*args):  # (obj) as a list_display callable, (model_admin, obj) as a ModelAdmin attribute
        value = getattr(args[-1], field)
        return "" if value is None else format_euros(value)

    display.short_description = description
    display.admin_order_field = field
    display.__name__ = f"{field}_euros"
    return admin.display(description=description, ordering=field)(display)

def readable_json(value) -> str:
    """A JSON value as a definition list / bulleted list (never the raw JSON text)."""
    if value in (None, "", {}, []):
        return "—"
    if isinstance(value, dict):
        return format_html("<dl>{}</dl>", format_html_join(
            "", "<dt>{}</dt><dd>{}</dd>", ((key, readable_json(item)) for key, item in value.items())))
    if isinstance(value, list):
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{}</li>", ((readable_json(item),) for item in value)))
    return format_html("{}", value)

def audit_rows(entries) -> list[dict]:
    """Audit-log entries as rows: when, who, action, and « champ : avant → après » per change."""
    rows = []
    for entry in entries:
        try:
            changes = entry.changes_display_dict
        except Exception:  # noqa: BLE001 - a field removed since: show the raw names
            changes = entry.changes_dict
        lines = []
        for field, values in changes.items():
            if isinstance(values, (list, tuple)) and len(values) == 2:
                old, new = ("—" if v in (None, "None", "") else v for v in values)
                lines.append(f"{field} : {old} → {new}")
            else:
                lines.append(f"{field} : {values}")
        rows.append({"timestamp": entry.timestamp, "actor": entry.actor, "action": entry.get_action_display(),
                     "changes": lines})
    return rows

class AuditHistoryAdminMixin:
    """The admin *Historique* page also lists the object's audit-log entries (changes made through
    the application and the services, not only those made in the admin)."""

    object_history_template = "admin/core/object_history_audit.html"
    audit_history_limit = 200

    def history_view(self, request, object_id, extra_context=None):
        from auditlog.models import LogEntry

        obj = self.get_object(request, unquote(object_id))
        entries = []
        if obj is not None:
            entries = audit_rows(LogEntry.objects.get_for_object(obj).select_related("actor")
                                 .order_by("-timestamp", "-pk")[:self.audit_history_limit])
        return super().history_view(request, object_id, {**(extra_context or {}), "audit_entries": entries})


class KeySearchAdminMixin:
    """Admin search that ignores accents and case: every word of the search must be in the normalised
    ``search_key`` (``core.text``), in addition to the usual ``search_fields`` matches."""

    search_key_lookup = "search_key"

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        terms = search_terms(search_term)
        if terms:
            keyed = queryset
            for term in terms:
                keyed = keyed.filter(**{f"{self.search_key_lookup}__contains": term})
            results = results | keyed
            may_have_duplicates = may_have_duplicates or "__" in self.search_key_lookup
        return results, may_have_duplicates


class ReadableJsonAdminMixin:
    """JSON fields of a read-only admin are shown as lists (``readable_json``), never as raw JSON:
    each JSON field ``x`` is replaced by the display ``x_readable``."""

    SUFFIX = "_readable"

    def _json_names(self) -> list[str]:
        from django.db import models

        return [f.name for f in self.model._meta.concrete_fields if isinstance(f, models.JSONField)]

    def get_fields(self, request, obj=None):
        names = set(self._json_names())
        fields = [f"{name}{self.SUFFIX}" if name in names else name for name in super().get_fields(request, obj)]
        return list(dict.fromkeys(fields))

    def get_readonly_fields(self, request, obj=None):
        names = set(self._json_names())
        fields = [f"{name}{self.SUFFIX}" if name in names else name
                  for name in super().get_readonly_fields(request, obj)]
        return list(dict.fromkeys([*fields, *(f"{name}{self.SUFFIX}" for name in names)]))

    def __getattr__(self, attribute):
        if attribute.endswith(self.SUFFIX) and attribute[:-len(self.SUFFIX)] in self._json_names():
            field = self.model._meta.get_field(attribute[:-len(self.SUFFIX)])

            def display(obj):
                return readable_json(getattr(obj, field.name))

            display.short_description = field.verbose_name
            return display
        raise AttributeError(attribute)
