"""End to end: a coverage rule added to a stay whose invoices are issued → the period review lists the
régularisation → the clerk issues it → a credit note and a régularisation invoice exist."""
from datetime import date
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from billing.models import Invoice


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_clerk_issues_a_regularisation_after_a_coverage_change(live_server, page, eager_celery):
    from billing.services.generation import period_generate
    from billing.services.issuing import period_issue
    from billing.services.periods import period_create
    from demo.services.seed import demo_seed
    from payers.models import CoverageRule, Payer, SocialAidDecision
    from residents.models import Stay
    from structures.models import Section

    demo_seed(residents=4)
    section = Section.objects.get(alias="TIL-HP")
    stay = next(s for s in Stay.objects.filter(section=section, end_date__isnull=True).order_by("pk")
                if not s.coverage_rules.exists() and not SocialAidDecision.objects.filter(stay=s).exists())
    payer = Payer.objects.filter(organisation=section.establishment.organisation).order_by("code").first()
    # Before issue, the payer takes half of the hébergement; the rest is the resident's.
    CoverageRule.objects.create(stay=stay, payer=payer, scope="accommodation", mode="percent", value=Decimal("50"),
                                valid_from=stay.entry_date)
    period = period_create(section=section, start=date(2026, 11, 1))
    period_generate(period=period)
    period_issue(period=period, issue_date=date(2026, 12, 1))
    resident_before = Invoice.objects.get(period=period, resident=stay.resident, debtor_kind="resident")

    base = live_server.url
    page.goto(f"{base}/connexion/")
    page.fill("#id_username", "tilleuls")
    page.fill("#id_password", "demo")
    page.get_by_role("button", name="Se connecter").click()

    # The clerk adds a rule on the issued stay: the payer now takes all of the hébergement.
    page.goto(f"{base}/s/TIL-HP/facturation/sejours/{stay.pk}/")
    form = page.locator("form:has(input[name=action][value=coverage])")
    form.locator("select[name=payer]").select_option(str(payer.pk))
    form.locator("select[name=scope]").select_option("accommodation")
    form.locator("select[name=mode]").select_option("all")
    form.get_by_role("button", name="Ajouter la prise en charge").click()
    expect(page.locator("#rules")).to_contain_text("La totalité")

    # The review lists the régularisation of both debtors, with the reason.
    page.goto(f"{base}/s/TIL-HP/facturation/periodes/{period.pk}/")
    regs = page.locator("#regularisation-list")
    expect(regs).to_contain_text(stay.resident.full_name)
    expect(regs).to_contain_text(payer.name)
    expect(regs).to_contain_text("règle de prise en charge")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#regularise").click()
    expect(page.locator("#job .job-status")).to_have_text("Terminée", timeout=60000)
    page.reload()
    expect(page.locator("#regularisations")).to_contain_text("Aucune régularisation")

    credit = Invoice.objects.get(kind="credit_note", status="issued")
    assert credit.credited_invoice == resident_before and credit.total < 0
    assert credit.comment.startswith("Régularisation novembre 2026")
    new = Invoice.objects.get(period=period, debtor_kind="payer", payer=payer, lines__reason="regularisation")
    assert new.status == "issued" and new.total == -credit.total
    expect(page.locator("#invoices")).to_contain_text(credit.number)
    expect(page.locator("#invoices")).to_contain_text(new.number)
