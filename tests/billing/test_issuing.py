import threading
from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, connections

from billing.models import Invoice, InvoiceLine, NumberSequence
from billing.models.invoices import IssuedInvoiceError
from billing.services.generation import period_generate
from billing.services.issuing import credit_note_create, invoices_issue, period_issue

D = Decimal
APRIL = (date(2026, 4, 1), date(2026, 4, 30))


def _generated(setup, residents=3):
    stays = [setup.stay(gir=6) for _ in range(residents)]
    period = setup.period(*APRIL)
    period_generate(period=period)
    return period, stays


def test_issue_assigns_gapless_numbers_and_snapshots(billing_setup):
    establishment = billing_setup.establishment
    establishment.address, establishment.city = "1 rue Haute", "Lyon"
    establishment.save()
    period, stays = _generated(billing_setup)
    issued = period_issue(period=period, issue_date=date(2026, 5, 2))
    numbers = sorted(i.number for i in issued)
    assert numbers == ["EXA-2026-000001", "EXA-2026-000002", "EXA-2026-000003"]
    invoice = Invoice.objects.get(number="EXA-2026-000001")
    assert invoice.status == "issued" and invoice.issue_date == date(2026, 5, 2)
    assert invoice.due_date == date(2026, 5, 17)  # 15 days (section setting)
    assert invoice.establishment_snapshot["address"] == "1 rue Haute"
    assert invoice.debtor_name.endswith(invoice.resident.full_name)
    # Later edits of the establishment do not change the issued invoice.
    establishment.address = "2 rue Basse"
    establishment.save()
    invoice.refresh_from_db()
    assert invoice.establishment_snapshot["address"] == "1 rue Haute"
    # A second period continues the series.
    later = billing_setup.period(date(2026, 5, 1), date(2026, 5, 31))
    period_generate(period=later)
    assert sorted(i.number for i in period_issue(period=later, issue_date=date(2026, 6, 1)))[0] == "EXA-2026-000004"
    assert NumberSequence.objects.get(establishment=establishment, kind="invoice", year=2026).last_number == 6


def test_issue_twice_does_not_renumber(billing_setup):
    period, _ = _generated(billing_setup, residents=1)
    invoice = period_issue(period=period)[0]
    assert invoices_issue(invoice_ids=[invoice.pk]) == []
    invoice.refresh_from_db()
    assert invoice.number.endswith("000001")


def test_issued_invoice_is_immutable(billing_setup):
    period, _ = _generated(billing_setup, residents=1)
    invoice = period_issue(period=period)[0]
    invoice.total = D("1.00")
    with pytest.raises(IssuedInvoiceError, match="ne peut plus être modifiée"):
        invoice.save()
    invoice.refresh_from_db()
    with pytest.raises(IssuedInvoiceError):
        invoice.delete()
    with pytest.raises(IssuedInvoiceError):
        Invoice.objects.filter(pk=invoice.pk).delete()
    line = invoice.lines.first()
    line.amount = D("0.01")
    with pytest.raises(IssuedInvoiceError):
        line.save()
    with pytest.raises(IssuedInvoiceError):
        InvoiceLine.objects.filter(invoice=invoice).delete()
    # Delivery bookkeeping is still allowed.
    invoice.refresh_from_db()
    invoice.last_sent_at = invoice.created_at
    invoice.save()


def test_full_credit_note_cancels_the_invoice(billing_setup):
    period, _ = _generated(billing_setup, residents=1)
    invoice = period_issue(period=period, issue_date=date(2026, 5, 2))[0]
    credit = credit_note_create(invoice=invoice, reason="erreur", issue_date=date(2026, 5, 3))
    assert credit.number == "EXA-AV-2026-000001"
    assert credit.total == -invoice.total == D("-2130.00")
    assert credit.kind == "credit_note" and credit.credited_invoice == invoice
    invoice.refresh_from_db()
    assert invoice.status == "cancelled"
    with pytest.raises(ValidationError):
        credit_note_create(invoice=invoice)


def test_partial_credit_note_and_limits(billing_setup):
    period, _ = _generated(billing_setup, residents=1)
    invoice = period_issue(period=period)[0]
    heb = invoice.lines.get(product__code="HEB")
    credit = credit_note_create(invoice=invoice, lines={heb.pk: D("65.00")})
    assert credit.total == D("-65.00")
    invoice.refresh_from_db()
    assert invoice.status == "issued"
    with pytest.raises(ValidationError, match="Montant à créditer invalide"):
        credit_note_create(invoice=invoice, lines={heb.pk: D("99999.00")})
    assert Invoice.objects.filter(kind="credit_note").count() == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks are only meaningful on PostgreSQL")
def test_concurrent_issue_on_postgresql_has_no_gap_and_no_duplicate(billing_setup):
    period, _ = _generated(billing_setup, residents=40)
    ids = list(Invoice.objects.filter(period=period).values_list("pk", flat=True))
    chunks = [ids[i::4] for i in range(4)]
    errors = []
    barrier = threading.Barrier(4)

    def worker(chunk):
        try:
            barrier.wait()
            for pk in chunk:  # one transaction per invoice: maximum interleaving
                invoices_issue(invoice_ids=[pk], issue_date=date(2026, 5, 2))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(chunk,)) for chunk in chunks]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    numbers = sorted(Invoice.objects.filter(period=period).values_list("number", flat=True))
    assert numbers == [f"EXA-2026-{n:06d}" for n in range(1, 41)]


def _rename(stay, civility, last_name):
    stay.resident.civility, stay.resident.last_name = civility, last_name
    stay.resident.save()


def test_numbers_follow_the_debtor_name_accent_insensitive_not_the_civility(billing_setup):
    stays = [billing_setup.stay(gir=6) for _ in range(5)]
    for stay, (civility, name) in zip(stays, [("M", "Zola"), ("M", "Éclair"), ("MME", "Arnaud"), ("M", "Bernard"),
                                              ("MME", "Dupont")]):
        _rename(stay, civility, name)
    period = billing_setup.period(*APRIL)
    period_generate(period=period)
    issued = period_issue(period=period, issue_date=date(2026, 5, 2))
    by_number = [i.resident.last_name for i in sorted(issued, key=lambda i: i.number)]
    assert by_number == ["Arnaud", "Bernard", "Dupont", "Éclair", "Zola"]


def test_issue_dates_are_chronological_per_series(billing_setup):
    period, _ = _generated(billing_setup, residents=1)
    invoice = period_issue(period=period, issue_date=date(2026, 5, 10))[0]
    later = billing_setup.period(date(2026, 5, 1), date(2026, 5, 31))
    period_generate(period=later)
    with pytest.raises(ValidationError) as exc:
        period_issue(period=later, issue_date=date(2026, 5, 9))
    assert "09/05/2026" in exc.value.messages[0] and "10/05/2026" in exc.value.messages[0]
    assert NumberSequence.objects.get(kind="invoice", year=2026).last_number == 1  # nothing consumed
    assert later.invoices.filter(status="draft").count() == 1
    # The same day is fine; the credit-note series has its own chronology.
    assert period_issue(period=later, issue_date=date(2026, 5, 10))[0].number == "EXA-2026-000002"
    credit = credit_note_create(invoice=invoice, issue_date=date(2026, 5, 10))
    with pytest.raises(ValidationError, match="série des avoirs"):
        credit_note_create(invoice=Invoice.objects.get(number="EXA-2026-000002"), issue_date=date(2026, 5, 9))
    assert credit.number == "EXA-AV-2026-000001"


@pytest.mark.parametrize("delay,due,text", [(30, date(2026, 6, 1), "à payer au plus tard le 01/06/2026"),
                                            (0, date(2026, 5, 2), "au comptant, à payer à réception")])
def test_due_date_is_issue_date_plus_the_section_delay(billing_setup, delay, due, text):
    from billing.services import pdf as pdf_services
    from tests.billing.test_pdf import text_of

    billing_setup.section.payment_due_days = delay
    billing_setup.section.save()
    period, _ = _generated(billing_setup, residents=1)
    invoice = period_issue(period=period, issue_date=date(2026, 5, 2))[0]
    assert invoice.due_date == due
    rendered = text_of(pdf_services.invoice_render_pdf(pdf_services.invoices_for_render().get(pk=invoice.pk)))
    assert text in rendered


def test_reissued_pdf_uses_the_snapshot_not_the_live_names_and_addresses(billing_setup):
    """An issued invoice re-rendered after the resident's name and the relative's address changed
    comes out with the same text (billing-rules §6: issued invoices never change)."""
    from billing.services import pdf as pdf_services
    from residents.models import Relative
    from tests.billing.test_pdf import text_of

    stay = billing_setup.stay(gir=6)
    resident = stay.resident
    resident.address, resident.postal_code, resident.city = "7 place Bellecour", "69002", "Lyon"
    resident.save()
    relative = Relative.objects.create(resident=resident, civility="M", last_name="Martin", first_name="Paul",
                                       address="1 rue Neuve", postal_code="75001", city="Paris",
                                       receives_invoices=True)
    period = billing_setup.period(*APRIL)
    period_generate(period=period)
    invoice = period_issue(period=period, issue_date=date(2026, 5, 2))[0]

    def render():
        return text_of(pdf_services.invoice_render_pdf(pdf_services.invoices_for_render().get(pk=invoice.pk)))

    before = render()
    assert resident.last_name.upper() in before and "1 rue Neuve" in before
    resident.last_name, resident.first_name, resident.address = "Nouveaunom", "Louise", "9 quai Perrache"
    resident.save()
    relative.address, relative.city = "5 avenue Foch", "Marseille"
    relative.save()
    after = render()
    assert "NOUVEAUNOM" not in after and "5 avenue Foch" not in after
    assert after == before
