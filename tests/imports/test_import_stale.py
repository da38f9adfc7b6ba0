"""Imports write with bulk_create (no signals): they mark the generated periods « brouillons à régénérer »."""
from datetime import date

from billing.models import BillingPeriod
from billing.services.generation import period_generate
from billing.services.periods import period_create
from imports.services import residents_import as service

from .conftest import resident_row
from .test_absences_import import apply, csv_bytes, line, make_stay, til  # noqa: F401 - fixtures


def _generated_november(section):
    period = period_create(section=section, start=date(2026, 11, 1))
    period_generate(period=period)
    period.refresh_from_db()
    assert period.drafts_stale_since is None and period.invoices.filter(status="draft").exists()
    return period


def test_absences_import_without_regeneration_marks_the_period(til, make_stay):  # noqa: F811
    make_stay("EXT-1")
    period = _generated_november(til)
    apply(til, csv_bytes([line("EXT-1", {3: "2", 4: "2", 5: "2"})]), regenerate="none")
    period.refresh_from_db()
    assert period.drafts_stale_since is not None
    apply(til, csv_bytes([line("EXT-1", {3: "2", 4: "2"})]), regenerate="inline")  # regenerated: cleared
    period.refresh_from_db()
    assert period.drafts_stale_since is None


def test_resident_import_into_a_generated_period_marks_it(demo, files, make_stay):  # noqa: F811
    make_stay("EXT-9")
    period = _generated_november(demo["sections"]["TIL-HP"])
    outcome = service.residents_import(residents=service.ImportFile(files.residents([resident_row(1)]),
                                                                    "residents.xlsx"))
    assert outcome.imported, outcome.report.errors
    period.refresh_from_db()
    assert period.drafts_stale_since is not None
    assert not BillingPeriod.objects.exclude(pk=period.pk).filter(drafts_stale_since__isnull=False).exists()
