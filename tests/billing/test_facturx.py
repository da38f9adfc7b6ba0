"""Factur-X for payers that receive their invoices through Chorus Pro (books.md §3, issue 15).

January 2026, association EHPAD (exempt: category E, VATEX-EU-132): the département of the Rhône
(Chorus Pro, SIRET, code service, engagement) is invoiced 31 days of hébergement at 60,00 (1 860,00)
and 120,50 of APA; a credit note cancels the invoice. Mrs Dupont (no Chorus Pro) gets a plain PDF.
"""
import html
import io
import zipfile
from datetime import date
from decimal import Decimal

import facturx
import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse
from lxml import etree
from pypdf import PdfReader

from billing.models import Invoice, InvoiceLine, Product
from billing.services import facturx as fx
from billing.services.issuing import credit_note_create, invoices_issue
from billing.services.pdf import invoice_store_pdf
from payers.models import Payer
from payers.services.payers import payer_save
from tests.billing.payment_helpers import resident_in
from tests.factories import SectionFactory

D = Decimal
pytestmark = pytest.mark.django_db
NS = fx.NS
BUYER_SIRET = "22690001700014"
SELLER_SIRET = "73282932000074"


def _product(establishment, code, kind, unit="day"):
    return Product.objects.create(establishment=establishment, code=code, label=code, kind=kind, unit=unit)


def _draft(section, resident, lines, on, *, payer=None, period=None):
    invoice = Invoice.objects.create(
        section=section, establishment=section.establishment, period=period,
        debtor_kind=Invoice.DebtorKind.PAYER if payer else Invoice.DebtorKind.RESIDENT,
        resident=resident, payer=payer, date_from=on.replace(day=1), date_to=on,
        total=sum((D(q) * D(p) for _pr, _l, q, p in lines), D("0")).quantize(D("0.01")))
    for position, (product, label, quantity, price) in enumerate(lines):
        InvoiceLine.objects.create(invoice=invoice, resident=resident, product=product, label=label,
                                   reason="manual", date_from=invoice.date_from, date_to=on, quantity=D(quantity),
                                   unit_price=D(price), amount=(D(quantity) * D(price)).quantize(D("0.01")),
                                   position=position)
    return invoice


def _issue(invoice, on):
    invoices_issue(invoice_ids=[invoice.pk], issue_date=on)
    invoice.refresh_from_db()
    return invoice


@pytest.fixture
def chorus(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    section = SectionFactory(establishment__siret=SELLER_SIRET, establishment__name="EHPAD Les Tilleuls",
                             establishment__address="12 rue des Tilleuls", establishment__postal_code="69003",
                             establishment__city="Lyon", establishment__iban="FR7630001007941234567890185")
    establishment = section.establishment
    lodging = _product(establishment, "HEB", Product.Kind.ACCOMMODATION)
    apa = _product(establishment, "APA", Product.Kind.DEPENDENCY_12, unit="month")
    dupont = resident_in(section, last_name="Dupont", first_name="Jeanne")
    departement = Payer.objects.create(
        organisation=establishment.organisation, code="CD69", name="Département du Rhône", kind="departement",
        siret=BUYER_SIRET, address="29-31 cours de la Liberté", postal_code="69003", city="Lyon",
        chorus_pro=True, chorus_service_code="DSOL-ASH", chorus_engagement_number="EJ-2026-0042",
        chorus_engagement_required=True)
    invoice = _issue(_draft(section, dupont, [(lodging, "Hébergement janvier", "31", "60.00"),
                                              (apa, "APA GIR 2", "1", "120.50")], date(2026, 1, 31),
                            payer=departement), date(2026, 1, 31))
    private = _issue(_draft(section, dupont, [(lodging, "Hébergement janvier", "2", "25.00")], date(2026, 1, 31)),
                     date(2026, 1, 31))
    return {"section": section, "invoice": invoice, "private": private, "departement": departement,
            "dupont": dupont, "lodging": lodging}


def _xml_of(pdf: bytes):
    _name, xml = facturx.get_facturx_xml_from_pdf(io.BytesIO(pdf), check_xsd=True)
    return etree.fromstring(xml)


def _text(root, path):
    found = root.xpath(path, namespaces=NS)
    assert found, path
    return found[0].text


def test_the_invoice_to_a_chorus_pro_payer_is_a_factur_x_that_round_trips(chorus):
    invoice = chorus["invoice"]
    assert invoice.einvoice == {"buyer_siret": BUYER_SIRET, "buyer_name": "Département du Rhône",
                                "service_code": "DSOL-ASH", "engagement_number": "EJ-2026-0042",
                                "profile": "en16931"}
    invoice_store_pdf(invoice)
    pdf = invoice.pdf.read()
    root = _xml_of(pdf)
    sett = "//ram:ApplicableHeaderTradeSettlement"
    assert _text(root, "//rsm:ExchangedDocumentContext/ram:GuidelineSpecifiedDocumentContextParameter/ram:ID") \
        == "urn:cen.eu:en16931:2017"
    assert _text(root, "//rsm:ExchangedDocument/ram:ID") == invoice.number
    assert _text(root, "//rsm:ExchangedDocument/ram:TypeCode") == "380"
    assert _text(root, "//ram:BuyerReference") == "DSOL-ASH"
    assert _text(root, "//ram:BuyerOrderReferencedDocument/ram:IssuerAssignedID") == "EJ-2026-0042"
    assert _text(root, "//ram:BuyerTradeParty/ram:Name") == "Département du Rhône"
    buyer_id = root.xpath("//ram:BuyerTradeParty/ram:SpecifiedLegalOrganization/ram:ID", namespaces=NS)[0]
    assert (buyer_id.text, buyer_id.get("schemeID")) == (BUYER_SIRET, "0009")
    assert _text(root, "//ram:SellerTradeParty/ram:SpecifiedLegalOrganization/ram:ID") == SELLER_SIRET
    assert _text(root, "//ram:SellerTradeParty/ram:Name") == "EHPAD Les Tilleuls"
    assert _text(root, "//ram:BuyerTradeParty/ram:PostalTradeAddress/ram:PostcodeCode") == "69003"
    assert _text(root, f"{sett}/ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:GrandTotalAmount") \
        == "1980.50" == str(invoice.total)
    assert _text(root, f"{sett}/ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:TaxTotalAmount") == "0.00"
    assert _text(root, f"{sett}/ram:SpecifiedTradeSettlementHeaderMonetarySummation/ram:DuePayableAmount") \
        == "1980.50"
    assert _text(root, f"{sett}/ram:ApplicableTradeTax/ram:CategoryCode") == "E"
    assert _text(root, f"{sett}/ram:ApplicableTradeTax/ram:ExemptionReasonCode") == "VATEX-EU-132"
    assert "261-7-1° b" in _text(root, f"{sett}/ram:ApplicableTradeTax/ram:ExemptionReason")
    quantities = [(q.text, q.get("unitCode")) for q in root.xpath("//ram:BilledQuantity", namespaces=NS)]
    assert quantities == [("31", "DAY"), ("1", "MON")]
    assert [e.text for e in root.xpath("//ram:LineTotalAmount", namespaces=NS)] == ["1860.00", "120.50", "1980.50"]
    # The visible PDF says the same, and it is a PDF/A-3 with the XML attached.
    reader = PdfReader(io.BytesIO(pdf))
    text = "".join(page.extract_text() for page in reader.pages)
    assert invoice.number in text and "Département du Rhône" in text and "1 980,50" in text.replace("\u202f", " ")
    catalog = reader.trailer["/Root"]
    assert "/OutputIntents" in catalog and "/AF" in catalog
    xmp = catalog["/Metadata"].get_object().get_data()
    assert b"<pdfaid:part>3</pdfaid:part>" in xmp or b'pdfaid:part="3"' in xmp
    assert b"EN 16931" in xmp


def test_a_payer_without_chorus_pro_gets_a_plain_pdf(chorus):
    private = chorus["private"]
    assert private.einvoice == {} and not fx.is_facturx(private)
    invoice_store_pdf(private)
    pdf = private.pdf.read()
    assert b"factur-x.xml" not in pdf
    assert "/AF" not in PdfReader(io.BytesIO(pdf)).trailer["/Root"]
    assert private.number in PdfReader(io.BytesIO(pdf)).pages[0].extract_text()


def test_a_credit_note_is_a_factur_x_381_referring_to_the_invoice(chorus):
    invoice = chorus["invoice"]
    note = credit_note_create(invoice=invoice, reason="Erreur de tarif", issue_date=date(2026, 2, 3))
    note.refresh_from_db()
    assert note.einvoice["engagement_number"] == "EJ-2026-0042"
    root = etree.fromstring(fx.invoice_cii_xml(note))
    assert _text(root, "//rsm:ExchangedDocument/ram:TypeCode") == "381"
    assert _text(root, "//rsm:ExchangedDocument/ram:ID") == note.number
    assert _text(root, "//ram:InvoiceReferencedDocument/ram:IssuerAssignedID") == invoice.number
    assert _text(root, "//ram:InvoiceReferencedDocument/ram:FormattedIssueDateTime/qdt:DateTimeString") \
        == "20260131"
    assert _text(root, "//ram:GrandTotalAmount") == "1980.50"  # positive in a credit note (type 381)
    assert not root.xpath("//ram:SpecifiedTradeSettlementPaymentMeans", namespaces=NS)


def test_issuing_is_refused_without_a_valid_siret_or_a_required_engagement(chorus):
    section, departement = chorus["section"], chorus["departement"]
    Payer.objects.filter(pk=departement.pk).update(siret="22690001700015")  # Luhn key wrong (admin bypass)
    draft = _draft(section, chorus["dupont"], [(chorus["lodging"], "Hébergement février", "28", "60.00")],
                   date(2026, 2, 28), payer=Payer.objects.get(pk=departement.pk))
    with pytest.raises(ValidationError, match="SIRET « 22690001700015 » est absent ou invalide"):
        invoices_issue(invoice_ids=[draft.pk], issue_date=date(2026, 2, 28))
    Payer.objects.filter(pk=departement.pk).update(siret=BUYER_SIRET, chorus_engagement_number="")
    with pytest.raises(ValidationError, match="exige un numéro d'engagement"):
        invoices_issue(invoice_ids=[draft.pk], issue_date=date(2026, 2, 28))
    draft.refresh_from_db()
    assert draft.status == Invoice.Status.DRAFT and draft.number == ""


def test_payer_settings_refusals_name_the_field(chorus):
    departement = chorus["departement"]
    departement.siret = ""
    with pytest.raises(ValidationError) as exc:
        payer_save(payer=departement)
    assert "renseignez d'abord le SIRET" in exc.value.message_dict["chorus_pro"][0]
    departement.siret, departement.chorus_engagement_number = BUYER_SIRET, "  "
    with pytest.raises(ValidationError) as exc:
        payer_save(payer=departement)
    assert exc.value.message_dict["chorus_engagement_number"] == ["Le numéro d'engagement est obligatoire pour ce payeur."]
    departement.chorus_engagement_required = False
    payer_save(payer=departement)
    assert Payer.objects.get(pk=departement.pk).chorus_engagement_number == ""


@pytest.mark.parametrize("profile, level", [("basic", "basic"), ("extended", "extended")])
def test_the_profile_is_a_payer_setting(chorus, profile, level):
    departement = chorus["departement"]
    departement.facturx_profile = profile
    payer_save(payer=departement)
    invoice = _issue(_draft(chorus["section"], chorus["dupont"],
                            [(chorus["lodging"], "Hébergement février", "28", "60.00")], date(2026, 2, 28),
                            payer=departement), date(2026, 2, 28))
    assert invoice.einvoice["profile"] == profile
    invoice_store_pdf(invoice)
    root = _xml_of(invoice.pdf.read())
    assert facturx.get_level(root) == level
    assert _text(root, "//ram:GrandTotalAmount") == "1680.00"


def _chorus_invoice_in(legal_status, vat_rate):
    section = SectionFactory(establishment__legal_status=legal_status, establishment__siret=SELLER_SIRET,
                             establishment__postal_code="57000", establishment__city="Metz")
    establishment = section.establishment
    lodging = _product(establishment, "HEB", Product.Kind.ACCOMMODATION)
    apa = _product(establishment, "APA", Product.Kind.DEPENDENCY_12, unit="month")
    payer = Payer.objects.create(organisation=establishment.organisation, code="CD57", name="Département de la Moselle",
                                 kind="departement", siret=BUYER_SIRET, chorus_pro=True)
    draft = _draft(section, resident_in(section), [(lodging, "Hébergement janvier", "31", "60.00"),
                                                   (apa, "APA GIR 2", "1", "120.50")], date(2026, 1, 31), payer=payer)
    InvoiceLine.objects.filter(invoice=draft, product=lodging).update(vat_rate=D(vat_rate))
    return _issue(draft, date(2026, 1, 31))


def _taxes(root):
    path = "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax"
    return {t.xpath("ram:CategoryCode", namespaces=NS)[0].text: (
        t.xpath("ram:BasisAmount", namespaces=NS)[0].text, t.xpath("ram:CalculatedAmount", namespaces=NS)[0].text,
        t.xpath("ram:ExemptionReasonCode/text()", namespaces=NS), t.xpath("ram:RateApplicablePercent/text()",
                                                                          namespaces=NS))
        for t in root.xpath(path, namespaces=NS)}


def test_public_establishment_is_outside_the_scope_of_vat(chorus):
    root = etree.fromstring(fx.invoice_cii_xml(_chorus_invoice_in("public", "0")))
    assert _taxes(root) == {"O": ("1980.50", "0.00", ["VATEX-EU-O"], [])}
    assert not root.xpath("//ram:SpecifiedTaxRegistration", namespaces=NS)
    assert "256 B" in _text(root, "//ram:ApplicableHeaderTradeSettlement/ram:ApplicableTradeTax/ram:ExemptionReason")


def test_a_vat_line_of_a_commercial_establishment_is_net_as_on_the_pdf(chorus):
    """TTC 1 860,00 at 5,5 % → HT 1 763,03 + TVA 96,97 (``pdf.vat_breakdown``); the APA line stays exempt."""
    from billing.services.pdf import vat_breakdown

    invoice = _chorus_invoice_in("commercial", "5.5")
    _rows, total_ht, total_vat, total_ttc = vat_breakdown(invoice.lines.all())
    root = etree.fromstring(fx.invoice_cii_xml(invoice))
    assert _taxes(root) == {"S": ("1763.03", "96.97", [], ["5.5"]), "E": ("120.50", "0.00", ["VATEX-EU-132"], ["0"])}
    assert _text(root, "//ram:TaxBasisTotalAmount") == str(total_ht) == "1883.53"
    assert _text(root, "//ram:TaxTotalAmount") == str(total_vat) == "96.97"
    assert _text(root, "//ram:GrandTotalAmount") == str(total_ttc) == "1980.50"


def test_an_xml_the_xsd_refuses_stores_nothing(chorus, monkeypatch):
    invoice = chorus["invoice"]
    with pytest.raises(fx.FacturXError, match="refusé par le schéma XSD en16931"):
        fx.check_xsd(b"<rsm:CrossIndustryInvoice xmlns:rsm='urn:un:unece:uncefact:data:standard:"
                     b"CrossIndustryInvoice:100'/>", "en16931", invoice.number)
    monkeypatch.setattr(fx, "PROFILES", dict(fx.PROFILES, en16931="urn:cen.eu:en16931:2017"))
    monkeypatch.setattr(fx, "_quantity", lambda value: "trente et un")  # not a decimal: the XSD refuses it
    with pytest.raises(fx.FacturXError, match=f"Factur-X de {invoice.number} refusé par le schéma XSD"):
        invoice_store_pdf(invoice)
    invoice.refresh_from_db()
    assert not invoice.pdf


def test_zip_of_a_month_for_chorus_pro_by_command_and_browser(chorus, tmp_path, client):
    from tests.factories import SectionAccessFactory, UserFactory

    section, invoice = chorus["section"], chorus["invoice"]
    note = credit_note_create(invoice=invoice, reason="Erreur", issue_date=date(2026, 1, 31))
    reader = UserFactory(username="lecteur-fx")
    SectionAccessFactory(user=reader, section=section, role="reader")
    client.force_login(reader)
    # The browser never renders PDFs in the request: the period's PDF job comes first.
    refused = client.get(f"/s/{section.alias}/facturation/comptabilite/chorus-pro/?month=2026-01", follow=True)
    assert "2 facture(s) sans PDF Factur-X" in refused.content.decode() and "Préparer les PDF" in \
        html.unescape(refused.content.decode())
    out = tmp_path / "chorus.zip"
    call_command("export_facturx", section=section.alias, month="2026-01", output=str(out))
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == sorted([f"{invoice.number}.pdf", f"{note.number}.pdf"])
        root = _xml_of(archive.read(f"{invoice.number}.pdf"))
    assert _text(root, "//ram:BuyerReference") == "DSOL-ASH"
    rendered = dict(Invoice.objects.filter(pk__in=[invoice.pk, note.pk]).values_list("pk", "pdf_rendered_at"))
    call_command("export_facturx", section=section.alias, month="2026-01", output=str(out))
    assert rendered == dict(Invoice.objects.filter(pk__in=rendered).values_list("pk", "pdf_rendered_at"))  # kept
    with pytest.raises(CommandError, match="Aucune facture Factur-X .* en 2026-03"):
        call_command("export_facturx", section=section.alias, month="2026-03", output=str(out))
    with pytest.raises(CommandError, match="Mois invalide : « 2026-13 »"):
        call_command("export_facturx", section=section.alias, month="2026-13", output=str(out))
    with pytest.raises(CommandError, match="Section inconnue"):
        call_command("export_facturx", section="NOPE", month="2026-01", output=str(out))
    page = client.get(f"/s/{section.alias}/facturation/comptabilite/")
    assert b'id="facturx"' in page.content
    response = client.get(f"/s/{section.alias}/facturation/comptabilite/chorus-pro/?month=2026-01")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert f"facturx-{section.alias}-2026-01.zip" in response["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert len(archive.namelist()) == 2
    refused = client.get(f"/s/{section.alias}/facturation/comptabilite/chorus-pro/?month=2026-03", follow=True)
    assert "Aucune facture Factur-X" in refused.content.decode()
    other = SectionFactory(alias="FX-OTHER")
    assert client.get(f"/s/{other.alias}/facturation/comptabilite/chorus-pro/?month=2026-01").status_code in (403, 404)


def test_the_period_page_links_to_the_zip_of_its_factur_x(chorus, client):
    from billing.models import BillingPeriod
    from tests.factories import SectionAccessFactory, UserFactory

    section = chorus["section"]
    period = BillingPeriod.objects.create(section=section, start=date(2026, 2, 1), end=date(2026, 2, 28),
                                          accounting_date=date(2026, 2, 28), label="02/2026")
    invoice = _issue(_draft(section, chorus["dupont"], [(chorus["lodging"], "Hébergement février", "28", "60.00")],
                            date(2026, 2, 28), payer=chorus["departement"], period=period), date(2026, 3, 2))
    user = UserFactory(username="factu-fx")
    SectionAccessFactory(user=user, section=section, role="clerk")
    client.force_login(user)
    page = client.get(reverse("billing:period-detail", kwargs={"alias": section.alias, "period_pk": period.pk}))
    assert b'data-facturx-month="2026-03"' in page.content
    assert reverse("billing:facturx-zip", kwargs={"alias": section.alias}).encode() + b"?month=2026-03" in page.content
    page = client.get(reverse("billing:invoice-detail", kwargs={"alias": section.alias, "pk": invoice.pk}))
    assert "Factur-X (Chorus Pro) — code service DSOL-ASH, engagement EJ-2026-0042" in page.content.decode()
    pdf = client.get(reverse("billing:invoice-pdf", kwargs={"alias": section.alias, "pk": invoice.pk}))
    assert _text(_xml_of(b"".join(pdf.streaming_content) if pdf.streaming else pdf.content),
                 "//rsm:ExchangedDocument/ram:ID") == invoice.number
    private = client.get(reverse("billing:invoice-detail", kwargs={"alias": section.alias, "pk": chorus["private"].pk}))
    assert b"facturx-badge" not in private.content
