"""Rappel de tarifs (billing-rules.md §7). Amounts computed by hand:

January 2026 issued at 65.00 for A (present all month) and B (hospital absence 10–20 January:
days 10–12 full, days 13–20 reduced by the FJH 20.00 → 45.00). Then a tariff row 2026-01-01 at
67.00 (retroactive for January):
  A: 31 × (67 − 65) = 62.00
  B: 12 × 2.00 (1–12) + 8 × (47 − 45) (13–20) + 11 × 2.00 (21–31) = 24.00 + 16.00 + 22.00 = 62.00
"""
from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from billing.models import Invoice, InvoiceLine, Tariff
from billing.services.catalog import tariff_add
from billing.services.generation import period_generate
from billing.services.issuing import credit_note_create, invoices_issue, period_issue
from billing.services.rappel import (catchup_days, catchup_tariff, rappel_detect, rappel_generate,
                                     rappel_preview)
from payers.models import CoverageRule
from structures.models import SectionAccess
from tests.factories import SectionAccessFactory, SectionFactory, UserFactory

D = Decimal
JAN = (date(2026, 1, 1), date(2026, 1, 31))
NB = "\u00a0"


@pytest.fixture
def january(billing_setup):
    """Two residents invoiced and issued for January 2026 at 65.00."""
    s = billing_setup
    a = s.stay(gir=6)
    a.resident.last_name, a.resident.first_name = "Arnaud", "Alice"
    a.resident.save()
    b = s.stay(gir=6)
    b.resident.last_name, b.resident.first_name = "Bernard", "Bruno"
    b.resident.save()
    s.absence(b, "H", date(2026, 1, 10), date(2026, 1, 20))
    period = s.period(*JAN, label="Janvier 2026")
    period_generate(period=period)
    issued = period_issue(period=period, issue_date=date(2026, 2, 1))
    s.a, s.b, s.jan = a, b, period
    s.heb = s.products["HEB"]
    s.jan_numbers = sorted(i.number for i in issued)
    return s


def _lines(row):
    return [(ln.date_from.day, ln.date_to.day, ln.quantity, ln.old, ln.new, ln.amount) for ln in row.lines]


def test_january_was_billed_at_65_with_reduced_absence_days(january):
    b_invoice = Invoice.objects.get(period=january.jan, resident=january.b.resident)
    heb = sorted((ln.date_from.day, ln.date_to.day, ln.unit_price) for ln in b_invoice.lines.filter(
        product=january.heb))
    assert heb == [(1, 12, D("65.00")), (13, 20, D("45.00")), (21, 31, D("65.00"))]
    assert january.jan_numbers == ["EXA-2026-000001", "EXA-2026-000002"]


def test_nothing_to_detect_before_the_tariff_change(january):
    detection = rappel_detect(section=january.section, product=january.heb)
    assert not detection.found and detection.changes == []


def test_detect_old_and_new_prices_days_and_periods(january):
    tariff_add(product=january.heb, valid_from=date(2026, 1, 1), price=D("67.00"))
    detection = rappel_detect(section=january.section, product=january.heb)
    changes = [(c.old, c.new, c.days, c.date_from, c.date_to, [p.label for p in c.periods])
               for c in detection.changes]
    assert changes == [
        (D("65.00"), D("67.00"), D("54"), date(2026, 1, 1), date(2026, 1, 31), ["Janvier 2026"]),  # 31 + 12 + 11
        (D("45.00"), D("47.00"), D("8"), date(2026, 1, 13), date(2026, 1, 20), ["Janvier 2026"]),
    ]
    assert [p.label for p in detection.periods] == ["Janvier 2026"]
    assert [row["tariff"].price for row in detection.history] == [D("67.00"), D("65.00")]
    assert detection.habilitated_warning == ""
    # the dependency product is untouched
    assert not rappel_detect(section=january.section, product=january.products["DEP56"]).found


def test_preview_per_resident_with_hand_computed_amounts(january):
    tariff_add(product=january.heb, valid_from=date(2026, 1, 1), price=D("67.00"))
    preview = rappel_preview(section=january.section, product=january.heb, include_payants=True,
                             include_social_aid=True)
    assert [r.key[1] for r in preview.rows] == [january.a.resident_id, january.b.resident_id]
    a = next(r for r in preview.rows if r.key[1] == january.a.resident_id)
    b = next(r for r in preview.rows if r.key[1] == january.b.resident_id)
    assert _lines(a) == [(1, 31, D("31"), D("65.00"), D("67.00"), D("62.00"))]
    assert _lines(b) == [(1, 12, D("12"), D("65.00"), D("67.00"), D("24.00")),
                         (13, 20, D("8"), D("45.00"), D("47.00"), D("16.00")),
                         (21, 31, D("11"), D("65.00"), D("67.00"), D("22.00"))]
    assert (a.total, b.total, preview.total) == (D("62.00"), D("62.00"), D("124.00"))
    # aide sociale only: nobody here has a payer
    assert rappel_preview(section=january.section, product=january.heb, include_payants=False,
                          include_social_aid=True).rows == []


def test_generate_drafts_labels_issue_numbers_and_nothing_left(january):
    tariff_add(product=january.heb, valid_from=date(2026, 1, 1), price=D("67.00"))
    first = rappel_generate(section=january.section, product=january.heb, include_payants=True,
                            include_social_aid=True, user=None)
    assert len(first["invoices"]) == 2 and first["total"] == D("124.00")
    # re-running replaces the drafts
    result = rappel_generate(section=january.section, product=january.heb, include_payants=True,
                             include_social_aid=True, user=None)
    assert result["replaced_drafts"] == 2
    rappels = Invoice.objects.filter(kind=Invoice.Kind.RAPPEL).order_by("pk")
    assert rappels.count() == 2 and not Invoice.objects.filter(pk__in=[i.pk for i in first["invoices"]]).exists()
    b_inv = rappels.get(resident=january.b.resident)
    assert (b_inv.status, b_inv.debtor_kind, b_inv.total, b_inv.period, b_inv.date_from, b_inv.date_to) == (
        "draft", "resident", D("62.00"), january.jan, date(2026, 1, 1), date(2026, 1, 31))
    lines = list(b_inv.lines.order_by("position"))
    assert [ln.label for ln in lines] == [
        f"Rappel Hébergement du 01/01/2026 au 12/01/2026 : 67,00{NB}€ au lieu de 65,00{NB}€",
        f"Rappel Hébergement – absence hospitalisation (à partir du 4e jour) du 13/01/2026 au 20/01/2026 : "
        f"47,00{NB}€ au lieu de 45,00{NB}€",
        f"Rappel Hébergement du 21/01/2026 au 31/01/2026 : 67,00{NB}€ au lieu de 65,00{NB}€",
    ]
    assert [(ln.reason, ln.quantity, ln.unit_price, ln.previous_unit_price, ln.amount) for ln in lines] == [
        ("rappel", D("12"), D("2.00"), D("65.00"), D("24.00")),
        ("rappel", D("8"), D("2.00"), D("45.00"), D("16.00")),
        ("rappel", D("11"), D("2.00"), D("65.00"), D("22.00")),
    ]
    assert rappels.get(resident=january.a.resident).total == D("62.00")

    issued = invoices_issue(invoice_ids=[i.pk for i in rappels], issue_date=date(2026, 3, 2))
    assert sorted(i.number for i in issued) == ["EXA-2026-000003", "EXA-2026-000004"]  # the invoice series
    # detection after issue finds nothing; a new run creates nothing and never touches issued rappels
    assert not rappel_detect(section=january.section, product=january.heb).found
    again = rappel_generate(section=january.section, product=january.heb, include_payants=True,
                            include_social_aid=True, user=None)
    assert again["invoices"] == [] and again["replaced_drafts"] == 0
    assert Invoice.objects.filter(kind="rappel", status="issued").count() == 2

    # a second increase from 15 January is computed on top of the rappel already issued
    tariff_add(product=january.heb, valid_from=date(2026, 1, 15), price=D("68.00"))
    preview = rappel_preview(section=january.section, product=january.heb, include_payants=True,
                             include_social_aid=True)
    b = next(r for r in preview.rows if r.key[1] == january.b.resident_id)
    assert _lines(b) == [(15, 20, D("6"), D("47.00"), D("48.00"), D("6.00")),
                         (21, 31, D("11"), D("67.00"), D("68.00"), D("11.00"))]


def test_cancelled_invoice_is_not_rappelled(january):
    tariff_add(product=january.heb, valid_from=date(2026, 1, 1), price=D("67.00"))
    a_invoice = Invoice.objects.get(period=january.jan, resident=january.a.resident)
    credit_note_create(invoice=a_invoice, reason="erreur", issue_date=date(2026, 2, 5))
    preview = rappel_preview(section=january.section, product=january.heb, include_payants=True,
                             include_social_aid=True)
    assert [r.key[1] for r in preview.rows] == [january.b.resident_id]


def test_payants_and_social_aid_filters(january):
    s = january
    c = s.stay(gir=6)
    cd = s.payers["CD69"]
    CoverageRule.objects.create(stay=c, payer=cd, group=cd.groups.get(code="ASH"), scope="accommodation",
                                mode="percent", value=D("50"), valid_from=date(2026, 1, 1))
    c_period_invoices = Invoice.objects.filter(period=s.jan)
    # C arrives in the already issued period: regenerate drafts for C only, then issue them
    period_generate(period=s.jan)
    ids = list(c_period_invoices.filter(status="draft").values_list("pk", flat=True))
    assert len(ids) == 2  # C resident + CD69 ASH
    invoices_issue(invoice_ids=ids, issue_date=date(2026, 2, 1))
    tariff_add(product=s.heb, valid_from=date(2026, 1, 1), price=D("67.00"))

    social = rappel_preview(section=s.section, product=s.heb, include_payants=False, include_social_aid=True)
    assert [r.debtor_label for r in social.rows] == ["Département 69 — Aide sociale hébergement"]
    payer_row = social.rows[0]
    # 50 % of 65.00 = 32.50 invoiced, 50 % of 67.00 = 33.50 now → 31 × 1.00
    assert _lines(payer_row) == [(1, 31, D("31"), D("32.50"), D("33.50"), D("31.00"))]
    assert payer_row.lines[0].label.startswith(f"{c.resident.full_name} — Rappel Hébergement du 01/01/2026")

    payants = rappel_preview(section=s.section, product=s.heb, include_payants=True, include_social_aid=False)
    assert sorted(r.total for r in payants.rows) == [D("31.00"), D("62.00"), D("62.00")]
    assert all(not r.is_payer for r in payants.rows)

    result = rappel_generate(section=s.section, product=s.heb, include_payants=False, include_social_aid=True,
                             user=None)
    (invoice,) = result["invoices"]
    assert (invoice.debtor_kind, invoice.payer, invoice.payer_group.code, invoice.total, invoice.resident) == (
        "payer", cd, "ASH", D("31.00"), None)
    assert invoice.lines.get().resident == c.resident
    with pytest.raises(ValidationError):
        rappel_generate(section=s.section, product=s.heb, include_payants=False, include_social_aid=False, user=None)


def test_lowered_tariff_is_refused_when_the_total_is_negative(january):
    tariff_add(product=january.heb, valid_from=date(2026, 1, 1), price=D("60.00"))
    preview = rappel_preview(section=january.section, product=january.heb, include_payants=True,
                             include_social_aid=True)
    assert sorted(r.total for r in preview.rows) == [D("-155.00"), D("-155.00")]  # 31 × −5.00
    result = rappel_generate(section=january.section, product=january.heb, include_payants=True,
                             include_social_aid=True, user=None)
    assert result["invoices"] == [] and len(result["refused"]) == 2
    assert not Invoice.objects.filter(kind="rappel").exists()


def test_catchup_tariff_formula():
    assert catchup_days(date(2026, 5, 1)) == (120, 245)
    assert catchup_tariff(old=D("65.00"), new=D("67.00"), effect_date=date(2026, 5, 1)) == D("67.98")
    assert catchup_tariff(old=D("65.00"), new=D("67.00"), effect_date=date(2026, 1, 1)) == D("67.00")
    assert catchup_days(date(2024, 12, 31)) == (365, 1)  # leap year, effect day counted as remaining


def test_habilitated_section_warns(january):
    january.section.social_aid_habilitated = True
    january.section.save()
    tariff_add(product=january.heb, valid_from=date(2026, 1, 1), price=D("67.00"))
    detection = rappel_detect(section=january.section, product=january.heb)
    assert "R314-35" in detection.habilitated_warning
    assert rappel_detect(section=january.section, product=january.products["DEP56"]).habilitated_warning == ""


# ---------------------------------------------------------------------------------------------- views

def _client_for(client, section, role):
    user = UserFactory()
    SectionAccessFactory(user=user, section=section, role=role)
    client.force_login(user)
    return client


def _urls(section):
    alias = section.alias
    return {name: reverse(f"billing:{name}", kwargs={"alias": alias})
            for name in ("rappel", "rappel-generate", "rappel-invoices", "rappel-issue", "rappel-catchup")}


def test_views_preview_generate_list_and_issue(client, january):
    tariff_add(product=january.heb, valid_from=date(2026, 1, 1), price=D("67.00"))
    urls = _urls(january.section)
    clerk = _client_for(client, january.section, SectionAccess.Role.CLERK)
    page = clerk.get(urls["rappel"]).content.decode()
    assert "Prévisualiser" in page and "HEB" in page
    page = clerk.get(urls["rappel"], {"product": january.heb.pk}).content.decode()
    assert "67,00" in page and "Janvier 2026" in page and 'id="preview-lines"' not in page
    page = clerk.get(urls["rappel"], {"product": january.heb.pk, "apercu": 1, "payants": "on",
                                      "aide_sociale": "on"}).content.decode()
    assert 'id="preview-lines"' in page and f"124,00{NB}€" in page and "Générer les factures de rappel" in page
    response = clerk.post(urls["rappel-generate"], {"product": january.heb.pk, "payants": "on"})
    assert response.status_code == 302 and response.url.startswith(urls["rappel-invoices"] + "?ids=")
    drafts = list(Invoice.objects.filter(kind="rappel", status="draft"))
    assert len(drafts) == 2
    listing = clerk.get(response.url).content.decode()
    for inv in drafts:
        assert reverse("billing:invoice-detail", kwargs={"alias": january.section.alias, "pk": inv.pk}) in listing
    assert "Émettre" in listing
    response = clerk.post(urls["rappel-issue"], {"invoice": [i.pk for i in drafts], "issue_date": "2026-03-02"})
    assert response.status_code == 302
    assert sorted(Invoice.objects.filter(kind="rappel").values_list("number", flat=True)) == [
        "EXA-2026-000003", "EXA-2026-000004"]
    page = clerk.get(urls["rappel"], {"product": january.heb.pk}).content.decode()
    assert 'id="nothing"' in page


def test_views_permissions_reader_403_and_other_section_404(client, january):
    tariff_add(product=january.heb, valid_from=date(2026, 1, 1), price=D("67.00"))
    urls = _urls(january.section)
    reader = _client_for(client, january.section, SectionAccess.Role.READER)
    page = reader.get(urls["rappel"], {"product": january.heb.pk, "apercu": 1, "payants": "on"}).content.decode()
    assert 'id="preview-lines"' in page and 'id="generate"' not in page
    assert reader.post(urls["rappel-generate"], {"product": january.heb.pk, "payants": "on"}).status_code == 403
    assert reader.get(urls["rappel-generate"]).status_code == 403
    assert reader.post(urls["rappel-issue"], {"issue_date": "2026-03-02"}).status_code == 403
    assert not Invoice.objects.filter(kind="rappel").exists()
    other = SectionFactory(establishment=january.establishment, alias="EXA-HT")
    assert reader.get(_urls(other)["rappel"]).status_code == 404
    assert reader.post(_urls(other)["rappel-generate"], {"product": january.heb.pk}).status_code == 404
    # a clerk may not create the catch-up tariff
    client.logout()
    clerk = _client_for(client, january.section, SectionAccess.Role.CLERK)
    assert clerk.post(urls["rappel-catchup"], {"product": january.heb.pk, "old": "65.00", "new": "67.00",
                                               "effect_date": "2026-05-01"}).status_code == 403


def test_views_habilitated_warning_and_catchup_button(client, january):
    january.section.social_aid_habilitated = True
    january.section.save()
    tariff_add(product=january.heb, valid_from=date(2026, 1, 1), price=D("67.00"))
    urls = _urls(january.section)
    manager = _client_for(client, january.section, SectionAccess.Role.MANAGER)
    page = manager.get(urls["rappel"], {"product": january.heb.pk}).content.decode()
    assert 'id="habilitated-warning"' in page and "R314-35" in page
    # suggestion from the tariff rows (65.00 → 67.00) from the day after the last issued day (1 February)
    assert "31 jours écoulés / 334 jours restants" in page and "Créer le tarif de rattrapage" in page
    data = {"product": january.heb.pk, "old": "65.00", "new": "67.00", "effect_date": "2026-05-01",
            "act_reference": "Arrêté 2026-123"}
    response = manager.post(urls["rappel-catchup"], data)
    assert response.status_code == 302
    tariff = Tariff.objects.get(product=january.heb, valid_from=date(2026, 5, 1))
    assert tariff.price == D("67.98") and tariff.act_reference.startswith("Arrêté 2026-123")
    response = manager.post(urls["rappel-catchup"], data, follow=True)
    assert "Un tarif commence déjà le 01/05/2026" in response.content.decode()
    assert Tariff.objects.filter(product=january.heb, valid_from=date(2026, 5, 1)).count() == 1
    # a reader sees the warning but not the button
    client.logout()
    reader = _client_for(client, january.section, SectionAccess.Role.READER)
    page = reader.get(urls["rappel"], {"product": january.heb.pk}).content.decode()
    assert 'id="habilitated-warning"' in page and "catchup-button" not in page


def test_rappel_lines_are_kept_for_issued_rappels(january):
    """Issued rappels are never deleted by a new generation (guarded by the model too)."""
    tariff_add(product=january.heb, valid_from=date(2026, 1, 1), price=D("67.00"))
    result = rappel_generate(section=january.section, product=january.heb, include_payants=True,
                             include_social_aid=True, user=None, issue=True, issue_date=date(2026, 3, 2))
    assert len(result["issued"]) == 2
    tariff_add(product=january.heb, valid_from=date(2026, 1, 20), price=D("70.00"))
    rappel_generate(section=january.section, product=january.heb, include_payants=True, include_social_aid=True,
                    user=None)
    assert InvoiceLine.objects.filter(invoice__kind="rappel", invoice__status="issued").count() == 4
    assert Invoice.objects.filter(kind="rappel", status="draft").count() == 2
