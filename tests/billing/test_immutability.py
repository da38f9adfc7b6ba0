"""Issued invoices and what they used are frozen: status only through services, no number or
"issued" by hand, tariffs / calendar days / parameters used by issued invoices only superseded."""
from datetime import date
from decimal import Decimal

import pytest
from auditlog.models import LogEntry
from django.core.exceptions import ValidationError

from billing.models import CalendarDay, DepartementParameter, Invoice, InvoiceLine, NationalParameter, Tariff
from billing.models.frozen import FrozenRowError
from billing.models.invoices import IssuedInvoiceError
from billing.services.calendars import calendar_day_set, calendar_generate
from billing.services.catalog import tariff_add
from billing.services.generation import period_generate
from billing.services.issuing import credit_note_create, invoices_issue, period_issue

D = Decimal
APRIL = (date(2026, 4, 1), date(2026, 4, 30))


def _issued(setup):
    setup.stay(gir=6)
    period = setup.period(*APRIL)
    period_generate(period=period)
    return period_issue(period=period, issue_date=date(2026, 5, 2))[0]


def test_invoice_cannot_be_created_issued_or_numbered(billing_setup):
    kwargs = dict(section=billing_setup.section, establishment=billing_setup.establishment, debtor_kind="resident",
                  date_from=APRIL[0], date_to=APRIL[1], total=D("999.99"))
    with pytest.raises(IssuedInvoiceError, match="se crée en brouillon"):
        Invoice(status="issued", number="EXA-2026-999999", **kwargs).save()
    with pytest.raises(IssuedInvoiceError, match="se crée en brouillon"):
        Invoice(number="EXA-2026-999999", **kwargs).save()
    draft = Invoice.objects.create(**kwargs)
    draft.status = "issued"
    with pytest.raises(IssuedInvoiceError, match="Émettre"):
        draft.save()
    draft.refresh_from_db()
    draft.number = "EXA-2026-999999"
    with pytest.raises(IssuedInvoiceError, match="attribué par l'émission"):
        draft.save()
    with pytest.raises(IssuedInvoiceError):
        Invoice.objects.filter(pk=draft.pk).update(number="EXA-2026-999999")
    with pytest.raises(IssuedInvoiceError):
        Invoice.objects.filter(pk=draft.pk).update(status="issued")
    # Issuing refuses a draft whose total is not the sum of its lines (no lines here).
    with pytest.raises(ValidationError, match="n'est pas la somme de ses lignes"):
        invoices_issue(invoice_ids=[draft.pk])
    assert not Invoice.objects.exclude(status="draft").exists()


def test_status_transitions_only_through_services(billing_setup):
    invoice = _issued(billing_setup)
    for status in ("draft", "cancelled"):
        invoice.status = status
        with pytest.raises(IssuedInvoiceError):
            invoice.save()
        invoice.refresh_from_db()
        with pytest.raises(IssuedInvoiceError):
            Invoice.objects.filter(pk=invoice.pk).update(status=status)
    with pytest.raises(IssuedInvoiceError):
        Invoice.objects.filter(pk=invoice.pk).update(total=D("1.00"))
    heb = invoice.lines.get(product__code="HEB")
    credit_note_create(invoice=invoice, lines={heb.pk: D("65.00")})
    invoice.refresh_from_db()
    invoice.status = "cancelled"  # partly credited: not cancellable
    with pytest.raises(IssuedInvoiceError, match="avoir de la totalité"):
        invoice.save()
    invoice.refresh_from_db()
    credit_note_create(invoice=invoice, lines={ln.pk: ln.amount - (D("65.00") if ln.pk == heb.pk else 0)
                                               for ln in invoice.lines.all()})
    invoice.refresh_from_db()
    assert invoice.status == "cancelled"
    invoice.status = "issued"
    with pytest.raises(IssuedInvoiceError):
        invoice.save()


def test_invoice_state_changes_are_in_the_audit_log(billing_setup):
    invoice = _issued(billing_setup)
    entry = LogEntry.objects.get_for_object(invoice).get()
    assert entry.changes_dict["status"] == ["draft", "issued"]
    assert entry.changes_dict["number"] == ["", invoice.number]
    credit_note_create(invoice=invoice)
    statuses = [e.changes_dict["status"] for e in LogEntry.objects.get_for_object(invoice).order_by("pk")]
    assert statuses == [["draft", "issued"], ["issued", "cancelled"]]
    assert LogEntry.objects.get_for_model(CalendarDay.__mro__[0]).count() == 0  # bulk generation is not logged
    sequence_logs = LogEntry.objects.filter(content_type__model="numbersequence")
    assert sequence_logs.exists()


def test_used_tariff_is_frozen_but_can_be_superseded(billing_setup):
    _issued(billing_setup)
    heb = billing_setup.products["HEB"]
    tariff = heb.tariffs.get()
    tariff.price = D("70.00")
    with pytest.raises(FrozenRowError, match="utilisé par des factures émises"):
        tariff.save()
    with pytest.raises(FrozenRowError):
        Tariff.objects.get(pk=tariff.pk).delete()
    with pytest.raises(FrozenRowError):
        Tariff.objects.filter(pk=tariff.pk).delete()
    with pytest.raises(FrozenRowError):
        Tariff.objects.filter(pk=tariff.pk).update(price=D("70.00"))
    assert Tariff.objects.get(pk=tariff.pk).price == D("65.00")
    tariff.refresh_from_db()
    tariff.act_reference = "Arrêté 2025-12"  # documentation only: allowed
    tariff.save()
    # Superseding by a new dated row is the way; that row is free until used.
    new = tariff_add(product=heb, valid_from=date(2026, 6, 1), price=D("70.00"))
    new.price = D("71.00")
    new.save()
    new.delete()
    # A tariff not used by any issued invoice is still editable.
    dep = billing_setup.products["DEP12"].tariffs.get()
    dep.price = D("23.00")
    dep.save()


def test_used_calendar_days_and_parameters_are_frozen(billing_setup):
    _issued(billing_setup)
    calendar = billing_setup.calendar
    with pytest.raises(FrozenRowError, match="15/04/2026"):
        calendar_day_set(calendar=calendar, day=date(2026, 4, 15), state="closed")
    with pytest.raises(FrozenRowError):
        CalendarDay.objects.filter(calendar=calendar, day=date(2026, 4, 15)).delete()
    assert CalendarDay.objects.get(calendar=calendar, day=date(2026, 4, 15)).state == "open"
    calendar_day_set(calendar=calendar, day=date(2026, 5, 15), state="closed")  # not billed yet
    # Regenerating the year with overwrite keeps the billed days.
    calendar_generate(calendar=calendar, years=[2026], overwrite=True)
    national = NationalParameter.objects.get(kind="hospital_daily_charge", valid_from=date(2026, 3, 1))
    national.amount = D("25.00")
    with pytest.raises(FrozenRowError):
        national.save()
    old_national = NationalParameter.objects.get(kind="hospital_daily_charge", valid_from=date(2018, 1, 1))
    old_national.amount = D("21.00")  # ends on 28/02/2026, before any issued invoice
    old_national.save()
    departement = DepartementParameter.objects.get(departement="69")
    departement.death_max_days = 10
    with pytest.raises(FrozenRowError):
        departement.save()
    with pytest.raises(FrozenRowError):
        DepartementParameter.objects.filter(pk=departement.pk).delete()


def test_issued_invoice_lines_stay_frozen(billing_setup):
    invoice = _issued(billing_setup)
    with pytest.raises(IssuedInvoiceError):
        InvoiceLine.objects.filter(invoice=invoice).delete()


def test_calendar_page_refuses_to_change_a_billed_day(billing_setup, client):
    from django.urls import reverse

    from tests.factories import SectionAccessFactory

    _issued(billing_setup)
    access = SectionAccessFactory(section=billing_setup.section, role="clerk")
    client.force_login(access.user)
    url = reverse("billing:calendar-detail", kwargs={"alias": billing_setup.section.alias,
                                                     "pk": billing_setup.calendar.pk})
    response = client.post(url, {"day": "2026-04-15", "state": "closed"}, follow=True)
    assert response.status_code == 200
    assert "couvert par des factures émises" in response.content.decode()
    assert CalendarDay.objects.get(calendar=billing_setup.calendar, day=date(2026, 4, 15)).state == "open"
