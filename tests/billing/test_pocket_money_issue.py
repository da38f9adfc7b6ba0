"""Issuing the quarterly pocket-money settlement (billing-rules §8, net model): a credit note to the
resident on the quarter's contribution lines (latest first) and an invoice of the same amount to the
département, or the quarter confirmed at zero; idempotent (a re-run issues nothing twice); refused
before the quarter ends; left alone by the period's régularisations; the job in the browser (progress,
listing per payer), the daily beat that starts it, the command."""
import io
from datetime import date
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.exceptions import ValidationError
from django.urls import reverse

from billing.models import BillingPeriod, Invoice, NationalParameter, PocketMoneySettlement
from billing.services import pocket_money
from billing.services.generation import period_generate
from billing.services.issuing import period_issue
from billing.services.pocket_money import quarter_pocket_money, quarter_pocket_money_issue
from billing.services.regularisation import period_regularisations
from core.models import Job
from payers.models import SocialAidDecision
from structures.models import SectionAccess
from tests.factories import UserFactory

D = Decimal
AFTER = date(2026, 7, 10)


@pytest.fixture
def ash_quarter(billing_setup):
    NationalParameter.objects.update_or_create(kind="pocket_money_minimum", valid_from=date(2026, 1, 1),
                                               defaults={"amount": D("125.00")})
    stay = billing_setup.stay(gir=6)
    cd = billing_setup.payers["CD69"]
    decision = SocialAidDecision.objects.create(
        stay=stay, payer=cd, group=cd.groups.get(code="ASH"), valid_from=date(2026, 1, 1),
        monthly_resources=D("1200.00"), housing_allowance=D("150.00"), decision_reference="ASH-2026-12")
    for month, end, issued in [(4, 30, date(2026, 5, 1)), (5, 31, date(2026, 6, 1)), (6, 30, date(2026, 7, 1))]:
        period = billing_setup.period(date(2026, month, 1), date(2026, month, end), label=f"2026-{month:02d}")
        period_generate(period=period)
        period_issue(period=period, issue_date=issued)
    return decision


def test_a_shortfall_is_given_back_to_the_resident_and_billed_to_the_departement(billing_setup, ash_quarter):
    # resources declared lower afterwards: 1 000 a month; 3 × 1 075 taken apart from the housing allowance
    SocialAidDecision.objects.filter(pk=ash_quarter.pk).update(monthly_resources=D("1000.00"))
    before = Invoice.objects.count()
    june_period = BillingPeriod.objects.get(start=date(2026, 6, 1))
    differences = [(r.key, r.issued, r.due) for r in period_regularisations(period=june_period)]
    result = quarter_pocket_money_issue(section=billing_setup.section, quarter="2026-Q2", today=AFTER,
                                        issue_date=date(2026, 7, 10))
    assert (result["issued"], result["zero"], result["already"], result["total"]) == (1, 0, 0, "600.00")
    settlement = PocketMoneySettlement.objects.get()
    assert (settlement.quarter, settlement.refund, settlement.payer.code) == ("2026-T2", D("600.00"), "CD69")
    credit, = settlement.credit_notes.all()
    june = Invoice.objects.get(kind="invoice", debtor_kind="resident", date_from=date(2026, 6, 1))
    assert credit.kind == "credit_note" and credit.credited_invoice == june and credit.total == D("-600.00")
    assert credit.lines.get().reason == "pocket_money" and "2026-T2" in credit.comment
    june.refresh_from_db()
    assert june.balance == june.total - D("600.00")  # the credit note is allocated to the invoice it corrects
    invoice = settlement.payer_invoice
    assert (invoice.debtor_kind, invoice.payer.code, invoice.payer_group.code, invoice.total, invoice.status) == (
        "payer", "CD69", "ASH", D("600.00"), "issued")
    assert invoice.number and invoice.lines.get().reason == "pocket_money"
    assert Invoice.objects.count() == before + 2
    # nothing is owed any more; re-running the quarter issues nothing twice
    assert quarter_pocket_money(section=billing_setup.section, quarter="2026-T2")[0].refund == D("0.00")
    again = quarter_pocket_money_issue(section=billing_setup.section, quarter="2026-T2", today=AFTER)
    assert (again["issued"], again["already"]) == (0, 1) and Invoice.objects.count() == before + 2
    # the month's régularisations (here: the resources changed) ignore the settlement: they would not undo it
    assert [(r.key, r.issued, r.due) for r in period_regularisations(period=june_period)] == differences


def test_nothing_owed_is_confirmed_at_zero_once(billing_setup, ash_quarter):
    before = Invoice.objects.count()
    result = quarter_pocket_money_issue(section=billing_setup.section, quarter="2026-T2", today=AFTER)
    assert (result["issued"], result["zero"]) == (0, 1)
    settlement = PocketMoneySettlement.objects.get()
    assert settlement.refund == D("0.00") and settlement.payer_invoice is None and not settlement.credit_notes.exists()
    assert Invoice.objects.count() == before
    assert quarter_pocket_money_issue(section=billing_setup.section, quarter="2026-T2", today=AFTER)["already"] == 1
    assert PocketMoneySettlement.objects.count() == 1


def test_a_quarter_not_over_is_refused_in_french(billing_setup, ash_quarter):
    with pytest.raises(ValidationError, match="Le trimestre 2026-T2 n'est pas terminé \\(il finit le 30/06/2026\\)"):
        quarter_pocket_money_issue(section=billing_setup.section, quarter="2026-T2", today=date(2026, 6, 30))
    assert not PocketMoneySettlement.objects.exists()


def test_the_command_issues_and_lists(billing_setup, ash_quarter, monkeypatch):
    SocialAidDecision.objects.filter(pk=ash_quarter.pk).update(monthly_resources=D("1000.00"))
    out = io.StringIO()
    call_command("pocket_money_quarter", section="EXA-HP", quarter="2026-T2", issue=True, issue_date="2026-07-10",
                 stdout=out)
    assert "CD69" in out.getvalue() and "1 régularisation(s) émise(s) (600,00" in out.getvalue()
    out = io.StringIO()
    call_command("pocket_money_quarter", section="EXA-HP", quarter="2026-T2", issue=True, stdout=out)
    assert "déjà traitée" in out.getvalue()


def test_the_beat_starts_the_previous_quarter_once_its_months_are_issued(billing_setup, ash_quarter, monkeypatch):
    started = []
    monkeypatch.setattr(pocket_money, "pocket_money_job_start",
                        lambda section, quarter, **kw: started.append((section.alias, quarter)) or Job.objects.create(
                            kind=pocket_money.JOB_KIND, label="x", section=section, params={"quarter": quarter}))
    assert pocket_money.previous_quarter(date(2026, 1, 5)) == "2025-T4"
    june = BillingPeriod.objects.get(start=date(2026, 6, 1))
    draft = Invoice.objects.create(period=june, section=billing_setup.section, establishment=billing_setup.establishment,
                                   debtor_kind="resident", resident=ash_quarter.stay.resident,
                                   date_from=june.start, date_to=june.end)
    assert pocket_money.pocket_money_prepare(today=date(2026, 7, 10)) == []  # a draft left in June: not yet
    draft.delete()
    assert pocket_money.pocket_money_prepare(today=date(2026, 7, 10)) and started == [("EXA-HP", "2026-T2")]
    assert pocket_money.pocket_money_prepare(today=date(2026, 7, 11)) == []  # once per section and quarter
    assert pocket_money.pocket_money_prepare(today=date(2026, 4, 10)) == []  # Q1 was never billed here
    from config.settings import CELERY_BEAT_SCHEDULE

    assert CELERY_BEAT_SCHEDULE["billing-pocket-money"]["task"] == "billing.tasks.pocket_money_prepare"


def test_the_job_in_the_browser(client, billing_setup, ash_quarter, eager_celery, django_capture_on_commit_callbacks,
                                monkeypatch):
    SocialAidDecision.objects.filter(pk=ash_quarter.pk).update(monthly_resources=D("1000.00"))
    monkeypatch.setattr(pocket_money.timezone, "localdate", lambda: AFTER)
    reader, clerk = UserFactory(username="reader"), UserFactory(username="clerk")
    SectionAccess.objects.create(user=reader, section=billing_setup.section, role="reader")
    SectionAccess.objects.create(user=clerk, section=billing_setup.section, role="clerk")
    url = reverse("billing:pocket-money", kwargs={"alias": "EXA-HP"})
    client.force_login(reader)
    page = client.get(url, {"trimestre": "2026-T2"}).content.decode()
    assert 'data-payer="CD69"' in page and "à émettre" in page and "600,00" in page
    assert client.post(url, {"trimestre": "2026-T2", "action": "issue"}).status_code == 403
    assert "Trimestre invalide" in client.get(url, {"trimestre": "2026-T7"}).content.decode()
    client.force_login(clerk)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"trimestre": "2026-T2", "action": "issue"})
    assert response.status_code == 302
    job = Job.objects.get(kind="billing.pocket_money")
    assert job.status == "succeeded", job.error
    assert "1 régularisation(s) émise(s)" in job.result["message"]
    # the PDFs of the credit note and of the département's invoice are rendered like any issue
    assert Job.objects.get(kind="billing.render_pdfs").status == "succeeded"
    assert all(i.pdf for i in Invoice.objects.filter(pk__in=job.result["invoice_ids"]))
    page = client.get(url, {"trimestre": "2026-T2"}).content.decode()
    settlement = PocketMoneySettlement.objects.get()
    numbers = {settlement.payer_invoice.number, *settlement.credit_notes.values_list("number", flat=True)}
    assert "émise" in page and all(number in page for number in numbers)


def test_reversal_statement_pdf_and_xlsx(client, billing_setup, ash_quarter):
    from openpyxl import load_workbook
    from pypdf import PdfReader

    from billing.services.reversal import reversal_compute

    cd69 = billing_setup.payers["CD69"]
    reversal = reversal_compute(section=billing_setup.section, payer=cd69, start=date(2026, 4, 1),
                                end=date(2026, 6, 30))
    row, = reversal.rows
    # 3 × 1 200 resources, 3 × 150 housing allowance, 3 × 1 225 billed; 90 % + AL due; 10 % … the minimum kept
    assert (row.months, row.resources, row.housing_allowance, row.contributions, row.due, row.pocket_money) == (
        3, D("3600.00"), D("450.00"), D("3675.00"), D("3690.00"), D("375.00"))
    assert reversal_compute(section=billing_setup.section, payer=billing_setup.payers["CD01"],
                            start=date(2026, 4, 1), end=date(2026, 6, 30)).rows == []
    manager = UserFactory(username="manager")
    SectionAccess.objects.create(user=manager, section=billing_setup.section, role="manager")
    client.force_login(manager)
    url = reverse("billing:pocket-money", kwargs={"alias": "EXA-HP"})
    query = {"payeur": cd69.pk, "du": "2026-04-01", "au": "2026-06-30"}
    pdf = client.get(url, {**query, "reversement": "pdf"})
    assert pdf["Content-Type"] == "application/pdf"
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "État de reversement" in text and "ASH-2026-12" in text and "3 690,00" in text.replace("\u202f", " ")
    xlsx = client.get(url, {**query, "reversement": "xlsx"})
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("BENEFICIAIRE", "DECISION", "MOIS") and rows[1][1] == "ASH-2026-12"
    assert D(str(rows[1][6])) == D("3690.00") and rows[-1][0] == "Total"
    bad = client.get(url, {**query, "au": "2026-03-01", "reversement": "pdf"})
    assert bad["Content-Type"].startswith("text/html")
    assert "La date de fin (01/03/2026) est avant la date de début (01/04/2026)" in bad.content.decode()
