"""Changes after issue (billing-rules.md §6): régularisations, never a day billed twice, never a share lost."""
import calendar
import random
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from billing.models import Invoice, InvoiceLine, Tariff
from billing.services.generation import compute_period, period_generate
from billing.services.issuing import period_issue
from billing.services.regularisation import (debtor_key, invoice_debtor_key, period_regularisations,
                                             period_regularise)
from payers.models import CoverageRule
from residents.models import GirAssessment

D = Decimal
APRIL = (date(2026, 4, 1), date(2026, 4, 30))


def issued_totals(period) -> dict:
    """Issued invoices minus credit notes, per (debtor, product), for the lines dated in the period."""
    totals = defaultdict(lambda: D("0.00"))
    for ln in InvoiceLine.objects.filter(invoice__section=period.section, invoice__status__in=["issued", "cancelled"],
                                         date_from__range=(period.start, period.end)).select_related("invoice"):
        totals[(invoice_debtor_key(ln.invoice), ln.product_id)] += ln.amount
    return {k: v for k, v in totals.items() if v}


def engine_totals(period) -> dict:
    lines, _w, _n = compute_period(section=period.section, start=period.start, end=period.end)
    totals = defaultdict(lambda: D("0.00"))
    for line in lines:
        d = line.debtor
        totals[(debtor_key(kind=d.kind, resident_id=d.resident_id, relative_id=d.relative_id, payer_id=d.payer_id,
                           group_id=d.group_id), line.product.pk)] += line.amount
    return {k: v for k, v in totals.items() if v}


def settle(period, issue_date=date(2026, 5, 2)):
    """Generate, issue and settle the régularisations; issue dates stay chronological per series."""
    period_generate(period=period)
    period_issue(period=period, issue_date=issue_date)
    period_regularise(period=period, issue_date=issue_date + timedelta(days=1))


def hosting_rule(setup, stay, payer_code="CD69", group="ASH", **kwargs):
    payer = setup.payers[payer_code]
    defaults = dict(scope=CoverageRule.Scope.ACCOMMODATION, mode=CoverageRule.Mode.ALL, valid_from=stay.entry_date)
    defaults.update(kwargs)
    return CoverageRule.objects.create(stay=stay, payer=payer, group=payer.groups.get(code=group), **defaults)


def test_coverage_rule_added_after_issue_is_a_regularisation_not_a_double_billing(billing_setup):
    stay = billing_setup.stay(gir=6)
    period = billing_setup.period(*APRIL)
    period_generate(period=period)
    resident_invoice = period_issue(period=period, issue_date=date(2026, 5, 2))[0]
    assert resident_invoice.total == D("2130.00")  # 30 × (65 + 6)
    hosting_rule(billing_setup, stay)
    result = period_generate(period=period)
    assert result["skipped_issued"] == 1
    # The payer gets its (new) share as a draft; the resident's issued days are NOT drafted again.
    draft = Invoice.objects.get(period=period, status="draft")
    assert draft.debtor_kind == "payer" and draft.total == D("1950.00")
    regs = period_regularisations(period=period)
    assert len(regs) == 1
    reg = regs[0]
    assert reg.key[0] == "resident" and reg.issued == D("2130.00") and reg.due == D("180.00")
    assert reg.difference == D("-1950.00")
    assert "règle de prise en charge ajoutée" in reg.reason and "Département 69" in reg.reason
    assert any(d.startswith("Hébergement : émis 1") and "(30 j), dû 0,00" in d for d in reg.details)
    period_issue(period=period, issue_date=date(2026, 5, 2))
    result = period_regularise(period=period, issue_date=date(2026, 5, 3))
    assert result["credit_notes"] and not result["invoices"] and result["credited"] == "1950.00"
    credit = Invoice.objects.get(kind="credit_note")
    assert credit.credited_invoice == resident_invoice and credit.total == D("-1950.00")
    assert "Régularisation période" in credit.comment and "prise en charge ajoutée" in credit.comment
    assert issued_totals(period) == engine_totals(period)
    assert period_regularisations(period=period) == []


def test_a_new_share_of_an_already_invoiced_payer_is_not_dropped(billing_setup):
    first, second = billing_setup.stay(gir=6), billing_setup.stay(gir=6)
    hosting_rule(billing_setup, first)
    period = billing_setup.period(*APRIL)
    period_generate(period=period)
    period_issue(period=period, issue_date=date(2026, 5, 2))  # payer (first) + two residents
    hosting_rule(billing_setup, second)
    period_generate(period=period)
    draft = Invoice.objects.get(period=period, status="draft")
    assert draft.debtor_kind == "payer" and draft.total == D("1950.00")
    assert set(draft.lines.values_list("stay_id", flat=True)) == {second.pk}
    settle(period)
    assert issued_totals(period) == engine_totals(period)


def test_tariff_change_after_issue_is_invoiced_as_regularisation(billing_setup):
    billing_setup.stay(gir=6)
    period = billing_setup.period(*APRIL)
    period_generate(period=period)
    period_issue(period=period, issue_date=date(2026, 5, 2))
    Tariff.objects.create(product=billing_setup.products["HEB"], valid_from=date(2026, 4, 1), price=D("70.00"))
    assert period_generate(period=period)["drafts"] == 0
    reg = period_regularisations(period=period)[0]
    assert reg.difference == D("150.00") and "tarif modifié" in reg.reason
    result = period_regularise(period=period, issue_date=date(2026, 5, 3))
    invoice = Invoice.objects.get(number=result["invoices"][0])
    assert invoice.total == D("150.00") and invoice.status == "issued"
    assert invoice.comment.startswith("Régularisation période") and "tarif modifié" in invoice.comment
    line = invoice.lines.get()
    assert line.reason == "regularisation" and "Hébergement" in line.label
    assert issued_totals(period) == engine_totals(period)


def test_absence_and_gir_change_after_issue(billing_setup):
    stay = billing_setup.stay(gir=2)
    period = billing_setup.period(*APRIL)
    settle(period)
    billing_setup.absence(stay, "H", date(2026, 4, 10), date(2026, 4, 19))
    reasons = period_regularisations(period=period)[0].reason
    assert "absence saisie" in reasons
    GirAssessment.objects.create(resident=stay.resident, gir=4, valid_from=date(2026, 4, 20))
    assert "GIR modifié" in period_regularisations(period=period)[0].reason
    settle(period)
    assert issued_totals(period) == engine_totals(period)
    assert Invoice.objects.filter(kind="credit_note").exists() and Invoice.objects.filter(
        lines__reason="regularisation").exists()


def test_random_changes_keep_issued_equal_to_engine(billing_setup):
    """Property: whatever the sequence of changes, regenerations, issues and régularisations, issued
    invoices minus credit notes per debtor and product equal the engine's result on the final data."""
    setup = billing_setup
    heb = setup.products["HEB"]
    corrections = 0
    issue_day = date(2026, 10, 1)  # issue dates only move forward (chronological numbering)
    for seed in range(6):
        rng = random.Random(seed)
        start = date(2026, 4 + seed, 1)  # same set-up, a new period (and new stays) per seed
        end = start.replace(day=calendar.monthrange(start.year, start.month)[1])
        stays = [setup.stay(gir=rng.choice([2, 4, 6]), entry=date(2026, 1, 1)) for _ in range(3)]
        period = setup.period(start, end, label=f"p{seed}")
        rules = []
        for _step in range(9):
            op = rng.choice(["rule", "unrule", "tariff", "absence", "end", "gir", "generate", "issue", "regul"])
            stay = rng.choice(stays)
            if op == "rule":
                mode = rng.choice(["all", "percent"])
                rules.append(hosting_rule(setup, stay, payer_code=rng.choice(["CD69", "CD01"]), mode=mode,
                                          value=D("40") if mode == "percent" else D("0"),
                                          valid_from=start.replace(day=rng.randint(1, 20))))
            elif op == "unrule" and rules:
                rules.pop(rng.randrange(len(rules))).delete()
            elif op == "tariff":  # a new dated row (rows used by issued invoices cannot be edited)
                valid_from = start.replace(day=rng.randint(1, 28))
                if not Tariff.objects.filter(product=heb, valid_from=valid_from).exists():
                    Tariff.objects.create(product=heb, valid_from=valid_from,
                                          price=D(rng.choice(["60.00", "66.50", "71.25"])))
            elif op == "absence":
                first = start.replace(day=rng.randint(1, 20))
                setup.absence(stay, rng.choice(["H", "C", "P"]), first, first.replace(day=first.day + rng.randint(0, 8)))
            elif op == "end":
                stay.end_date = start.replace(day=rng.randint(5, 28))
                stay.end_reason = "departure"
                stay.save()
            elif op == "gir":
                GirAssessment.objects.update_or_create(resident=stay.resident, valid_from=start.replace(day=rng.randint(2, 25)),
                                                       defaults={"gir": rng.choice([1, 3, 5])})
            elif op == "generate":
                period_generate(period=period)
            elif op == "issue":
                period_generate(period=period)
                issue_day += timedelta(days=1)
                period_issue(period=period, issue_date=issue_day)
            elif op == "regul":
                issue_day += timedelta(days=1)
                period_regularise(period=period, issue_date=issue_day)
        issue_day += timedelta(days=1)
        settle(period, issue_date=issue_day)
        issue_day += timedelta(days=1)
        assert issued_totals(period) == engine_totals(period), f"seed {seed}"
        corrections += Invoice.objects.filter(period=period, comment__startswith="Régularisation").count()
        assert not Invoice.objects.filter(period=period, status="draft").exists()
    assert corrections >= 6  # the sequences really went through régularisations


def test_generate_period_command_regularise(billing_setup, capsys):
    stay = billing_setup.stay(gir=6)
    period = billing_setup.period(*APRIL)
    settle(period)
    hosting_rule(billing_setup, stay)
    call_command("generate_period", section="EXA-HP", month="2026-04", regularise=True, issue_date="2026-05-04")
    out = capsys.readouterr().out
    assert "Régularisation" in out and "règle de prise en charge ajoutée" in out and "avoir" in out.lower()
    assert Invoice.objects.filter(kind="credit_note", status="issued").count() == 1
    call_command("generate_period", section="EXA-HP", month="2026-04", issue=True)  # the payer's new share
    assert issued_totals(period) == engine_totals(period)
    call_command("generate_period", section="EXA-HP", month="2026-04", regularise=True)
    assert "Aucune régularisation" in capsys.readouterr().out
    with pytest.raises(CommandError, match="Section inconnue"):
        call_command("generate_period", section="NOPE", month="2026-04", regularise=True)


def test_review_page_lists_regularisations_and_the_job_issues_them(client, billing_setup, eager_celery,
                                                                    django_capture_on_commit_callbacks):
    import html

    from django.urls import reverse

    from core.models import Job
    from structures.models import SectionAccess
    from tests.factories import UserFactory

    stay = billing_setup.stay(gir=6)
    period = billing_setup.period(*APRIL)
    settle(period)
    url = reverse("billing:period-detail", kwargs={"alias": "EXA-HP", "period_pk": period.pk})
    reader, clerk, stranger = (UserFactory(username=n) for n in ("lect-exa", "fact-exa", "autre"))
    SectionAccess.objects.create(user=reader, section=billing_setup.section, role="reader")
    SectionAccess.objects.create(user=clerk, section=billing_setup.section, role="clerk")
    panel = reverse("billing:period-regularisations", kwargs={"alias": "EXA-HP", "period_pk": period.pk})
    client.force_login(clerk)
    # The period page loads the review after it is shown (it re-runs the rules for the section).
    assert f'hx-get="{panel}"' in client.get(url).content.decode()
    assert "Aucune régularisation" in html.unescape(client.get(panel).content.decode())
    hosting_rule(billing_setup, stay)
    page = html.unescape(client.get(panel).content.decode())
    assert "règle de prise en charge ajoutée (Département 69 — Aide sociale hébergement)" in page
    assert "Émettre les régularisations" in page and "-1\u202f950,00\xa0€" in page
    assert f'action="{url}"' in page  # the form posts to the period page, not to the panel
    # Refusals: a reader may look but not issue; someone without the section gets a 404.
    client.force_login(reader)
    assert "Émettre les régularisations" not in client.get(panel).content.decode()
    assert client.post(url, {"action": "regularise", "issue_date": "2026-05-03"}).status_code == 403
    client.force_login(stranger)
    assert client.get(url).status_code == 404
    assert client.get(panel).status_code == 404
    assert client.post(url, {"action": "regularise", "issue_date": "2026-05-03"}).status_code == 404
    assert not Job.objects.exists()
    client.force_login(clerk)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"action": "regularise", "issue_date": "2026-05-03"})
    job = Job.objects.get(kind="billing.regularise")
    assert job.status == "succeeded", job.error
    credit = Invoice.objects.get(kind="credit_note")
    assert credit.issue_date == date(2026, 5, 3) and credit.total == D("-1950.00")
    assert job.result["credit_notes"] == [credit.number]


def test_rappel_after_a_regularised_tariff_change_bills_nothing_twice(billing_setup):
    from billing.services.rappel import rappel_detect

    billing_setup.stay(gir=6)
    period = billing_setup.period(*APRIL)
    settle(period)
    Tariff.objects.create(product=billing_setup.products["HEB"], valid_from=date(2026, 4, 1), price=D("70.00"))
    assert rappel_detect(section=billing_setup.section, product=billing_setup.products["HEB"]).found
    period_regularise(period=period, issue_date=date(2026, 5, 3))
    detection = rappel_detect(section=billing_setup.section, product=billing_setup.products["HEB"])
    assert not detection.found
    # The settled days are not reported as « autre motif » (to correct by credit note): they are done.
    assert not any("autre motif" in w for w in detection.warnings), detection.warnings
    assert issued_totals(period) == engine_totals(period)


def test_an_issued_rappel_counts_as_issued_no_regularisation_left(billing_setup):
    from billing.services.rappel import rappel_generate

    billing_setup.stay(gir=6)
    period = billing_setup.period(*APRIL)
    settle(period)
    Tariff.objects.create(product=billing_setup.products["HEB"], valid_from=date(2026, 4, 1), price=D("70.00"))
    result = rappel_generate(section=billing_setup.section, product=billing_setup.products["HEB"], issue=True,
                             issue_date=date(2026, 5, 3))
    assert result["total"] == D("150.00")
    assert period_regularisations(period=period) == []
    assert issued_totals(period) == engine_totals(period)
