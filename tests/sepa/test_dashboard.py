"""SEPA on the tableau de bord: the lapsed-mandate to-do counts per section as the *Mandats caducs*
page lists them, in one query whatever the number of the user's sections."""
from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from sepa.models import Mandate
from sepa.services.dashboard import mandate_lapse_todos
from sepa.services.mandates import add_months, mandates_lapse_list, mandates_lapse_todo
from tests.billing.payment_helpers import resident_in
from tests.factories import SectionFactory, StayFactory, UserFactory
from tests.sepa.helpers import IBAN_B, active_mandate, creditor_for

pytestmark = pytest.mark.django_db
TODAY = date(2026, 3, 2)


def _section_with_mandates(lapsed: int, lapsing: int, today: date = TODAY):
    """A section with ``lapsed`` mandates *caducs*, ``lapsing`` lapsing within 60 days and one fine."""
    section = SectionFactory()
    creditor_for(section)
    for _n in range(lapsed):
        Mandate.objects.filter(pk=active_mandate(section, resident_in(section)).pk).update(
            status=Mandate.Status.EXPIRED, lapsed_on=date(2025, 1, 10))
    for _n in range(lapsing):
        active_mandate(section, resident_in(section), last_collection_date=add_months(today, -36) + timedelta(days=20))
    active_mandate(section, resident_in(section), last_collection_date=today - timedelta(days=30))
    return section


def test_counts_per_section_as_the_page_lists_them():
    first, second, quiet = _section_with_mandates(2, 1), _section_with_mandates(0, 3), _section_with_mandates(0, 0)
    twice = Mandate.objects.filter(establishment=first.establishment, status=Mandate.Status.EXPIRED).first()
    StayFactory(resident=twice.resident, section=first, entry_date=date(2024, 1, 1))  # two stays: counted once
    # A resident of ``first`` whose lapsing mandate is with another creditor: not ``first``'s to-do.
    elsewhere = resident_in(first)
    active_mandate(second, elsewhere, IBAN_B, last_collection_date=add_months(TODAY, -36) + timedelta(days=5))
    counts = mandates_lapse_todo([first, second, quiet], today=TODAY)
    assert counts == {first.pk: (2, 1), second.pk: (0, 3)}
    for section in (first, second):
        lapsed, lapsing = mandates_lapse_list(section=section, today=TODAY)
        assert counts[section.pk] == (len(lapsed), len(lapsing))
    assert mandates_lapse_todo([], today=TODAY) == {}


def test_lapse_todo_costs_one_query_whatever_the_number_of_sections():
    sections = [_section_with_mandates(1, 1, timezone.localdate()) for _n in range(5)]  # the provider's today
    user = UserFactory()
    with CaptureQueriesContext(connection) as one:
        todos_one = mandate_lapse_todos(user=user, sections=sections[:1], year=2026, month=3, shared={})
    with CaptureQueriesContext(connection) as five:
        todos_five = mandate_lapse_todos(user=user, sections=sections, year=2026, month=3, shared={})
    assert len(todos_one) == 1 and len(todos_five) == 5
    assert {t.section.pk for t in todos_five} == {s.pk for s in sections}
    assert all(t.count == 2 and t.level == "warning" for t in todos_five)
    assert len(one) == len(five) == 1
