"""« Brouillons à régénérer »: a change of billing data after generation marks the period; issuing
refuses its drafts until it is generated again."""
import html
from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from billing.models import BillingPeriod, Package, StayPackage, Tariff
from billing.services.calendars import calendar_day_set, calendar_generate
from billing.services.generation import period_generate
from billing.services.issuing import period_issue
from payers.models import CoverageRule
from residents.models import GirAssessment

APRIL = (date(2026, 4, 1), date(2026, 4, 30))


def _tariff(setup, stay):
    Tariff.objects.create(product=setup.products["HEB"], valid_from=date(2026, 4, 15), price=Decimal("70.00"))


def _tariff_edit(setup, stay):
    row = Tariff.objects.get(product=setup.products["HEB"])
    row.price = Decimal("66.00")
    row.save()


def _calendar(setup, stay):
    calendar_day_set(calendar=setup.calendar, day=date(2026, 4, 12), state="closed")


def _calendar_regenerated(setup, stay):
    setup.calendar.days.filter(day=date(2026, 4, 12)).update(state="closed")
    calendar_generate(calendar=setup.calendar, years=[2026], overwrite=True)


def _absence(setup, stay):
    setup.absence(stay, "H", date(2026, 4, 3), date(2026, 4, 9))


def _absence_moved(setup, stay):
    absence = setup.absence(stay, "H", date(2026, 3, 3), date(2026, 3, 9))  # before the period: no mark
    assert not BillingPeriod.objects.filter(drafts_stale_since__isnull=False).exists()
    absence.first_day, absence.last_day = date(2026, 4, 2), date(2026, 4, 8)  # moved into the period
    absence.save()


def _absence_deleted(setup, stay):
    absence = setup.absence(stay, "H", date(2026, 4, 3), date(2026, 4, 9))
    BillingPeriod.objects.update(drafts_stale_since=None)
    absence.delete()


def _stay_end(setup, stay):
    stay.end_date, stay.end_reason = date(2026, 4, 20), "departure"
    stay.save()


def _gir(setup, stay):
    GirAssessment.objects.create(resident=stay.resident, gir=2, valid_from=date(2026, 4, 10))


def _package(setup, stay):
    other = Package.objects.create(section=setup.section, code="ALT", label="Autre", dependency_by_gir=True)
    StayPackage.objects.create(stay=stay, package=other, valid_from=date(2026, 4, 16))


def _rule(setup, stay):
    payer = setup.payers["CD69"]
    CoverageRule.objects.create(stay=stay, payer=payer, group=payer.groups.get(code="ASH"), scope="accommodation",
                                mode="all", valid_from=date(2026, 4, 1))


def _rule_products(setup, stay):
    payer = setup.payers["CD69"]
    rule = CoverageRule.objects.create(stay=stay, payer=payer, scope="products", mode="all",
                                       valid_from=date(2026, 6, 1))  # after the period: no mark
    BillingPeriod.objects.update(drafts_stale_since=None)
    rule.valid_from = date(2026, 4, 1)
    CoverageRule.objects.filter(pk=rule.pk).update(valid_from=date(2026, 4, 1))
    rule.products.add(setup.products["HEB"])


def _new_stay(setup, stay):
    setup.stay(gir=4, entry=date(2026, 4, 20))


CHANGES = [_tariff, _tariff_edit, _calendar, _calendar_regenerated, _absence, _absence_moved, _absence_deleted, _stay_end, _gir,
           _package, _rule, _rule_products, _new_stay]


@pytest.mark.parametrize("change", CHANGES, ids=[c.__name__.strip("_") for c in CHANGES])
def test_a_change_marks_the_period_and_issue_waits_for_regeneration(billing_setup, change):
    stay = billing_setup.stay(gir=6)
    period = billing_setup.period(*APRIL)
    period_generate(period=period)
    period.refresh_from_db()
    assert period.drafts_stale_since is None
    change(billing_setup, stay)
    period.refresh_from_db()
    assert period.drafts_stale_since is not None
    with pytest.raises(ValidationError, match="à régénérer"):
        period_issue(period=period)
    assert not period.invoices.exclude(status="draft").exists()
    period_generate(period=period)
    period.refresh_from_db()
    assert period.drafts_stale_since is None
    assert period_issue(period=period)


def test_only_open_periods_with_drafts_of_the_section_covering_the_date_are_marked(billing_setup):
    from tests.factories import SectionFactory

    stay = billing_setup.stay(gir=6)
    march = billing_setup.period(date(2026, 3, 1), date(2026, 3, 31), "mars")
    april = billing_setup.period(*APRIL, label="avril")
    may = billing_setup.period(date(2026, 5, 1), date(2026, 5, 31), "mai")
    june = billing_setup.period(date(2026, 6, 1), date(2026, 6, 30), "juin")
    for p in (march, april, june):
        period_generate(period=p)
    period_issue(period=june)  # no drafts left
    closed = billing_setup.period(date(2026, 7, 1), date(2026, 7, 31), "juillet")
    period_generate(period=closed)
    BillingPeriod.objects.filter(pk=closed.pk).update(status="closed")
    other_section = SectionFactory(establishment=billing_setup.establishment, alias="EXA-HT")
    other = BillingPeriod.objects.create(section=other_section, start=date(2026, 4, 1), end=date(2026, 4, 30),
                                         accounting_date=date(2026, 4, 30), label="autre")
    billing_setup.absence(stay, "H", date(2026, 4, 3), date(2026, 4, 9))
    stale = set(BillingPeriod.objects.filter(drafts_stale_since__isnull=False).values_list("label", flat=True))
    assert stale == {"avril"}  # not March (before), May (no drafts), June (issued), July (closed), other section
    assert other.pk and may.pk


def test_the_period_page_says_drafts_are_stale(client, billing_setup):
    from django.urls import reverse

    from structures.models import SectionAccess
    from tests.factories import UserFactory

    stay = billing_setup.stay(gir=6)
    period = billing_setup.period(*APRIL)
    period_generate(period=period)
    user = UserFactory(username="clerk-exa")
    SectionAccess.objects.create(user=user, section=billing_setup.section, role="clerk")
    client.force_login(user)
    url = reverse("billing:period-detail", kwargs={"alias": "EXA-HP", "period_pk": period.pk})
    assert "Brouillons à régénérer" not in client.get(url).content.decode()
    _gir(billing_setup, stay)
    assert "Brouillons à régénérer" in client.get(url).content.decode()
    response = client.post(url, {"action": "issue", "issue_date": "2026-05-02"}, follow=True)
    assert "Régénérez la période avant d'émettre" in html.unescape(response.content.decode())
    assert not period.invoices.exclude(status="draft").exists()
