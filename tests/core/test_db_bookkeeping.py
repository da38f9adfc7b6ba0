"""``core.db.bookkeeping``: a job's own rows commit without waiting for the disk on PostgreSQL,
and never weaken an outer transaction (the work of a job stays durable)."""
import pytest
from django.db import connection, transaction

from core.db import bookkeeping
from core.models import Job
from core.services.jobs import Progress

pytestmark = pytest.mark.django_db(transaction=True)


def synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL setting")
def test_bookkeeping_relaxes_only_its_own_transaction():
    assert synchronous_commit() == "on"
    with bookkeeping():
        assert connection.in_atomic_block
        assert synchronous_commit() == "off"
    assert synchronous_commit() == "on"  # SET LOCAL ended with the commit


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL setting")
def test_bookkeeping_inside_an_outer_transaction_keeps_it_durable():
    with transaction.atomic():
        with bookkeeping():
            assert synchronous_commit() == "on"


def test_progress_is_written_and_visible_after_the_block():
    job = Job.objects.create(kind="core.selftest", label="x")
    Progress(job.pk)(2, 5, "deux")
    job.refresh_from_db()
    assert (job.progress_current, job.progress_total, job.message) == (2, 5, "deux")


def test_copy_insert_writes_every_field_as_bulk_create_would():
    """``core.db.copy_insert``: COPY on PostgreSQL, bulk_create elsewhere — same rows either way
    (JSON values, defaults, ``auto_now_add``)."""
    from core.db import copy_insert

    copy_insert(Job, [Job(kind="core.selftest", label=f"n° {i}", params={"i": i, "texte": "é"}) for i in range(3)])
    rows = list(Job.objects.order_by("label"))
    assert [(j.label, j.params, j.status) for j in rows] == [
        (f"n° {i}", {"i": i, "texte": "é"}, Job.Status.PENDING) for i in range(3)]
    assert all(j.created_at is not None for j in rows)


def test_insert_values_writes_plain_rows_with_their_defaults():
    from datetime import date
    from decimal import Decimal

    from billing.models import InvoiceLine
    from core.db import insert_values
    from billing.models import Invoice
    from tests.billing.payment_helpers import resident_in
    from tests.factories import SectionFactory

    section = SectionFactory()
    resident = resident_in(section)
    invoice = Invoice.objects.create(section=section, establishment=section.establishment, debtor_kind="resident",
                                     resident=resident, date_from=date(2026, 1, 1), date_to=date(2026, 1, 31))
    before = 0
    insert_values(InvoiceLine, [dict(invoice_id=invoice.pk, resident_id=resident.pk,
                                     label=f"ligne {i}", date_from=date(2026, 1, 1), date_to=date(2026, 1, 31),
                                     quantity=Decimal("1.00"), unit_price=Decimal("2.50"), amount=Decimal("2.50"))
                                for i in range(3)])
    new = list(invoice.lines.order_by("pk")[before:])
    assert [(n.label, n.amount, n.position, n.vat_rate, n.reason) for n in new] == [
        (f"ligne {i}", Decimal("2.50"), 0, Decimal("0"), InvoiceLine._meta.get_field("reason").get_default())
        for i in range(3)]
    if connection.vendor == "postgresql":  # elsewhere bulk_create takes any field
        with pytest.raises(ValueError, match="need preparing"):
            insert_values(Job, [dict(kind="x", label="y")])  # a JSON field: COPY would write it wrong


def test_copy_insert_with_pks_gives_the_instances_their_keys():
    """``with_pks``: as ``bulk_create``, each instance gets its primary key (increasing in list order), is
    saved (``_state.adding`` False), and the table's sequence moves past them (a later insert does not
    collide)."""
    from core.db import copy_insert

    jobs = [Job(kind="core.selftest", label=f"clé {i}", params={"i": i}) for i in range(3)]
    copy_insert(Job, jobs, with_pks=True)
    pks = [j.pk for j in jobs]
    assert all(pks) and pks == sorted(pks) and len(set(pks)) == 3
    assert not any(j._state.adding for j in jobs)
    assert [(j.label, j.params) for j in Job.objects.filter(pk__in=pks).order_by("pk")] == [
        (f"clé {i}", {"i": i}) for i in range(3)]
    later = Job.objects.create(kind="core.selftest", label="après")
    assert later.pk > max(pks)
