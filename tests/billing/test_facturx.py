"""Factur-X for payers that receive their invoices through Chorus Pro (books.md §3, issue 15).

January 2026, association EHPAD (exempt: category E, VATEX-EU-132): the département of the Rhône
(Chorus Pro, SIRET, code service, engagement) is invoiced 31 days of hébergement at 60,00 (1 860,00)
and 120,50 of APA; a credit note cancels the invoice. Mrs Dupont (no Chorus Pro) gets a plain PDF.
"""
import io
import zipfile
from datetime import date
from decimal import Decimal

import facturx
import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
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


def _draft(section, resident, lines, on, *, payer=None):
    invoice = Invoice.objects.create(
        section=section, establishment=section.establishment,
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
