"""manage.py sepa_batch: file written and valid, --mark-sent, French non-zero exits."""
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from lxml import etree

from sepa.models import DebitBatch, Mandate
from sepa.services.debits import target_business_day, xml_schema
from tests.billing.payment_helpers import resident_in
from tests.factories import SectionFactory
from tests.sepa.helpers import active_mandate, creditor_for, debit_invoice, period_for

pytestmark = pytest.mark.django_db


def _run(*args):
    err = StringIO()
    call_command("sepa_batch", *args, stdout=StringIO(), stderr=err)
    return err.getvalue()


def test_sepa_batch_command(tmp_path):
    section = SectionFactory()
    creditor_for(section)
    period = period_for(section)
    resident = resident_in(section)
    mandate = active_mandate(section, resident)
    debit_invoice(period, resident, "1234.56")
    debit_invoice(period, resident_in(section), "10.00")  # no mandate: listed, not collected
    out = tmp_path / "lot.xml"
    with pytest.raises(CommandError, match="Section inconnue"):
        _run("--section", "NOPE", "--month", "2026-01")
    with pytest.raises(CommandError, match="Aucune période de facturation en 03/2026"):
        _run("--section", section.alias, "--month", "2026-03")
    saturday = timezone.localdate() + timedelta(days=30)
    while saturday.weekday() != 5:
        saturday += timedelta(days=1)
    with pytest.raises(CommandError, match="jour ouvré TARGET"):
        _run("--section", section.alias, "--month", "2026-01", "--collection-date", saturday.isoformat())
    assert not DebitBatch.objects.exists()
    err = _run("--section", section.alias, "--month", "2026-01", "-o", str(out), "--mark-sent")
    assert "Aucun mandat." in err and "1 prélèvements, 1234.56 €" in err and "FRST : 1" in err
    assert xml_schema("pain.008.001.08").validate(etree.parse(str(out)))
    batch = DebitBatch.objects.get()
    assert batch.status == DebitBatch.Status.SENT and target_business_day(batch.collection_date)
    assert (batch.collection_date - timezone.localdate()).days >= 14
    mandate.refresh_from_db()
    assert mandate.next_sequence_type == Mandate.SequenceType.RCUR
    with pytest.raises(CommandError, match="Aucune facture à prélever"):
        _run("--section", section.alias, "--month", "2026-01")
