"""The period page, the journal and both exports give the same totals (credit notes included) and
say what they include; the comparison with the previous period waits for the first generation and
treats a cancelled invoice as cancelled."""
import io
from datetime import date
from decimal import Decimal

import openpyxl
import pytest
from django.urls import reverse

from billing.services.generation import period_generate
from billing.services.issuing import credit_note_create, period_issue
from billing.services.journal import journal_csv, journal_invoices, journal_xlsx
from billing.services.review import period_movements, period_summary
from tests.factories import SectionAccessFactory

D = Decimal
CAPTION = "Total des factures, factures de rappel et avoirs (en négatif) de la période"


@pytest.fixture(autouse=True)
def _fast(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.STORAGES = {**settings.STORAGES,
                         "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}


def _csv_total(content: bytes) -> Decimal:
    last = content.decode("utf-8-sig").split("\r\n")[-2].split(";")
    return D(last[-6].replace(",", "."))


def test_period_journal_and_exports_agree_with_credit_notes(billing_setup, client):
    for _ in range(3):
        billing_setup.stay(gir=6)
    period = billing_setup.period(date(2026, 4, 1), date(2026, 4, 30))
    period_generate(period=period)
    first, second, _third = period_issue(period=period, issue_date=date(2026, 5, 2))
    credit_note_create(invoice=first, issue_date=date(2026, 5, 3))  # cancels it
    heb = second.lines.get(product__code="HEB")
    credit_note_create(invoice=second, lines={heb.pk: D("65.00")}, issue_date=date(2026, 5, 3))
    expected = D("2130.00") * 3 - D("2130.00") - D("65.00")
    assert period_summary(period)["total"] == expected
    assert journal_invoices(period=period).totals["total"] == expected
    assert _csv_total(journal_csv(period)) == expected
    sheet = openpyxl.load_workbook(io.BytesIO(journal_xlsx(period))).active
    assert D(str(sheet.cell(row=sheet.max_row, column=11).value)) == expected
    assert CAPTION in sheet.cell(row=sheet.max_row, column=6).value
    access = SectionAccessFactory(section=billing_setup.section, role="reader")
    client.force_login(access.user)
    kwargs = {"alias": billing_setup.section.alias, "period_pk": period.pk}
    for name in ("billing:period-detail", "billing:journal"):
        html = client.get(reverse(name, kwargs=kwargs)).content.decode()
        assert f'data-total-amount="{expected}"' in html, name
        assert CAPTION in html.replace("&#x27;", "'"), name


def test_comparison_hidden_until_generation_and_cancelled_is_not_new(billing_setup, client):
    stays = [billing_setup.stay(gir=6) for _ in range(2)]
    march = billing_setup.period(date(2026, 3, 1), date(2026, 3, 31))
    period_generate(period=march)
    cancelled = [inv for inv in period_issue(period=march) if inv.resident_id == stays[0].resident_id][0]
    credit_note_create(invoice=cancelled)
    april = billing_setup.period(date(2026, 4, 1), date(2026, 4, 30))
    access = SectionAccessFactory(section=billing_setup.section, role="reader")
    client.force_login(access.user)
    url = reverse("billing:period-detail", kwargs={"alias": billing_setup.section.alias, "period_pk": april.pk})
    assert 'id="movements"' not in client.get(url).content.decode()
    period_generate(period=april)
    assert 'id="movements"' in client.get(url).content.decode()
    reasons = {m.resident.pk: m.reason for m in period_movements(april)}
    assert reasons[stays[0].resident_id] == "facture de la période précédente annulée par un avoir"
    assert "nouveau" not in reasons[stays[0].resident_id]


def test_journal_rows_carry_dates_mode_and_accounts(billing_setup):
    from billing.services.journal import journal_queryset, journal_rows

    stay = billing_setup.stay(gir=2)
    billing_setup.apa(stay, "CD01")
    billing_setup.products["DEP12"].__class__.objects.filter(code="DEP12").update(accounting_account="706120")
    billing_setup.payers["CD01"].__class__.objects.filter(code="CD01").update(accounting_account="4112CD01")
    period = billing_setup.period(date(2026, 4, 1), date(2026, 4, 30))
    period_generate(period=period)
    period_issue(period=period, issue_date=date(2026, 5, 2))
    rows = list(journal_rows(journal_queryset(period=period)))
    payer_rows = [r for r in rows if r.compte_tiers == "4112CD01"]
    assert payer_rows and all(r.produit == "DEP12" and r.compte_produit == "706120" for r in payer_rows)
    assert all(r.mode_reglement == "Virement" for r in payer_rows)
    assert all(r.date_emission == date(2026, 5, 2) and r.echeance == date(2026, 5, 17) for r in rows)
    csv_text = journal_csv(period).decode("utf-8-sig")
    assert ";02/05/2026;17/05/2026;Virement;706120;4112CD01" in csv_text
