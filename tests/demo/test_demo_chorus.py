"""The demo's public payer with Chorus Pro settings: the Ain receives Les Tilleuls' APA invoices as Factur-X."""
from io import StringIO

import pytest
from django.core.management import call_command
from stdnum.fr import siret

from payers.models import Payer


@pytest.mark.django_db
def test_demo_ain_receives_its_invoices_through_chorus_pro():
    call_command("seed_demo", "--no-residents", stdout=StringIO())
    ain = Payer.objects.get(code="CD01")
    assert ain.chorus_pro and siret.is_valid(ain.siret)
    assert (ain.chorus_service_code, ain.chorus_engagement_number, ain.facturx_profile) == (
        "DGAS-APA", "EJ-2026-0107", "en16931")
    assert not Payer.objects.filter(chorus_pro=True).exclude(code="CD01").exists()
    ain.chorus_service_code = "AUTRE"
    ain.save()
    call_command("seed_demo", "--no-residents", stdout=StringIO())  # idempotent: a user's change stays
    assert Payer.objects.get(code="CD01").chorus_service_code == "AUTRE"


@pytest.mark.django_db
def test_a_generated_demo_month_gives_valid_factur_x_for_the_ain(demo_with_residents):
    """Real generated invoices (individual APA = GIR tariff minus the talon, per day):
    every Factur-X of the month passes the XSD, round-trips, and its totals are the invoice's."""
    import io
    import zipfile
    from datetime import date

    import facturx
    from lxml import etree

    from billing.models import BillingPeriod, Invoice
    from billing.services import facturx as fx
    from billing.services.generation import period_generate
    from billing.services.issuing import period_issue

    section = demo_with_residents["sections"]["TIL-HP"]
    period = BillingPeriod.objects.create(section=section, start=date(2026, 11, 1), end=date(2026, 11, 30),
                                          accounting_date=date(2026, 11, 30), label="Novembre 2026")
    period_generate(period=period)
    period_issue(period=period, issue_date=date(2026, 12, 1))
    chorus = list(Invoice.objects.filter(period=period).exclude(einvoice={}).order_by("number"))
    assert chorus and {i.payer.code for i in chorus} == {"CD01"}
    assert not Invoice.objects.filter(period=period, einvoice={}, payer__code="CD01").exists()
    content, count = fx.facturx_zip(section, "2026-12")
    assert count == len(chorus)
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        for invoice in chorus:
            _name, xml = facturx.get_facturx_xml_from_pdf(io.BytesIO(archive.read(f"{invoice.number}.pdf")))
            root = etree.fromstring(xml)
            grand = root.xpath("//ram:GrandTotalAmount", namespaces=fx.NS)[0].text
            assert grand == str(invoice.total), invoice.number
            assert root.xpath("//ram:BuyerReference", namespaces=fx.NS)[0].text == "DGAS-APA"


@pytest.mark.django_db
def test_the_pre_flight_checks_warn_about_a_chorus_pro_payer_that_would_block_issuing(demo_with_residents):
    from datetime import date

    from billing.models import BillingPeriod
    from billing.services.checks import period_checks

    section = demo_with_residents["sections"]["TIL-HP"]
    period = BillingPeriod.objects.create(section=section, start=date(2026, 11, 1), end=date(2026, 11, 30),
                                          accounting_date=date(2026, 11, 30), label="Novembre 2026")
    assert not [c for c in period_checks(period=period) if "Chorus Pro" in c.message]
    Payer.objects.filter(code="CD01").update(siret="", chorus_engagement_required=True, chorus_engagement_number="")
    [check] = [c for c in period_checks(period=period) if "Chorus Pro" in c.message]
    assert check.level == "warning" and check.message == (
        "Le payeur Département de l'Ain reçoit ses factures par Chorus Pro (Factur-X) : SIRET absent ou invalide, "
        "numéro d'engagement obligatoire non saisi. L'émission de ses factures sera refusée.")
    assert check.link.endswith(f"/{Payer.objects.get(code='CD01').pk}/parametrage/")
