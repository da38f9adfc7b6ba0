"""The lxml pain.008 builder writes the structure sepaxml writes (the library of the first version),
element for element and text for text, in both versions — only the random and clock fields
(message id, creation time, payment block ids) differ."""
from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from lxml import etree

from sepa.services.pain008 import Transaction, pain008_document, xml_schema

from .helpers import IBAN_A, IBAN_A2, IBAN_B, ICS

VOLATILE = {"MsgId", "CreDtTm", "PmtInfId"}

TRANSACTIONS = [
    Transaction("FACT-2026-000001", Decimal("1523.40"), "FRST", "TIL-1", date(2025, 12, 1), "Éloïse Dupré",
                IBAN_A, "AGRIFRPPXXX", "Facture TIL-2026-000001 Dupré Éloïse"),
    Transaction("FACT-2026-000002", Decimal("0.05"), "RCUR", "TIL-2", date(2024, 3, 9), "Martin Jean",
                IBAN_B, "", "Facture TIL-2026-000002 Martin Jean"),
    Transaction("FACT-2026-000003", Decimal("2000.00"), "FRST", "TIL-3-P7", date(2025, 1, 2), "Lefèvre Anne",
                IBAN_A2, "", "Facture TIL-2026-000003 Lefèvre Paul"),
    Transaction("FACT-2026-000004", Decimal("87.10"), "RCUR", "TIL-4", date(2023, 6, 30), "Noël Ça",
                IBAN_B, "CMCIFRPPXXX", "Facture TIL-2026-000004 Noël Ça"),
]


def _shape(element):
    """(tag, attributes, text, children) with the volatile texts blanked."""
    tag = etree.QName(element).localname
    text = None if tag in VOLATILE else (element.text or "").strip()
    return (tag, dict(element.attrib), text, [_shape(c) for c in element if isinstance(c.tag, str)])


def _sepaxml(version, address, creditor_bic):
    from sepaxml import SepaDD

    config = {"name": "EHPAD Les Tilleuls é", "IBAN": "FR7610107001011234567890129", "batch": True,
              "creditor_id": ICS, "currency": "EUR", "instrument": "CORE"}
    if creditor_bic:
        config["BIC"] = creditor_bic
    if address:
        config["address"] = dict(address)
    sepa = SepaDD(config, schema=version, clean=True)
    for tx in TRANSACTIONS:
        payment = {"name": tx.debtor_name, "IBAN": tx.iban, "amount": int(tx.amount * 100), "type": tx.sequence_type,
                   "collection_date": date(2026, 2, 20), "mandate_id": tx.rum, "mandate_date": tx.signature_date,
                   "description": tx.remittance, "endtoend_id": tx.end_to_end_id}
        if tx.bic:
            payment["BIC"] = tx.bic
        sepa.add_payment(payment)
    return sepa.export(validate=False)


@pytest.mark.parametrize("version", ["pain.008.001.08", "pain.008.001.02"])
@pytest.mark.parametrize("address", [{}, {"street_name": "12 rue des Tilleuls", "postcode": "69003", "town": "Lyon",
                                          "country": "FR"}])
def test_same_structure_as_sepaxml(version, address):
    creditor_bic = "BREDFRPPXXX" if version == "pain.008.001.02" or address else ""
    old = etree.fromstring(_sepaxml(version, address, creditor_bic))
    new_xml, message_id = pain008_document(
        version=version, creditor_name="EHPAD Les Tilleuls é", creditor_iban="FR7610107001011234567890129",
        creditor_bic=creditor_bic, creditor_id=ICS, creditor_address=address, collection_date=date(2026, 2, 20),
        transactions=TRANSACTIONS)
    new = etree.fromstring(new_xml)
    assert new.nsmap == old.nsmap
    assert _shape(new) == _shape(old)
    assert new.findtext(".//{*}GrpHdr/{*}MsgId") == message_id
    assert xml_schema(version).validate(new)


@pytest.mark.parametrize("version", ["pain.008.001.08", "pain.008.001.02"])
def test_amendment_in_the_same_pass(version):
    """Same bank: the old IBAN; another bank: « SMNDA »; both valid against the XSD."""
    same_bank = Transaction("E1", Decimal("10.00"), "RCUR", "R1", date(2025, 1, 2), "A", IBAN_A2, "", "F1",
                            original_iban=IBAN_A)
    other_bank = Transaction("E2", Decimal("10.00"), "RCUR", "R2", date(2025, 1, 2), "B", IBAN_B, "", "F2",
                             original_iban=IBAN_A)
    xml, _ = pain008_document(version=version, creditor_name="C", creditor_iban="FR7610107001011234567890129",
                              creditor_bic="BREDFRPPXXX", creditor_id=ICS, creditor_address={},
                              collection_date=date(2026, 2, 20), transactions=[same_bank, other_bank])
    root = etree.fromstring(xml)
    related = root.findall(".//{*}MndtRltdInf")
    assert [etree.QName(c).localname for c in related[0]] == ["MndtId", "DtOfSgntr", "AmdmntInd", "AmdmntInfDtls"]
    assert related[0].findtext(".//{*}OrgnlDbtrAcct/{*}Id/{*}IBAN") == IBAN_A
    assert related[1].findtext(".//{*}OrgnlDbtrAcct/{*}Id/{*}Othr/{*}Id") == "SMNDA"


def test_zero_amount_and_schema_refusal_in_french():
    zero = Transaction("E1", Decimal("0.00"), "RCUR", "R1", date(2025, 1, 2), "A", IBAN_A, "", "F1", reference="F-1")
    common = dict(version="pain.008.001.08", creditor_name="C", creditor_iban="FR7610107001011234567890129",
                  creditor_bic="", creditor_id=ICS, creditor_address={}, collection_date=date(2026, 2, 20))
    with pytest.raises(ValidationError, match="Montant nul ou négatif pour la facture F-1"):
        pain008_document(**common, transactions=[zero])
    bad = Transaction("E1", Decimal("1.00"), "RCUR", "R1", date(2025, 1, 2), "A", "not-an-iban", "", "F1")
    with pytest.raises(ValidationError, match="ne respecte pas le schéma pain.008.001.08"):
        pain008_document(**common, transactions=[bad])
