"""Audit-log entries for rows written in bulk.

``bulk_create`` sends no model signals, so django-auditlog writes nothing for the rows it creates.
``log_created_bulk`` writes the entries its receiver would have written for each new row — same
content type, ``changes`` (``auditlog.diff.model_instance_diff(None, row)`` on the row's own fields:
the reverse relations, which auditlog renders as « app.Model.None » and which cost a manager per row,
are left out), representation, correlation id and the actor the caller names — in one ``COPY``
(PostgreSQL) or one ``bulk_create`` per batch (``core.db.copy_insert``).

The actor is never read from auditlog's context: its middleware sets that context variable for a
request and never resets it, so outside a request (a job, a command, the next test) it still names
the last request's user.
"""
from __future__ import annotations

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.utils.encoding import smart_str

from core.db import copy_insert


def log_created_bulk(instances, *, actor=None, batch_size: int = 1000) -> None:
    """One « create » entry per instance of a registered model (the others are skipped)."""
    from auditlog.cid import get_cid
    from auditlog.diff import model_instance_diff
    from auditlog.models import LogEntry
    from auditlog.registry import auditlog

    cid = get_cid()
    use_json = settings.AUDITLOG_STORE_JSON_CHANGES
    entries, own_fields = [], {}
    for instance in instances:
        model = instance.__class__
        if not auditlog.contains(model):
            continue
        if model not in own_fields:
            own_fields[model] = [f.name for f in model._meta.concrete_fields]
        entries.append(LogEntry(
            content_type=ContentType.objects.get_for_model(instance), object_pk=str(instance.pk),
            object_id=instance.pk, object_repr=smart_str(instance), action=LogEntry.Action.CREATE,
            changes=model_instance_diff(None, instance, fields_to_check=own_fields[model],
                                        use_json_for_changes=use_json),
            serialized_data=LogEntry.objects._get_serialized_data_or_none(instance), cid=cid, actor=actor,
            actor_email=getattr(actor, "email", None) if actor else None))
    copy_insert(LogEntry, entries, batch_size=batch_size)


def log_changes_bulk(model, rows, *, action: str = "update", actor=None, timestamp=None,
                     batch_size: int = 1000) -> None:
    """One entry per ``(pk, representation, changes)`` row of ``model`` written in bulk (an UPDATE of
    many rows, or rows created without instances at hand); ``action`` is ``"create"`` or ``"update"``."""
    from auditlog.cid import get_cid
    from auditlog.models import LogEntry

    content_type = ContentType.objects.get_for_model(model)
    cid, email = get_cid(), getattr(actor, "email", None) if actor else None
    kind = LogEntry.Action.CREATE if action == "create" else LogEntry.Action.UPDATE
    extra = {"timestamp": timestamp} if timestamp else {}
    copy_insert(LogEntry, [
        LogEntry(content_type=content_type, object_pk=str(pk), object_id=pk, object_repr=smart_str(text)[:200],
                 action=kind, changes=changes, cid=cid, actor=actor, actor_email=email, **extra)
        for pk, text, changes in rows], batch_size=batch_size)
