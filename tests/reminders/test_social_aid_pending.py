"""« Aide sociale en attente » (billing-rules §10): the family invoices of a resident whose social-aid
application is pending are never proposed for a reminder level; they are listed apart with the filing
date, and come back in the proposal once the application is refused.

Hand-made data: section delays 15 / 30 / 30; invoices issued 05/01/2026, due 20/01/2026, so level 1 is
due from 04/02/2026. MARTIN has an application filed 10/12/2025 with CD38; DURAND has none."""
from datetime import date

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from payers.models import Payer, SocialAidApplication
from reminders.models import Reminder
from reminders.services import proposal as prop
from reminders.services.runs import run_create, run_validate
from structures.models import SectionAccess
from tests.billing.payment_helpers import issued_invoice, paying_relative, resident_in
from tests.factories import SectionAccessFactory, SectionFactory, UserFactory

pytestmark = pytest.mark.django_db
PRINT = date(2026, 2, 5)


@pytest.fixture
def site():
    section = SectionFactory(alias="ASH-A")
    organisation = section.establishment.organisation
    cd38 = Payer.objects.create(organisation=organisation, code="CD38", name="Département de l'Isère",
                                kind=Payer.Kind.DEPARTEMENT, departement="38")
    mutual = Payer.objects.create(organisation=organisation, code="MUT", name="Mutuelle", kind=Payer.Kind.MUTUAL)
    martin = resident_in(section, last_name="MARTIN")
    durand = resident_in(section, last_name="DURAND")
    application = SocialAidApplication.objects.create(stay=martin.stays.get(), payer=cd38,
                                                      filed_on=date(2025, 12, 10))
    relative = paying_relative(martin, last_name="MARTIN-FILS")
    invoices = {
        "martin": issued_invoice(section, martin, "1850.00", date(2026, 1, 5)),
        "martin_relative": issued_invoice(section, martin, "120.00", date(2026, 1, 5), relative=relative),
        "martin_payer": issued_invoice(section, martin, "300.00", date(2026, 1, 5), payer=mutual),
        "durand": issued_invoice(section, durand, "1850.00", date(2026, 1, 5)),
    }
    return {"section": section, "resident_martin": martin, "application": application,
            "cd38": cd38, **invoices}


def _rows(section):
    return {row.invoice.pk: row for row in prop.proposal_rows(section=section, limit_date=date(2026, 2, 1),
                                                                print_date=PRINT)}


def test_pending_application_suspends_the_residents_family_invoices_only(site):
    rows = _rows(site["section"])
    for key in ("martin", "martin_relative"):
        row = rows[site[key].pk]
        assert row.exclusion == prop.SOCIAL_AID and row.is_excluded
        assert row.exclusion_detail == "dossier déposé le 10/12/2025 (CD38)"
        assert row.exclusion_label == "aide sociale en attente"
    # The mutual's invoice about MARTIN is not the département's to pay; DURAND has no application.
    assert rows[site["martin_payer"].pk].exclusion == ""
    assert rows[site["durand"].pk].exclusion == "" and rows[site["durand"].pk].level == 1


def test_suspended_invoices_are_stored_unticked_and_never_sent(site):
    run = run_create(section=site["section"], print_date=PRINT, limit_date=date(2026, 2, 1))
    line = run.reminders.get(invoice=site["martin"])
    assert line.exclusion == prop.SOCIAL_AID and not line.selected
    run_validate(run=run)
    assert not Reminder.objects.filter(invoice=site["martin"], status=Reminder.Status.SENT).exists()
    assert Reminder.objects.filter(invoice=site["durand"], status=Reminder.Status.SENT, level=1).exists()


def test_refusal_brings_the_invoices_back_and_a_new_filing_suspends_them_again(site):
    application = site["application"]
    application.status, application.decided_on = SocialAidApplication.Status.REFUSED, date(2026, 1, 30)
    application.save()
    rows = _rows(site["section"])
    assert rows[site["martin"].pk].exclusion == "" and rows[site["martin"].pk].level == 1
    assert rows[site["martin_relative"].pk].exclusion == ""
    # A new application (filed again) suspends them again.
    SocialAidApplication.objects.create(stay=site["resident_martin"].stays.get(), payer=site["cd38"],
                                        filed_on=date(2026, 2, 2))
    assert _rows(site["section"])[site["martin"].pk].exclusion_detail == "dossier déposé le 02/02/2026 (CD38)"


def test_another_residents_application_or_another_section_does_not_suspend(site):
    other = SectionFactory(alias="ASH-B", establishment=site["section"].establishment)
    stranger = resident_in(other, last_name="AUTRE")
    SocialAidApplication.objects.create(stay=stranger.stays.get(), payer=site["cd38"], filed_on=date(2026, 1, 2))
    SocialAidApplication.objects.filter(pk=site["application"].pk).update(status="refused",
                                                                          decided_on=date(2026, 1, 3))
    assert {row.exclusion for row in _rows(site["section"]).values()} == {""}


def test_query_count_stays_constant_with_pending_applications(site):
    section = site["section"]
    SocialAidApplication.objects.all().delete()
    prop.proposal_rows(section=section, limit_date=date(2026, 2, 1), print_date=PRINT)
    with CaptureQueriesContext(connection) as without:
        prop.proposal_rows(section=section, limit_date=date(2026, 2, 1), print_date=PRINT)
    for k in range(5):
        resident = resident_in(section)
        issued_invoice(section, resident, "90.00", date(2026, 1, 5))
        SocialAidApplication.objects.create(stay=resident.stays.get(), payer=site["cd38"],
                                            filed_on=date(2025, 11, 1 + k))
    with CaptureQueriesContext(connection) as with_pending:
        rows = prop.proposal_rows(section=section, limit_date=date(2026, 2, 1), print_date=PRINT)
    assert sum(row.exclusion == prop.SOCIAL_AID for row in rows) == 5
    assert len(with_pending.captured_queries) == len(without.captured_queries)


def test_reminder_screens_list_the_suspended_invoices_apart_with_the_filing_date(client, site):
    clerk = UserFactory(username="clerk-ash")
    SectionAccessFactory(user=clerk, section=site["section"], role=SectionAccess.Role.CLERK)
    client.force_login(clerk)
    runs_url = reverse("reminders:runs", kwargs={"alias": "ASH-A"})
    page = client.get(runs_url).content.decode()
    assert 'id="aid-pending"' in page and "Suspendues : aide sociale en attente" in page
    suspended = page.split('id="aid-pending"')[1].split("</table>")[0]
    assert site["martin"].number in suspended and site["martin_relative"].number in suspended
    assert "10/12/2025" in suspended and "CD38" in suspended
    assert site["durand"].number not in suspended and site["martin_payer"].number not in suspended
    run = run_create(section=site["section"], print_date=PRINT, limit_date=date(2026, 2, 1))
    page = client.get(reverse("reminders:run", kwargs={"alias": "ASH-A", "pk": run.pk})).content.decode()
    lines, suspended = page.split('id="aid-pending"')
    assert site["martin"].number not in lines.split('id="lines"')[1]
    assert site["durand"].number in lines
    assert site["martin"].number in suspended and "dossier déposé le 10/12/2025 (CD38)" in suspended


def test_dashboard_todo_for_applications_pending_too_long(site):
    from datetime import timedelta

    from django.utils import timezone

    from reminders.services.dashboard import aid_pending_todos
    from structures.dashboard import TODO_PROVIDERS

    assert aid_pending_todos in [provider for _order, provider in TODO_PROVIDERS]
    section, quiet = site["section"], SectionFactory(alias="ASH-Q")
    today = timezone.localdate()
    SocialAidApplication.objects.filter(pk=site["application"].pk).update(filed_on=today - timedelta(days=200))
    recent = resident_in(section)
    SocialAidApplication.objects.create(stay=recent.stays.get(), payer=site["cd38"], filed_on=today - timedelta(days=30))
    [todo] = aid_pending_todos(user=None, sections=[section, quiet], year=today.year, month=today.month, shared={})
    assert todo.text == "1 demande d'aide sociale en attente depuis plus de 4 mois pour ASH-A"
    assert todo.url == reverse("reminders:runs", kwargs={"alias": "ASH-A"}) + "#aid-pending"
    assert todo.level == "warning" and todo.count == 1
