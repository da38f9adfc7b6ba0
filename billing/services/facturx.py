"""Factur-X invoices for payers that receive their invoices through Chorus Pro (books.md §3).

* ``invoice_cii_xml`` builds the Cross Industry Invoice (CII D16B, the Factur-X syntax) of an issued
  invoice or credit note with lxml, from its lines (``Decimal``) and the snapshots copied at issue
  (establishment identity, ``Invoice.einvoice``: buyer SIRET, code service, engagement, profile),
  then checks it against the profile's XSD bundled with the ``factur-x`` library (offline).
* ``invoice_facturx_pdf`` renders the invoice HTML as PDF/A-3b with WeasyPrint and embeds the XML
  (``facturx.generate_from_binary``, schematron off: it needs a Saxon server).
* ``facturx_zip`` gathers a month's Factur-X files of a section into a zip for upload to Chorus Pro.

VAT. Care-home billing of an association is exempt (CGI art. 261-7-1° b, which transposes art.
132 § 1 g of directive 2006/112/EC): category ``E``, reason code ``VATEX-EU-132``. A public
establishment is outside the scope of VAT (CGI art. 256 B): category ``O``, ``VATEX-EU-O``. A line
with a VAT rate (commercial establishment) is category ``S``; as line amounts are what the debtor
pays (TTC), the net amounts are derived per rate as on the PDF (``pdf.vat_breakdown``).
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from core.money import ZERO, round_money

from ..models import Invoice

PROFILES = {
    "basic": "urn:cen.eu:en16931:2017#compliant#urn:factur-x.eu:1p0:basic",
    "en16931": "urn:cen.eu:en16931:2017",
    "extended": "urn:cen.eu:en16931:2017#conformant#urn:factur-x.eu:1p0:extended",
}
DEFAULT_PROFILE = "en16931"
NS = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}
# (category, reason code, reason) of a 0 % line per legal status (see the module docstring).
EXEMPTIONS = {
    "public": ("O", "VATEX-EU-O", "Hors champ de la TVA (article 256 B du CGI)"),
    "association": ("E", "VATEX-EU-132", "Exonération de TVA, article 261-7-1° b du CGI"),
    "commercial": ("E", "VATEX-EU-132", "Exonération de TVA, article 261-7-1° b du CGI"),
}
UNIT_CODES = {"day": "DAY", "half_day": "DAY", "month": "MON", "unit": "C62"}
TYPE_CODES = {Invoice.Kind.INVOICE: "380", Invoice.Kind.RAPPEL: "380", Invoice.Kind.CREDIT_NOTE: "381"}
SIRET_SCHEME = "0009"  # ISO 6523 ICD of the SIRET
SIREN_SCHEME = "0002"  # ISO 6523 ICD of the SIREN


class FacturXError(ValidationError):
    """The invoice cannot be a Factur-X (data missing or XML refused by the XSD)."""


def is_facturx(invoice: Invoice) -> bool:
    """Whether the invoice's PDF is a Factur-X: issued to a payer that required Chorus Pro at issue."""
    return bool(invoice.einvoice) and invoice.status in (Invoice.Status.ISSUED, Invoice.Status.CANCELLED)


# ------------------------------------------------------------------------------------------ amounts

@dataclass
class CiiLine:
    label: str
    quantity: Decimal
    unit_code: str
    net_price: Decimal
    net_amount: Decimal
    category: str
    rate: Decimal
    date_from: date
    date_to: date


def _cii_lines(invoice: Invoice, legal_status: str) -> list[CiiLine]:
    """The invoice's lines as net (HT) amounts, positive for a credit note (type 381). Per VAT rate the
    net amounts add up to the base of ``pdf.vat_breakdown``: TTC / (1 + rate) rounded, the last line of
    the rate absorbing the rounding."""
    sign = Decimal(-1) if invoice.kind == Invoice.Kind.CREDIT_NOTE else Decimal(1)
    lines = list(invoice.lines.select_related("product").order_by("position", "pk"))
    exempt_category = EXEMPTIONS.get(legal_status, EXEMPTIONS["association"])[0]
    by_rate: dict[Decimal, list] = {}
    for line in lines:
        by_rate.setdefault(line.vat_rate, []).append(line)
    nets: dict[int, Decimal] = {}
    for rate, group in by_rate.items():
        if not rate:
            for line in group:
                nets[line.pk] = line.amount * sign
            continue
        base = round_money(sum((ln.amount for ln in group), ZERO) / (1 + rate / 100)) * sign
        running = ZERO
        for line in group[:-1]:
            nets[line.pk] = round_money(line.amount * sign / (1 + rate / 100))
            running += nets[line.pk]
        nets[group[-1].pk] = base - running
    result = []
    for line in lines:
        net = nets[line.pk]
        unit = UNIT_CODES.get(line.product.unit if line.product else "unit", "C62")
        quantity = line.quantity
        price = abs(line.unit_price) if not line.vat_rate else round_money(abs(line.unit_price) / (1 + line.vat_rate / 100))
        if quantity and round_money(abs(quantity) * price) == abs(net):
            quantity = abs(quantity) if net >= 0 else -abs(quantity)  # the price is never negative (BR-27)
        else:  # prorata, rounding or a package: one unit at the line's amount
            quantity, unit, price = (Decimal(1) if net >= 0 else Decimal(-1)), "C62", abs(net)
        result.append(CiiLine(label=line.label, quantity=quantity, unit_code=unit, net_price=price, net_amount=net,
                              category="S" if line.vat_rate else exempt_category, rate=line.vat_rate,
                              date_from=line.date_from, date_to=line.date_to))
    return result


def _amount(value: Decimal) -> str:
    return str(round_money(value))


def _quantity(value: Decimal) -> str:
    return format(value.normalize(), "f")


# ------------------------------------------------------------------------------------------ XML

class _Builder:
    def __init__(self):
        from lxml import etree

        self.etree = etree

    def el(self, parent, tag: str, text: str | None = None, **attrs):
        prefix, name = tag.split(":")
        node = self.etree.SubElement(parent, f"{{{NS[prefix]}}}{name}", attrs)
        if text is not None:
            node.text = text
        return node

    def date(self, parent, tag: str, value: date, qualified: bool = False):
        node = self.el(parent, tag)
        self.el(node, "qdt:DateTimeString" if qualified else "udt:DateTimeString", value.strftime("%Y%m%d"),
                format="102")
        return node


def _split_address(text: str) -> list[str]:
    return [ln.strip() for ln in (text or "").splitlines() if ln.strip()]


def _address(b: _Builder, party, *, postal_code: str, city: str, lines: list[str]):
    address = b.el(party, "ram:PostalTradeAddress")
    if postal_code:
        b.el(address, "ram:PostcodeCode", postal_code)
    for tag, line in zip(("ram:LineOne", "ram:LineTwo", "ram:LineThree"), lines[:3]):
        b.el(address, tag, line[:255])
    if city:
        b.el(address, "ram:CityName", city)
    b.el(address, "ram:CountryID", "FR")


def _buyer_address(invoice: Invoice) -> tuple[str, str, list[str]]:
    """(postal code, city, street lines) of the debtor address copied at issue: its last line is
    « CP Ville » when it starts with five digits."""
    lines = _split_address(invoice.debtor_address)
    if lines and lines[-1][:5].isdigit():
        last = lines.pop()
        return last[:5], last[5:].strip(), lines
    payer = invoice.payer
    return (payer.postal_code if payer else ""), (payer.city if payer else ""), lines


def invoice_cii_xml(invoice: Invoice) -> bytes:
    """The CII XML of an issued Factur-X invoice, checked against its profile's XSD."""
    data = invoice.einvoice or {}
    if not data:
        raise FacturXError(_("La facture %(number)s n'est pas adressée à un payeur Chorus Pro.") % {
            "number": invoice.number or invoice.pk})
    profile = data.get("profile") or DEFAULT_PROFILE
    if profile not in PROFILES:
        raise FacturXError(_("Profil Factur-X inconnu : « %(profile)s » (basic, en16931 ou extended).") % {
            "profile": profile})
    est = invoice.establishment_snapshot or {}
    legal_status = est.get("legal_status", "association")
    lines = _cii_lines(invoice, legal_status)
    b = _Builder()
    root = b.etree.Element(f"{{{NS['rsm']}}}CrossIndustryInvoice", nsmap=NS)
    context = b.el(root, "rsm:ExchangedDocumentContext")
    b.el(b.el(context, "ram:GuidelineSpecifiedDocumentContextParameter"), "ram:ID", PROFILES[profile])
    document = b.el(root, "rsm:ExchangedDocument")
    b.el(document, "ram:ID", invoice.number)
    b.el(document, "ram:TypeCode", TYPE_CODES.get(invoice.kind, "380"))
    b.date(document, "ram:IssueDateTime", invoice.issue_date)
    if invoice.resident_name:
        b.el(b.el(document, "ram:IncludedNote"), "ram:Content",
             _("Résident : %(name)s") % {"name": invoice.resident_name})
    category, reason_code, reason = EXEMPTIONS.get(legal_status, EXEMPTIONS["association"])
    b.el(b.el(document, "ram:IncludedNote"), "ram:Content", reason)
    transaction = b.el(root, "rsm:SupplyChainTradeTransaction")
    for position, line in enumerate(lines, start=1):
        item = b.el(transaction, "ram:IncludedSupplyChainTradeLineItem")
        b.el(b.el(item, "ram:AssociatedDocumentLineDocument"), "ram:LineID", str(position))
        b.el(b.el(item, "ram:SpecifiedTradeProduct"), "ram:Name", line.label[:255])
        agreement = b.el(item, "ram:SpecifiedLineTradeAgreement")
        b.el(b.el(agreement, "ram:NetPriceProductTradePrice"), "ram:ChargeAmount", str(line.net_price))
        b.el(b.el(item, "ram:SpecifiedLineTradeDelivery"), "ram:BilledQuantity", _quantity(line.quantity),
             unitCode=line.unit_code)
        settlement = b.el(item, "ram:SpecifiedLineTradeSettlement")
        tax = b.el(settlement, "ram:ApplicableTradeTax")
        b.el(tax, "ram:TypeCode", "VAT")
        b.el(tax, "ram:CategoryCode", line.category)
        b.el(tax, "ram:RateApplicablePercent", _quantity(line.rate))
        period = b.el(settlement, "ram:BillingSpecifiedPeriod")
        b.date(period, "ram:StartDateTime", line.date_from)
        b.date(period, "ram:EndDateTime", line.date_to)
        b.el(b.el(settlement, "ram:SpecifiedTradeSettlementLineMonetarySummation"), "ram:LineTotalAmount",
             _amount(line.net_amount))
    agreement = b.el(transaction, "ram:ApplicableHeaderTradeAgreement")
    if data.get("service_code"):
        b.el(agreement, "ram:BuyerReference", data["service_code"][:100])
    seller = b.el(agreement, "ram:SellerTradeParty")
    b.el(seller, "ram:Name", est.get("name", ""))
    siret = est.get("siret", "")
    if siret:
        b.el(b.el(seller, "ram:SpecifiedLegalOrganization"), "ram:ID", siret, schemeID=SIRET_SCHEME)
    _address(b, seller, postal_code=est.get("postal_code", ""), city=est.get("city", ""),
             lines=_split_address(est.get("address", "")))
    if category == "E" and siret:
        # BR-E-02: an exempt invoice names the seller's tax registration (BT-32, scheme FC): the SIREN.
        b.el(b.el(seller, "ram:SpecifiedTaxRegistration"), "ram:ID", siret[:9], schemeID="FC")
    buyer = b.el(agreement, "ram:BuyerTradeParty")
    b.el(buyer, "ram:Name", (data.get("buyer_name") or invoice.debtor_name)[:255])
    b.el(b.el(buyer, "ram:SpecifiedLegalOrganization"), "ram:ID", data["buyer_siret"], schemeID=SIRET_SCHEME)
    postal_code, city, street = _buyer_address(invoice)
    _address(b, buyer, postal_code=postal_code, city=city, lines=street)
    if data.get("engagement_number"):
        b.el(b.el(agreement, "ram:BuyerOrderReferencedDocument"), "ram:IssuerAssignedID",
             data["engagement_number"])
    delivery = b.el(transaction, "ram:ApplicableHeaderTradeDelivery")
    b.date(b.el(delivery, "ram:ActualDeliverySupplyChainEvent"), "ram:OccurrenceDateTime", invoice.date_to)
    settlement = b.el(transaction, "ram:ApplicableHeaderTradeSettlement")
    b.el(settlement, "ram:PaymentReference", invoice.number)
    b.el(settlement, "ram:InvoiceCurrencyCode", "EUR")
    if est.get("iban") and invoice.kind != Invoice.Kind.CREDIT_NOTE:
        means = b.el(settlement, "ram:SpecifiedTradeSettlementPaymentMeans")
        b.el(means, "ram:TypeCode", "58")  # SEPA credit transfer
        b.el(b.el(means, "ram:PayeePartyCreditorFinancialAccount"), "ram:IBANID", est["iban"].replace(" ", ""))
    taxes: dict[tuple[str, Decimal], Decimal] = {}
    for line in lines:
        taxes[(line.category, line.rate)] = taxes.get((line.category, line.rate), ZERO) + line.net_amount
    total_net = sum((ln.net_amount for ln in lines), ZERO)
    total_vat = ZERO
    sign = Decimal(-1) if invoice.kind == Invoice.Kind.CREDIT_NOTE else Decimal(1)
    for (cat, rate), basis in sorted(taxes.items()):
        vat = ZERO
        if rate:
            gross = sum((ln.amount for ln in invoice.lines.all() if ln.vat_rate == rate), ZERO) * sign
            vat = gross - basis  # the PDF's figure: TTC − HT
        total_vat += vat
        tax = b.el(settlement, "ram:ApplicableTradeTax")
        b.el(tax, "ram:CalculatedAmount", _amount(vat))
        b.el(tax, "ram:TypeCode", "VAT")
        if cat in ("E", "O"):
            b.el(tax, "ram:ExemptionReason", reason)
        b.el(tax, "ram:BasisAmount", _amount(basis))
        b.el(tax, "ram:CategoryCode", cat)
        if cat in ("E", "O"):
            b.el(tax, "ram:ExemptionReasonCode", reason_code)
        if cat != "O":
            b.el(tax, "ram:RateApplicablePercent", _quantity(rate))
    period = b.el(settlement, "ram:BillingSpecifiedPeriod")
    b.date(period, "ram:StartDateTime", invoice.date_from)
    b.date(period, "ram:EndDateTime", invoice.date_to)
    if invoice.due_date:
        b.date(b.el(settlement, "ram:SpecifiedTradePaymentTerms"), "ram:DueDateDateTime", invoice.due_date)
    grand = total_net + total_vat
    if grand != round_money(abs(invoice.total)):
        raise FacturXError(_("Factur-X de %(number)s : le total calculé des lignes (%(lines)s) diffère du total de "
                             "la facture (%(total)s).") % {"number": invoice.number, "lines": grand,
                                                           "total": abs(invoice.total)})
    summation = b.el(settlement, "ram:SpecifiedTradeSettlementHeaderMonetarySummation")
    b.el(summation, "ram:LineTotalAmount", _amount(total_net))
    b.el(summation, "ram:TaxBasisTotalAmount", _amount(total_net))
    b.el(summation, "ram:TaxTotalAmount", _amount(total_vat), currencyID="EUR")
    b.el(summation, "ram:GrandTotalAmount", _amount(grand))
    b.el(summation, "ram:DuePayableAmount", _amount(grand))
    credited = invoice.credited_invoice if invoice.kind == Invoice.Kind.CREDIT_NOTE else None
    if credited is not None and credited.number:
        referenced = b.el(settlement, "ram:InvoiceReferencedDocument")
        b.el(referenced, "ram:IssuerAssignedID", credited.number)
        b.date(referenced, "ram:FormattedIssueDateTime", credited.issue_date, qualified=True)
    xml = b.etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    check_xsd(xml, profile, invoice.number)
    return xml


def check_xsd(xml: bytes, profile: str, number: str = "") -> None:
    """Validate against the profile's Factur-X XSD (bundled with the library: offline)."""
    import facturx

    try:
        facturx.xml_check_xsd(xml, flavor="factur-x", level=profile)
    except Exception as exc:  # the library raises a bare Exception with the lxml message
        raise FacturXError(_("Factur-X de %(number)s refusé par le schéma XSD %(profile)s : %(error)s") % {
            "number": number, "profile": profile, "error": exc}) from exc


# ------------------------------------------------------------------------------------------ PDF

def invoice_facturx_pdf(invoice: Invoice, *, font_config=None) -> bytes:
    """The invoice as a Factur-X: PDF/A-3b rendered by WeasyPrint with the CII XML embedded."""
    import facturx

    from .pdf import html_to_pdf, invoice_render_html

    xml = invoice_cii_xml(invoice)  # first: a refused XML stores nothing
    pdf = html_to_pdf(invoice_render_html(invoice), font_config=font_config, pdf_variant="pdf/a-3b")
    est = invoice.establishment_snapshot or {}
    title = ("Avoir" if invoice.kind == Invoice.Kind.CREDIT_NOTE else "Facture") + f" {invoice.number}"
    metadata = {"author": est.get("name", ""), "keywords": "Factur-X, Chorus Pro", "title": title,
                "subject": title + f" — {invoice.debtor_name}"}
    return facturx.generate_from_binary(pdf, xml, flavor="factur-x", level=invoice.einvoice.get("profile")
                                        or DEFAULT_PROFILE, check_xsd=True, check_schematron=False,
                                        pdf_metadata=metadata, lang="fr-FR")


# ------------------------------------------------------------------------------------------ zip

def month_bounds(month: str) -> tuple[date, date]:
    """(first, last day) of ``AAAA-MM``; a French message otherwise."""
    import calendar

    try:
        year, number = (int(part) for part in month.split("-"))
        first = date(year, number, 1)
    except (ValueError, TypeError) as exc:
        raise ValidationError(_("Mois invalide : « %(value)s » (attendu AAAA-MM).") % {"value": month}) from exc
    return first, date(year, number, calendar.monthrange(year, number)[1])


def section_facturx_invoices(section, first: date, last: date):
    """The section's issued Factur-X invoices and credit notes issued between ``first`` and ``last``."""
    return (Invoice.objects.filter(section=section, issue_date__gte=first, issue_date__lte=last,
                                   status__in=(Invoice.Status.ISSUED, Invoice.Status.CANCELLED))
            .exclude(einvoice={}).exclude(number="").order_by("kind", "number"))


def facturx_zip(section, month: str, *, render_missing: bool = True) -> tuple[bytes, int]:
    """(zip bytes, file count) of the section's Factur-X of ``month`` (stored PDFs, rendered first if
    missing or not Factur-X yet — unless ``render_missing`` is off: the browser never renders in the
    request, it asks for the period's PDF job first), for batch upload to Chorus Pro. Refuses an empty
    month."""
    from .pdf import _has_stored_pdf, invoice_store_pdf, invoices_for_render

    first, last = month_bounds(month)
    invoices = list(invoices_for_render().filter(pk__in=section_facturx_invoices(section, first, last)
                                                  .values("pk")).order_by("kind", "number"))
    if not invoices:
        raise ValidationError(_("Aucune facture Factur-X (payeur Chorus Pro) émise en %(month)s pour la section "
                                "%(alias)s.") % {"month": month, "alias": section.alias})
    if not render_missing:
        missing = [i.number for i in invoices if not _has_stored_pdf(i) or not _stored_is_facturx(i)]
        if missing:
            raise ValidationError(_(
                "%(count)s facture(s) sans PDF Factur-X (%(numbers)s) : préparez d'abord les PDF de la période "
                "(« Préparer les PDF » sur la page de la période), puis téléchargez le zip.") % {
                "count": len(missing), "numbers": ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for invoice in invoices:
            if not _has_stored_pdf(invoice) or not _stored_is_facturx(invoice):
                invoice_store_pdf(invoice)
            with invoice.pdf.storage.open(invoice.pdf.name, "rb") as handle:
                info = zipfile.ZipInfo(f"{invoice.number}.pdf", date_time=(last.year, last.month, last.day, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, handle.read())
    return buffer.getvalue(), len(invoices)


def _stored_is_facturx(invoice: Invoice) -> bool:
    """Whether the stored PDF carries its Factur-X XML (read from the PDF's embedded files: the name
    may sit in a compressed object stream, never search the raw bytes)."""
    with invoice.pdf.storage.open(invoice.pdf.name, "rb") as handle:
        data = handle.read()
    import facturx

    try:
        _filename, xml = facturx.get_facturx_xml_from_pdf(data, check_xsd=False)
    except Exception:  # noqa: BLE001 - an unreadable file is simply not a Factur-X: it is rendered again
        return False
    return bool(xml)


def facturx_zip_name(section, month: str) -> str:
    return f"facturx-{section.alias}-{month}.zip"
