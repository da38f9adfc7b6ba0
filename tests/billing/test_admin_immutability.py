"""Django admin: no invoice added, numbered, issued or re-totalled by hand (superusers included);
frozen tariffs / calendar days read-only; the audit log on each *Historique* page; readable values."""
from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from billing.models import CalendarDay, Invoice, NationalParameter, Tariff
from billing.services.calendars import calendar_day_set
from billing.services.generation import period_generate
from billing.services.issuing import period_issue
from core.models import Job
from tests.factories import UserFactory

D = Decimal


@pytest.fixture
def superuser_client(client, billing_setup, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def _url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _period(setup):
    setup.stay(gir=6)
    period = setup.period(date(2026, 4, 1), date(2026, 4, 30))
    period_generate(period=period)
    return period


def test_superuser_cannot_add_an_invoice(superuser_client, billing_setup):
    assert superuser_client.get(_url(Invoice, "add")).status_code == 403
    response = superuser_client.post(_url(Invoice, "add"), {
        "section": billing_setup.section.pk, "establishment": billing_setup.establishment.pk, "kind": "invoice",
        "status": "issued", "number": "TIL-2026-999999", "debtor_kind": "resident", "date_from": "2026-04-01",
        "date_to": "2026-04-30", "total": "999.99"})
    assert response.status_code == 403
    assert not Invoice.objects.exists()
    changelist = superuser_client.get(_url(Invoice, "changelist")).content.decode()
    assert _url(Invoice, "add") not in changelist


def test_superuser_cannot_set_number_status_or_total_of_a_draft(superuser_client, billing_setup):
    draft = _period(billing_setup).invoices.get()
    page = superuser_client.get(_url(Invoice, "change", draft.pk)).content.decode()
    assert 'name="number"' not in page and 'name="status"' not in page and 'name="total"' not in page
    assert "2\u202f130,00\u00a0€" in page  # money in the French format
    response = superuser_client.post(_url(Invoice, "change", draft.pk), {
        "comment": "vu", "status": "issued", "number": "EXA-2026-999999", "total": "999.99",
        "lines-TOTAL_FORMS": "0", "lines-INITIAL_FORMS": "0"})
    assert response.status_code == 302
    draft.refresh_from_db()
    assert (draft.status, draft.number, draft.total, draft.comment) == ("draft", "", D("2130.00"), "vu")


def test_issued_invoice_is_read_only_in_admin(superuser_client, billing_setup):
    period = _period(billing_setup)
    invoice = period_issue(period=period)[0]
    page = superuser_client.get(_url(Invoice, "change", invoice.pk)).content.decode()
    assert 'name="comment"' not in page
    response = superuser_client.post(_url(Invoice, "change", invoice.pk), {"comment": "x"})
    assert response.status_code == 403
    assert superuser_client.post(_url(Invoice, "delete", invoice.pk), {"post": "yes"}).status_code == 403


def test_used_tariff_and_calendar_day_are_read_only_in_admin(superuser_client, billing_setup):
    period_issue(period=_period(billing_setup))
    tariff = billing_setup.products["HEB"].tariffs.get()
    assert superuser_client.post(_url(Tariff, "change", tariff.pk),
                                 {"product": tariff.product_id, "valid_from": "2025-01-01",
                                  "price": "99.00"}).status_code == 403
    assert superuser_client.post(_url(Tariff, "delete", tariff.pk), {"post": "yes"}).status_code == 403
    assert Tariff.objects.get(pk=tariff.pk).price == D("65.00")
    day = CalendarDay.objects.get(calendar=billing_setup.calendar, day=date(2026, 4, 10))
    assert superuser_client.post(_url(CalendarDay, "change", day.pk),
                                 {"calendar": day.calendar_id, "day": "2026-04-10", "state": "closed"}).status_code == 403
    national = NationalParameter.objects.get(kind="hospital_daily_charge", valid_from=date(2026, 3, 1))
    assert superuser_client.post(_url(NationalParameter, "delete", national.pk), {"post": "yes"}).status_code == 403
    # The tariffs list shows the establishment and French money.
    listing = superuser_client.get(_url(Tariff, "changelist")).content.decode()
    assert billing_setup.establishment.name in listing and "65,00\u00a0€" in listing
    # An unused one stays editable.
    other = billing_setup.products["DEP12"].tariffs.get()
    assert superuser_client.get(_url(Tariff, "change", other.pk)).context["has_change_permission"]


def test_admin_history_page_lists_the_audit_log(superuser_client, billing_setup):
    invoice = period_issue(period=_period(billing_setup))[0]
    page = superuser_client.get(_url(Invoice, "history", invoice.pk)).content.decode()
    assert "Journal d'audit" in page or "Journal d&#x27;audit" in page
    assert "état : Brouillon → Émise" in page
    calendar_day_set(calendar=billing_setup.calendar, day=date(2026, 6, 3), state="closed")
    day = CalendarDay.objects.get(calendar=billing_setup.calendar, day=date(2026, 6, 3))
    page = superuser_client.get(_url(CalendarDay, "history", day.pk)).content.decode()
    assert "Ouvert → Fermé" in page


def test_job_admin_shows_result_readably(superuser_client, billing_setup):
    job = Job.objects.create(kind="billing.generate", label="Génération", params={"period_id": 7},
                             result={"invoices": 12, "message": "Terminé"})
    page = superuser_client.get(_url(Job, "change", job.pk)).content.decode()
    assert "<dt>invoices</dt><dd>12</dd>" in page
    assert "{&quot;invoices&quot;" not in page and '{"invoices"' not in page


def test_import_run_admin_shows_json_readably(superuser_client, billing_setup):
    from imports.models import ImportRun

    run = ImportRun.objects.create(kind=ImportRun.Kind.values[0], status=ImportRun.Status.values[0],
                                   summary={"residents": 3}, files=[{"name": "residents.xlsx", "size": 1200}])
    page = superuser_client.get(_url(ImportRun, "change", run.pk)).content.decode()
    assert "<dt>residents</dt><dd>3</dd>" in page and "<dt>name</dt><dd>residents.xlsx</dd>" in page
    assert "{&quot;residents&quot;" not in page and '{"residents"' not in page
