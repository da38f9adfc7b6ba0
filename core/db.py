"""Database helpers shared by the apps."""
from __future__ import annotations

from contextlib import contextmanager

from django.db import connections, transaction


@contextmanager
def bookkeeping(using: str = "default"):
    """Writes whose loss in a database crash is harmless and recovered elsewhere (a job's claim,
    progress, heartbeat and outcome: the lease and the redelivered message recover them) commit
    without waiting for the disk on PostgreSQL (``SET LOCAL synchronous_commit TO OFF``: about
    7 ms less per commit on the CI machine; a crash may lose the last ~0.6 s of such writes, never
    corrupt anything). Inside an outer transaction nothing changes: the outer commit decides, and
    stays durable. On SQLite this is a plain block."""
    connection = connections[using]
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        yield
        return
    with transaction.atomic(using=using):
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield


def copy_insert(model, rows, *, using: str = "default", batch_size: int = 2000) -> None:
    """Insert many new rows without reading their primary keys back: one ``COPY`` on PostgreSQL
    (no SQL to compile, no parameter arrays: a fraction of ``bulk_create``'s CPU for thousands of
    rows), ``bulk_create`` elsewhere. Values go through each field's ``get_db_prep_save`` as with
    ``bulk_create``; fields with ``pre_save`` logic (``auto_now_add``) are honoured."""
    rows = list(rows)
    connection = connections[using]
    if connection.vendor != "postgresql" or not rows:
        model.objects.using(using).bulk_create(rows, batch_size=batch_size)
        return
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([f.get_db_prep_save(f.pre_save(row, True), connection) for f in fields])
