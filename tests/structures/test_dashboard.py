"""The tableau de bord (home page): per granted section the month's period, checks, totals, failed
mails and charts; the to-dos (a registry the apps extend); « Générer tout » / « Émettre tout »."""
from datetime import date
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from billing.models import Invoice
from billing.services import batch
from core.models import Job
from mailing.models import OutgoingMessage
from structures import dashboard
from structures.models import Section, SectionAccess
from tests.factories import SectionAccessFactory, UserFactory

pytestmark = pytest.mark.django_db

NOV = "?mois=2026-11"


def _facts(response, alias):
    card = next(c for c in response.context["board"].cards if c.section.alias == alias)
    return {f.key: f for f in card.facts}


def _todos(response):
    return [(t.section.alias if t.section else None, t.key) for t in response.context["board"].todos]


def test_dashboard_of_a_month_not_opened(client, demo_with_residents):
    client.force_login(demo_with_residents["users"]["tilleuls"])
    response = client.get(reverse("home") + NOV)
    assert response.status_code == 200
    assert [c.section.alias for c in response.context["board"].cards] == ["TIL-HP", "TIL-HT"]
    facts = _facts(response, "TIL-HP")
    assert facts["period"].value == "non ouverte" and facts["period"].level == "warning"
    assert facts["checks"].value.startswith("0 bloquant(s)")
    assert ("TIL-HP", "open_period") in _todos(response)
    html = response.content.decode()
    assert "Tableau de bord" in html and "novembre 2026" in html.lower()
    assert "VER-HP" not in html  # not granted
    # A clerk may not start « Générer tout ».
    assert not response.context["board"].actions and "Générer tout" not in html


def test_dashboard_after_generation_and_issue(client, demo_with_residents):
    call_command("generate_period", "--section", "TIL-HP", "--month", "2026-11", stdout=StringIO())
    client.force_login(demo_with_residents["users"]["tilleuls"])
    response = client.get(reverse("home") + NOV)
    drafts = Invoice.objects.filter(section__alias="TIL-HP", status="draft")
    n = drafts.count()
    facts = _facts(response, "TIL-HP")
    assert f"{n} brouillon" in facts["period"].value
    assert facts["drafts"].value.startswith(f"{n} — ")
    assert ("TIL-HP", "issue") in _todos(response) and ("TIL-HP", "open_period") not in _todos(response)
    # Issue: the month's bar of the 12-month chart carries the issued total; the to-do moves to PDFs.
    call_command("generate_period", "--section", "TIL-HP", "--month", "2026-11", "--issue", stdout=StringIO())
    response = client.get(reverse("home") + NOV)
    facts = _facts(response, "TIL-HP")
    assert facts["period"].value == "émise"
    total = sum(i.total for i in Invoice.objects.filter(section__alias="TIL-HP", status="issued"))
    card = next(c for c in response.context["board"].cards if c.section.alias == "TIL-HP")
    bars = next(ch for ch in card.charts if ch.key == "billed").context["bars"]
    assert len(bars) == 12 and bars[-1]["current"] and bars[-1]["label"] == "11/2026"
    from core.money import format_euros

    assert bars[-1]["value"] == format_euros(total) and bars[-1]["height"] == 60
    assert all(b["height"] == 0 for b in bars[:-1])
    assert ("TIL-HP", "issue") not in _todos(response) and ("TIL-HP", "pdf") in _todos(response)
    assert f'data-value="{format_euros(total)}"' in response.content.decode()


def test_dashboard_counts_blocking_checks(client, demo_with_residents):
    Section.objects.get(alias="TIL-HT").calendars.clear()
    client.force_login(demo_with_residents["users"]["tilleuls"])
    response = client.get(reverse("home") + NOV)
    facts = _facts(response, "TIL-HT")
    assert facts["checks"].level == "error" and facts["checks"].value.startswith("1 bloquant(s)")
    assert ("TIL-HT", "blocking_checks") in _todos(response)
    assert _todos(response)[0] == ("TIL-HT", "blocking_checks")  # errors first


def test_dashboard_shows_failed_mails_of_granted_sections_only(client, demo_with_residents):
    sections = demo_with_residents["sections"]
    organisation = demo_with_residents["organisation"]
    for n, (alias, status) in enumerate([("TIL-HP", "failed"), ("TIL-HP", "uncertain"), ("TIL-HP", "sent"),
                                         ("VER-HP", "failed")]):
        OutgoingMessage.objects.create(organisation=organisation, section=sections[alias], sender_email="a@b.fr",
                                       recipients=["x@y.fr"], subject="s", body="b", message_id=f"<{n}@t>",
                                       status=status)
    client.force_login(demo_with_residents["users"]["tilleuls"])
    response = client.get(reverse("home") + NOV)
    assert _facts(response, "TIL-HP")["failed_mails"].value == "1 en échec, 1 à vérifier"
    assert _facts(response, "TIL-HT")["failed_mails"].level == "ok"
    todo = next(t for t in response.context["board"].todos if t.key == "failed_mails")
    assert todo.section.alias == "TIL-HP" and todo.count == 2 and todo.level == "error"
    assert todo.url == reverse("mailing:campaigns", kwargs={"alias": "TIL-HP"})
    assert [t for t in response.context["board"].todos if t.key == "failed_mails" and t.section.alias == "VER-HP"] == []


def test_todo_registry_takes_providers_and_keeps_scoping(client, demo):
    seen = []

    def provider(*, user, sections, year, month, shared):
        seen.append(sorted(s.alias for s in sections))
        # A provider that (wrongly) returns a to-do for every section: the dashboard keeps the granted ones.
        return [dashboard.Todo("Paiements à affecter", section=s, key="payments") for s in Section.objects.all()]

    dashboard.register_todos(provider)
    try:
        client.force_login(demo["users"]["tilleuls"])
        response = client.get(reverse("home") + NOV)
    finally:
        dashboard.unregister(provider)
    assert seen == [["TIL-HP", "TIL-HT"]]
    assert sorted(a for a, key in _todos(response) if key == "payments") == ["TIL-HP", "TIL-HT"]
    assert "Paiements à affecter" in response.content.decode()


def test_occupancy_rate_uses_the_section_places(client, demo_with_residents):
    call_command("generate_period", "--section", "TIL-HP", "--month", "2026-11", stdout=StringIO())
    client.force_login(demo_with_residents["users"]["admin"])
    response = client.get(reverse("home") + NOV)
    assert "nombre de places non renseigné" in _facts(response, "TIL-HP")["occupancy"].value
    # Independent count: each resident's distinct days billed in November.
    days = set()
    from billing.models import InvoiceLine

    for line in InvoiceLine.objects.filter(invoice__section__alias="TIL-HP",
                                           product__kind__in=["accommodation", "temporary", "day_care"]):
        for k in range((line.date_to - line.date_from).days + 1):
            days.add((line.resident_id, line.date_from.toordinal() + k))
    assert days
    Section.objects.filter(alias="TIL-HP").update(places=10)
    response = client.get(reverse("home") + NOV)
    rate = (Decimal(len(days)) * 100 / (10 * 30)).quantize(Decimal("0.1"))
    assert _facts(response, "TIL-HP")["occupancy"].value == f"{str(rate).replace('.', ',')} % ({len(days)} j / 10 places)"
    card = next(c for c in response.context["board"].cards if c.section.alias == "TIL-HP")
    assert next(ch for ch in card.charts if ch.key == "occupancy").context["rate"] == rate


def test_places_is_editable_in_the_section_settings(client, demo):
    client.force_login(demo["users"]["admin"])
    section = Section.objects.get(alias="TIL-HP")
    url = reverse("section-settings", kwargs={"alias": "TIL-HP"})
    assert 'name="places"' in client.get(url).content.decode()
    response = client.post(url, {"name": section.name, "kind": section.kind, "periodicity": section.periodicity,
                                 "payment_due_days": 15, "places": 84, "is_active": "on"})
    assert response.status_code == 302
    section.refresh_from_db()
    assert section.places == 84
    assert 'name="places"' in client.get(reverse("admin:structures_section_change", args=[section.pk])).content.decode()


def test_generate_all_is_for_managers_and_starts_one_job_per_managed_section(client, demo_with_residents,
                                                                           django_capture_on_commit_callbacks):
    url = reverse("billing-month-all")
    client.force_login(demo_with_residents["users"]["direction"])  # reader everywhere
    assert client.post(url, {"action": "generate", "mois": "2026-11"}).status_code == 403
    assert not Job.objects.exists()
    boss = UserFactory(username="chef")
    for alias in ("TIL-HP", "VER-HP"):
        SectionAccessFactory(user=boss, section=Section.objects.get(alias=alias), role=SectionAccess.Role.MANAGER)
    SectionAccessFactory(user=boss, section=Section.objects.get(alias="TIL-HT"), role=SectionAccess.Role.CLERK)
    client.force_login(boss)
    page = client.get(reverse("home") + NOV)
    assert [a.key for a in page.context["board"].actions] == ["generate_all", "issue_all"]
    assert "Générer tout" in page.content.decode()
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(url, {"action": "generate", "mois": "2026-11"})
    parent = Job.objects.get(kind="core.group")
    assert response["Location"] == reverse("job-detail", kwargs={"pk": parent.pk})
    assert sorted(parent.children.values_list("section__alias", flat=True)) == ["TIL-HP", "VER-HP"]
    assert len(callbacks) == 1
    for child in parent.children.all():
        from core.services import jobs as job_services

        job_services.job_run(job_id=child.pk, func=job_services.JOB_RUNNERS[child.kind])
    page = client.get(reverse("job-detail", kwargs={"pk": parent.pk})).content.decode()
    assert "2 sur 2 terminée(s)" in page
    # « Émettre tout » issues the drafts of the managed sections.
    with django_capture_on_commit_callbacks():
        client.post(url, {"action": "issue", "mois": "2026-11"})
    issue_parent = Job.objects.filter(kind="core.group").order_by("-pk").first()
    assert issue_parent.params["action"] == batch.ISSUE
    for child in issue_parent.children.all():
        job_services.job_run(job_id=child.pk, func=job_services.JOB_RUNNERS[child.kind])
    assert not Invoice.objects.filter(section__alias__in=["TIL-HP", "VER-HP"], status="draft").exists()
    assert Invoice.objects.filter(section__alias="TIL-HP", status="issued", issue_date=timezone.localdate()).exists()
