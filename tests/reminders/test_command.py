"""manage.py reminders: the proposal as CSV, --create stores the run."""
from datetime import date
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command

from reminders.models import InvoiceDispute, ReminderRun
from tests.billing.payment_helpers import issued_invoice, resident_in
from tests.factories import SectionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup():
    section = SectionFactory(alias="TIL-HP")
    resident = resident_in(section)
    a = issued_invoice(section, resident, "100.00", date(2026, 1, 5))
    b = issued_invoice(section, resident, "80.00", date(2026, 1, 6))
    InvoiceDispute.objects.create(invoice=b, comment="contestée")
    return section, a, b


def test_prints_the_proposal(setup, capsys):
    section, a, b = setup
    call_command("reminders", "--section", "TIL-HP", "--date", "2026-02-05")
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].lstrip("\ufeff") == "FACTURE;DEBITEUR;NIVEAU;RESTE;RETARD_JOURS;EXCLUSION"
    assert lines[1].split(";")[0] == a.number and lines[1].split(";")[2:] == ["1", "100,00", "16", ""]
    assert lines[2].split(";")[0] == b.number and lines[2].endswith(";facture contestée")
    assert not ReminderRun.objects.exists()


def test_limit_date_defaults_to_first_of_month(setup, capsys):
    call_command("reminders", "--section", "TIL-HP", "--date", "2026-02-05", "--limit-date", "2026-01-19")
    assert len(capsys.readouterr().out.strip().splitlines()) == 1


def test_create_stores_the_run(setup, capsys):
    call_command("reminders", "--section", "TIL-HP", "--date", "2026-02-05", "--create")
    run = ReminderRun.objects.get()
    assert (run.limit_date, run.print_date, run.reminders.count()) == (date(2026, 2, 1), date(2026, 2, 5), 2)
    assert run.reminders.filter(selected=True).get().balance == Decimal("100.00")
    assert len(capsys.readouterr().out.strip().splitlines()) == 3


def test_refusals(setup):
    with pytest.raises(CommandError, match="Section inconnue"):
        call_command("reminders", "--section", "NOPE")
    with pytest.raises(CommandError, match="Date invalide"):
        call_command("reminders", "--section", "TIL-HP", "--date", "05/02/2026")
    with pytest.raises(CommandError, match="Format inconnu"):
        call_command("reminders", "--section", "TIL-HP", "--format", "xlsx")


def test_all_sections_of_the_association(setup, capsys):
    section, a, b = setup
    sister = SectionFactory(alias="TIL-UP", establishment=section.establishment)
    c = issued_invoice(sister, resident_in(sister), "60.00", date(2026, 1, 6))
    other = SectionFactory(alias="AUT-HP")  # another association: never in TIL-HP's run
    issued_invoice(other, resident_in(other), "70.00", date(2026, 1, 6))
    call_command("reminders", "--all-sections", "--section", "TIL-HP", "--date", "2026-02-05")
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].lstrip("\ufeff") == "SECTION;FACTURE;DEBITEUR;NIVEAU;RESTE;RETARD_JOURS;EXCLUSION"
    assert sorted((line.split(";")[0], line.split(";")[1]) for line in lines[1:]) == sorted(
        [("TIL-HP", a.number), ("TIL-HP", b.number), ("TIL-UP", c.number)])
    call_command("reminders", "--all-sections", "--section", "TIL-HP", "--date", "2026-02-05", "--create")
    runs = {run.section.alias: run for run in ReminderRun.objects.all()}
    assert set(runs) == {"TIL-HP", "TIL-UP"}
    assert list(runs["TIL-UP"].reminders.values_list("invoice_id", flat=True)) == [c.pk]
    with pytest.raises(CommandError, match="--section ALIAS ou --all-sections"):
        call_command("reminders", "--date", "2026-02-05")
