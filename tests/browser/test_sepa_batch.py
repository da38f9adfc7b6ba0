"""In chromium: a billing clerk prepares the debit batch of an issued period (the totals per sequence
type and the invoices left out with their reason shown), generates the pain.008, downloads it (valid
against the XSD) and marks the batch sent to the bank (the FRST mandate becomes RCUR)."""
from datetime import timedelta

import pytest
from django.utils import timezone
from lxml import etree
from playwright.sync_api import expect

from sepa.models import DebitBatch, Mandate
from sepa.services.debits import target_business_day, xml_schema
from structures.models import SectionAccess
from tests.billing.payment_helpers import resident_in
from tests.factories import SectionAccessFactory, SectionFactory, UserFactory
from tests.sepa.helpers import IBAN_B, active_mandate, creditor_for, debit_invoice, period_for


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_build_generate_download_and_send_a_debit_batch(live_server, page):
    section = SectionFactory(alias="SEP-HP")
    creditor_for(section)
    period = period_for(section)
    durand, martin, petit = (resident_in(section, last_name=name) for name in ("DURAND", "MARTIN", "PETIT"))
    first = active_mandate(section, durand)
    active_mandate(section, martin, IBAN_B, last_collection_date=timezone.localdate() - timedelta(days=40))
    a = debit_invoice(period, durand, "1850.40")
    debit_invoice(period, martin, "2010.00")
    left_out = debit_invoice(period, petit, "95.00")  # no mandate
    SectionAccessFactory(user=UserFactory(username="prelev"), section=section, role=SectionAccess.Role.CLERK)
    collection = timezone.localdate() + timedelta(days=20)
    while not target_business_day(collection):
        collection += timedelta(days=1)

    base = live_server.url
    page.goto(f"{base}/connexion/")
    page.fill("#id_username", "prelev")
    page.fill("#id_password", "demo")
    page.get_by_role("button", name="Se connecter").click()
    page.goto(f"{base}/s/SEP-HP/")
    page.get_by_role("link", name="Prélèvements", exact=True).first.click()
    expect(page.get_by_role("heading", name="Lots de prélèvements")).to_be_visible()
    page.locator("#batch-create select[name=period]").select_option(str(period.pk))
    page.locator("#batch-create input[name=collection_date]").fill(collection.isoformat())
    page.get_by_role("button", name="Préparer le lot").click()

    totals = page.locator("#batch-totals")
    expect(totals).to_contain_text("2 prélèvements")
    expect(totals).to_contain_text("3 860,40")
    expect(totals).to_contain_text("FRST : 1")
    expect(totals).to_contain_text("RCUR : 1")
    expect(page.locator("#batch-exclusions")).to_contain_text(f"{left_out.number}")
    expect(page.locator("#batch-exclusions")).to_contain_text("Aucun mandat.")
    expect(page.locator("#batch-status")).to_have_text("Brouillon")

    page.get_by_role("button", name="Générer le fichier (contrôlé par le XSD)").click()
    expect(page.locator("#batch-status")).to_have_text("Fichier généré")
    with page.expect_download() as download_info:
        page.locator("#batch-xml").click()
    xml = open(download_info.value.path(), "rb").read()
    root = etree.fromstring(xml)
    assert xml_schema("pain.008.001.08").validate(root)
    assert a.number in [e.text for e in root.iter("{*}EndToEndId")]
    assert root.findtext(".//{*}GrpHdr/{*}NbOfTxs") == "2" and root.findtext(".//{*}GrpHdr/{*}CtrlSum") == "3860.40"

    page.get_by_role("button", name="Marquer envoyé à la banque").click()
    expect(page.locator("#batch-status")).to_have_text("Envoyé à la banque")
    batch = DebitBatch.objects.get()
    assert batch.status == DebitBatch.Status.SENT
    first.refresh_from_db()
    assert first.next_sequence_type == Mandate.SequenceType.RCUR and first.last_collection_date == collection
