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


# Field types whose Python value psycopg adapts as is (no preparation by the field): COPY writes them
# straight; any other field (JSON, encrypted…) goes through ``get_db_prep_save`` as in ``bulk_create``.
PLAIN_FIELD_TYPES = frozenset({
    "AutoField", "BigAutoField", "BigIntegerField", "BooleanField", "CharField", "DateField", "DateTimeField",
    "DecimalField", "ForeignKey", "IntegerField", "OneToOneField", "PositiveBigIntegerField",
    "PositiveIntegerField", "PositiveSmallIntegerField", "SlugField", "SmallIntegerField", "TextField"})


def _copy_columns(model):
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    plain = [f.get_internal_type() in PLAIN_FIELD_TYPES and not getattr(f, "auto_now", False)
             and not getattr(f, "auto_now_add", False) for f in fields]
    return fields, plain


def _copy(connection, model, fields, values_rows) -> None:
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for values in values_rows:
                copy.write_row(values)


def copy_insert(model, rows, *, using: str = "default", batch_size: int = 2000, with_pks: bool = False) -> None:
    """Insert many new model instances: one ``COPY`` on PostgreSQL (no SQL to compile, no parameter
    arrays: a fraction of ``bulk_create``'s CPU for thousands of rows), ``bulk_create`` elsewhere. Plain
    values (numbers, text, dates, foreign keys) go as they are; the others through the field's
    ``pre_save``/``get_db_prep_save`` as in ``bulk_create``. ``with_pks``: the instances get their
    primary keys, as with ``bulk_create`` (on PostgreSQL taken from the table's sequence in one query,
    in increasing order, before the ``COPY``)."""
    rows = list(rows)
    connection = connections[using]
    if connection.vendor != "postgresql" or not rows:
        model.objects.using(using).bulk_create(rows, batch_size=batch_size)
        return
    fields, plain = _copy_columns(model)
    if with_pks:
        pk = model._meta.pk
        with connection.cursor() as cursor:
            cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                           [connection.ops.quote_name(model._meta.db_table), pk.column, len(rows)])
            for row, (value,) in zip(rows, sorted(cursor.fetchall())):
                setattr(row, pk.attname, value)
                row._state.adding, row._state.db = False, using
        fields, plain = [pk, *fields], [True, *plain]
    pairs = list(zip(fields, plain))
    _copy(connection, model, fields, (
        [getattr(row, f.attname) if is_plain else f.get_db_prep_save(f.pre_save(row, True), connection)
         for f, is_plain in pairs] for row in rows))


def insert_values(model, rows: list[dict], *, using: str = "default", batch_size: int = 2000) -> None:
    """Like ``copy_insert`` from plain ``{attname: value}`` dicts, with no model instance built on
    PostgreSQL (tens of thousands of rows: building instances costs more than writing them). A
    missing field takes its default. Plain field types only (``PLAIN_FIELD_TYPES``)."""
    connection = connections[using]
    if connection.vendor != "postgresql" or not rows:
        model.objects.using(using).bulk_create([model(**row) for row in rows], batch_size=batch_size)
        return
    fields, plain = _copy_columns(model)
    if not all(plain):
        raise ValueError(f"insert_values: {model.__name__} has fields that need preparing")
    defaults = {f.attname: f.get_default() for f in fields}
    names = [f.attname for f in fields]
    _copy(connection, model, fields, ([row[n] if n in row else defaults[n] for n in names] for row in rows))
