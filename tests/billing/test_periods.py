from datetime import date
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from billing.models import BillingPeriod, Calendar, Invoice, StayPackage
from billing.services import checks as check_services
from billing.services.generation import period_generate
from billing.services.issuing import period_issue
from billing.services.periods import period_create
from core.models import Job


@pytest.fixture
def clerk(client, demo_with_residents):
    client.login(username="tilleuls", password="demo")
    return client


def _period(alias="TIL-HP", month=11):
    from structures.models import Section

    return period_create(section=Section.objects.get(alias=alias), start=date(2026, month, 1))


def test_period_create_month_and_overlap(demo):
    period = _period()
    assert (period.start, period.end, period.label) == (date(2026, 11, 1), date(2026, 11, 30), "novembre 2026")
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="chevauche"):
        _period()


def test_checks_list_missing_calendar_package_and_gir(demo_with_residents):
    from residents.models import Stay

    period = _period(month=11)
    stay = Stay.objects.filter(section__alias="TIL-HP", end_date__isnull=True).first()
    StayPackage.objects.filter(stay=stay).delete()
    Calendar.objects.get(code="CAL-TIL").days.filter(day__gte=date(2026, 11, 29)).delete()
    messages = [c.message for c in check_services.period_checks(period=period)]
    assert any("CAL-TIL n'a pas été généré pour la période : 29/11/2026 – 30/11/2026" in m for m in messages)
    assert any(stay.resident.full_name in m and "sans forfait" in m for m in messages)
    assert check_services.period_blocking(check_services.period_checks(period=period))


def test_browser_flow_create_generate_review_issue(clerk, eager_celery, django_capture_on_commit_callbacks):
    url = reverse("billing:periods", kwargs={"alias": "TIL-HP"})
    response = clerk.post(url, {"month": "2026-11"})
    period = BillingPeriod.objects.get(section__alias="TIL-HP", start=date(2026, 11, 1))
    detail = reverse("billing:period-detail", kwargs={"alias": "TIL-HP", "period_pk": period.pk})
    assert response.url == detail
    page = clerk.get(detail)
    assert "Aucune anomalie" in page.content.decode() or "Attention" in page.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        clerk.post(detail, {"action": "generate"})
    job = Job.objects.get(kind="billing.generate")
    assert job.status == "succeeded", job.error
    drafts = Invoice.objects.filter(period=period, status="draft")
    assert drafts.exists()
    page = clerk.get(detail).content.decode()
    assert "brouillon" in page and "Émettre" in page
    with django_capture_on_commit_callbacks(execute=True):
        clerk.post(detail, {"action": "issue", "issue_date": "2026-12-01"})
    assert not Invoice.objects.filter(period=period, status="draft").exists()
    numbers = sorted(Invoice.objects.filter(period=period).values_list("number", flat=True))
    assert numbers[0] == "TIL-2026-000001" and numbers[-1] == f"TIL-2026-{len(numbers):06d}"


def test_reader_cannot_generate_or_issue_and_other_section_is_404(client, demo_with_residents):
    period = _period()
    client.login(username="direction", password="demo")
    detail = reverse("billing:period-detail", kwargs={"alias": "TIL-HP", "period_pk": period.pk})
    assert client.get(detail).status_code == 200
    assert client.post(detail, {"action": "generate"}).status_code == 403
    assert client.post(detail, {"action": "issue", "issue_date": "2026-12-01"}).status_code == 403
    assert not Job.objects.exists()
    client.logout()
    client.login(username="verger", password="demo")
    assert client.get(detail).status_code == 404
    assert client.get(reverse("billing:period-detail", kwargs={"alias": "VER-HP", "period_pk": period.pk})
                      ).status_code == 404


def test_invoice_detail_and_credit_note_through_the_view(clerk):
    period = _period()
    period_generate(period=period)
    invoice = period_issue(period=period, issue_date=date(2026, 12, 1))[0]
    url = reverse("billing:invoice-detail", kwargs={"alias": "TIL-HP", "pk": invoice.pk})
    page = clerk.get(url).content.decode()
    assert invoice.number in page and "Établir un avoir" in page
    line = invoice.lines.first()
    response = clerk.post(url, {"reason": "erreur de chambre", "credit_%d" % line.pk: "10,00"})
    credit = Invoice.objects.get(kind="credit_note")
    assert response.status_code == 302 and credit.total == Decimal("-10.00")
    assert credit.comment == "erreur de chambre"
    assert credit.number == "TIL-AV-2026-000001"
    page = clerk.post(url, {"reason": "erreur", f"credit_{line.pk}": "dix euros"}).content.decode()
    assert f"Montant invalide pour « {line.label} » : « dix euros »" in page
    assert Invoice.objects.filter(kind="credit_note").count() == 1
    other = reverse("billing:invoice-detail", kwargs={"alias": "VER-HP", "pk": invoice.pk})
    assert clerk.get(other).status_code == 404


def test_generate_period_command(demo_with_residents):
    out = StringIO()
    call_command("generate_period", "--section", "TIL-HP", "--month", "2026-11", "--issue",
                 "--issue-date", "2026-12-01", stdout=out)
    text = out.getvalue()
    assert "Période « novembre 2026 » ouverte" in text and "facture(s) émise(s) (TIL-2026-000001 à" in text
    with pytest.raises(CommandError, match="Section inconnue"):
        call_command("generate_period", "--section", "NOPE", "--month", "2026-11")
    with pytest.raises(CommandError, match="Mois invalide"):
        call_command("generate_period", "--section", "TIL-HP", "--month", "2026-13")
    with pytest.raises(CommandError, match="Génération impossible"):
        call_command("generate_period", "--section", "TIL-HP", "--month", "2031-01", stderr=StringIO())
    assert not BillingPeriod.objects.filter(start__year=2031).exists()


def test_calendar_views_extend_and_refuse_second_calendar(client, demo):
    from django.contrib.auth import get_user_model

    from structures.models import SectionAccess, Section

    boss = get_user_model().objects.create_user("boss", password="demo")
    SectionAccess.objects.create(user=boss, section=Section.objects.get(alias="TIL-HP"), role="manager")
    SectionAccess.objects.create(user=boss, section=Section.objects.get(alias="TIL-HT"), role="manager")
    client.login(username="boss", password="demo")
    calendar = Calendar.objects.get(code="CAL-TIL")
    url = reverse("billing:calendar-detail", kwargs={"alias": "TIL-HP", "pk": calendar.pk})
    assert "Novembre 2026" in client.get(url + "?mois=2026-11").content.decode()
    client.post(url, {"action": "generate", "years": "2028"})
    assert calendar.days.filter(day__year=2028).count() == 366
    client.post(url, {"day": "2028-02-29", "state": "closed"})
    assert calendar.days.get(day=date(2028, 2, 29)).state == "closed"
    response = client.post(reverse("billing:calendars", kwargs={"alias": "TIL-HP"}),
                           {"code": "CAL-2029", "label": "2029", "mode": "full"})
    assert "prolongez le calendrier existant" in response.content.decode()
    assert not Calendar.objects.filter(code="CAL-2029").exists()
    # a clerk of TIL-HT only cannot change the calendar shared with TIL-HP
    client.logout()
    client.login(username="tilleuls", password="demo")
    SectionAccess.objects.filter(user__username="tilleuls", section__alias="TIL-HP").delete()
    url_ht = reverse("billing:calendar-detail", kwargs={"alias": "TIL-HT", "pk": calendar.pk})
    assert client.post(url_ht, {"day": "2028-03-01", "state": "closed"}).status_code == 403


def test_tariff_history_and_manager_only(client, demo):
    from billing.models import Product

    heb = Product.objects.get(establishment__code="TIL", code="HEB")
    url = reverse("billing:product-detail", kwargs={"alias": "TIL-HP", "pk": heb.pk})
    client.login(username="tilleuls", password="demo")
    page = client.get(url).content.decode()
    assert "68,20" in page and "70,45" in page and "31/12/2025" in page
    assert client.post(url, {"valid_from": "2027-01-01", "price": "72.00"}).status_code == 403
    client.logout()
    client.login(username="admin", password="admin")
    client.post(url, {"valid_from": "2027-01-01", "price": "72.00", "act_reference": "Arrêté 2027"})
    assert heb.tariffs.filter(valid_from=date(2027, 1, 1), price=Decimal("72.00")).exists()
    response = client.post(url, {"valid_from": "2027-01-01", "price": "73.00"})
    assert "Un tarif commence déjà le 01/01/2027" in response.content.decode()


def test_period_page_reloads_its_invoices_when_the_job_ends(clerk):
    """The region with the invoices and totals is fetched again (htmx) on « job-finished »."""
    import re

    period = _period()
    url = reverse("billing:period-detail", kwargs={"alias": "TIL-HP", "period_pk": period.pk})
    html = clerk.get(url).content.decode()
    region = re.search(r'<div id="period-live"([^>]*)>', html)
    assert region, "no live region"
    attrs = region.group(1)
    assert f'hx-get="{url}"' in attrs and 'hx-trigger="job-finished from:body"' in attrs
    assert 'hx-select="#period-live"' in attrs
    live = html[region.start():]
    assert 'id="invoices"' in live and 'id="review"' in live
