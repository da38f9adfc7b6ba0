"""SEPA screens: mandates tab (create, sign, change of account, revoke, printable form) and debit
batch pages; refusals (other section → 404, *lecture* → 403)."""
import io
from datetime import timedelta

import pytest
from django.utils import timezone
from openpyxl import load_workbook
from pypdf import PdfReader

from sepa.models import DebitBatch, Mandate
from sepa.services.debits import target_business_day
from structures.models import SectionAccess
from tests.billing.payment_helpers import resident_in
from tests.factories import SectionAccessFactory, SectionFactory, UserFactory
from tests.sepa.helpers import IBAN_A, IBAN_B, creditor_for, debit_invoice, period_for

pytestmark = pytest.mark.django_db


def _client(client, section, role=SectionAccess.Role.CLERK):
    user = UserFactory()
    SectionAccessFactory(user=user, section=section, role=role)
    client.force_login(user)
    return client


def _next_business_day(days=20):
    day = timezone.localdate() + timedelta(days=days)
    while not target_business_day(day):
        day += timedelta(days=1)
    return day


def test_mandate_screens(client):
    section = SectionFactory()
    creditor_for(section)
    resident = resident_in(section)
    c = _client(client, section)
    url = f"/s/{section.alias}/prelevements/residents/{resident.pk}/mandats/"
    page = c.get(url)
    assert page.status_code == 200 and "Mandats SEPA" in page.content.decode()
    c.post(url, {"action": "create", "account_holder": "Jeanne Dupont", "iban": "FR76 3000 6000 0112 3456 7890 189"})
    mandate = Mandate.objects.get()
    assert mandate.status == Mandate.Status.PENDING and mandate.iban == IBAN_A
    response = c.post(url, {"action": "create", "account_holder": "X", "iban": "FR7730006000011234567890189"}, follow=True)
    assert "clé de contrôle de l&#x27;IBAN" in response.content.decode() or "clé de contrôle" in response.content.decode()
    pdf = c.get(f"/s/{section.alias}/prelevements/mandats/{mandate.pk}/formulaire.pdf")
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "Mandat de prélèvement SEPA" in text and mandate.rum in text and "8 semaines" in text
    assert "FR72ZZZ123456" in text and IBAN_A in text
    c.post(url, {"action": "sign", "mandate": mandate.pk, "signature_date": "2026-01-05"})
    mandate.refresh_from_db()
    assert mandate.status == Mandate.Status.ACTIVE
    c.post(url, {"action": "account", "mandate": mandate.pk, "iban": IBAN_B})
    mandate.refresh_from_db()
    assert mandate.iban == IBAN_B and mandate.original_iban == IBAN_A
    c.post(url, {"action": "revoke", "mandate": mandate.pk, "revoked_on": "2026-02-01", "reason": "Décès"})
    mandate.refresh_from_db()
    assert mandate.status == Mandate.Status.REVOKED and mandate.revoke_reason == "Décès"


def test_mandate_refusals(client):
    section = SectionFactory()
    resident = resident_in(section)
    url = f"/s/{section.alias}/prelevements/residents/{resident.pk}/mandats/"
    reader = _client(client, section, SectionAccess.Role.READER)
    assert reader.get(url).status_code == 200
    assert reader.post(url, {"action": "create", "account_holder": "X", "iban": IBAN_A}).status_code == 403
    assert not Mandate.objects.exists()
    other = SectionFactory()
    outsider = UserFactory()
    SectionAccessFactory(user=outsider, section=other)
    client.force_login(outsider)
    assert client.get(url).status_code == 404
    assert client.get(f"/s/{other.alias}/prelevements/residents/{resident.pk}/mandats/").status_code == 404


def test_batch_screens(client):
    section = SectionFactory()
    creditor_for(section)
    period = period_for(section)
    resident = resident_in(section)
    c = _client(client, section)
    c.post(f"/s/{section.alias}/prelevements/residents/{resident.pk}/mandats/",
           {"action": "create", "account_holder": "Dupont", "iban": IBAN_A, "signature_date": "2026-01-05"})
    invoice = debit_invoice(period, resident, "1500.00")
    debit_invoice(period, resident_in(section), "10.00")
    base = f"/s/{section.alias}/prelevements/lots/"
    response = c.post(base, {"period": period.pk, "collection_date": "2026-01-03"}, follow=True)
    assert "pré-notification" in response.content.decode() and not DebitBatch.objects.exists()
    response = c.post(base, {"period": period.pk, "collection_date": _next_business_day().isoformat()})
    batch = DebitBatch.objects.get()
    assert response.url == f"{base}{batch.pk}/"
    page = c.get(response.url).content.decode()
    assert "Aucun mandat." in page and invoice.number in page and "FRST : 1" in page
    assert c.get(f"{base}{batch.pk}/pain008.xml").status_code == 404  # not generated yet
    c.post(f"{base}{batch.pk}/", {"action": "generate"})
    xml = c.get(f"{base}{batch.pk}/pain008.xml")
    assert xml.status_code == 200 and invoice.number.encode() in xml.content
    sheet = load_workbook(io.BytesIO(c.get(f"{base}{batch.pk}/liste.xlsx").content)).active
    assert [cell.value for cell in sheet[2]][1:5] == [Mandate.objects.get().rum, "FRST", 1500, invoice.number]
    c.post(f"{base}{batch.pk}/", {"action": "send"})
    batch.refresh_from_db()
    assert batch.status == DebitBatch.Status.SENT
    response = c.post(f"{base}{batch.pk}/", {"action": "settle"}, follow=True)
    assert "à partir de sa date de prélèvement" in response.content.decode()
    # refusals
    reader = UserFactory()
    SectionAccessFactory(user=reader, section=section, role=SectionAccess.Role.READER)
    client.force_login(reader)
    assert client.get(f"{base}{batch.pk}/").status_code == 200
    assert client.post(f"{base}{batch.pk}/", {"action": "cancel"}).status_code == 403
    outsider = UserFactory()
    SectionAccessFactory(user=outsider, section=SectionFactory())
    client.force_login(outsider)
    assert client.get(f"{base}{batch.pk}/").status_code == 404
    assert client.get(f"{base}{batch.pk}/pain008.xml").status_code == 404


def test_batch_listing_pdf_and_xlsx_with_totals_per_sequence(client):
    from datetime import date

    from sepa.services.debits import debit_batch_create

    section = SectionFactory()
    creditor_for(section)
    period = period_for(section)
    first, second, third = resident_in(section), resident_in(section), resident_in(section)
    from tests.sepa.helpers import active_mandate

    active_mandate(section, first)
    active_mandate(section, second, IBAN_B, last_collection_date=date(2025, 12, 20))
    active_mandate(section, third, rum="+33-1")
    for resident, total in ((first, "1500.00"), (second, "1234.56"), (third, "10.01")):
        debit_invoice(period, resident, total)
    batch = debit_batch_create(period=period, collection_date=_next_business_day())
    c = _client(client, section)
    base = f"/s/{section.alias}/prelevements/lots/{batch.pk}/"
    page = c.get(base).content.decode()
    assert "liste.pdf" in page and "liste.xlsx" in page
    pdf = c.get(f"{base}liste.pdf")
    assert pdf["Content-Type"] == "application/pdf"
    text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    text = text.replace("\u202f", " ").replace("\xa0", " ")
    assert "Total FRST — 2 prélèvement(s)" in text and "1 510,01" in text
    assert "Total RCUR — 1 prélèvement(s)" in text and "1 234,56" in text
    assert "Total du lot — 3 prélèvement(s)" in text and "2 744,57" in text
    assert "FR72ZZZ123456" in text and third.last_name in text
    rows = [[cell.value for cell in row] for row in
            load_workbook(io.BytesIO(c.get(f"{base}liste.xlsx").content)).active.iter_rows()]
    assert rows[0] == ["Débiteur", "RUM", "Séquence", "Montant", "Facture", "Résident"]
    assert "'+33-1" in [r[1] for r in rows]  # formula-like text neutralised by core.exports
    assert ["Total FRST", None, "FRST", 1510.01, "2 prélèvement(s)", None] in rows
    assert ["Total du lot", None, None, 2744.57, "3 prélèvement(s)", None] in rows
    outsider = UserFactory()
    SectionAccessFactory(user=outsider, section=SectionFactory())
    client.force_login(outsider)
    assert client.get(f"{base}liste.pdf").status_code == 404


def test_lapsed_mandates_page_and_todo(client):
    from datetime import date

    from structures.dashboard import dashboard_build
    from sepa.services.mandates import add_months, mandates_lapse
    from tests.sepa.helpers import active_mandate

    section = SectionFactory()
    creditor_for(section)
    today = timezone.localdate()
    old, soon, fine = resident_in(section), resident_in(section), resident_in(section)
    lapsed = active_mandate(section, old, last_collection_date=date(2020, 1, 10))
    lapsing = active_mandate(section, soon, last_collection_date=add_months(today, -36) + timedelta(days=20))
    active_mandate(section, fine, last_collection_date=today - timedelta(days=30))
    mandates_lapse(today=today)
    lapsed.refresh_from_db()
    assert lapsed.status == Mandate.Status.EXPIRED and lapsed.lapsed_on == date(2023, 1, 10)
    c = _client(client, section, SectionAccess.Role.READER)
    assert f"/s/{section.alias}/prelevements/mandats/caducs/" in c.get(f"/s/{section.alias}/prelevements/lots/").content.decode()
    page = c.get(f"/s/{section.alias}/prelevements/mandats/caducs/").content.decode()
    lapsing_part, lapsed_part = page.split('id="mandates-lapsing"')[1].split('id="mandates-lapsed"')
    assert lapsing.rum in lapsing_part and lapsed.rum not in lapsing_part
    assert (add_months(lapsing.last_collection_date, 36)).strftime("%d/%m/%Y") in lapsing_part
    assert lapsed.rum in lapsed_part and "10/01/2023" in lapsed_part and fine.last_name not in page
    user = UserFactory()
    SectionAccessFactory(user=user, section=section)
    board = dashboard_build(user=user, sections=[section], year=today.year, month=today.month)
    todo = next(t for t in board.todos if t.key == "sepa-mandates-lapse")
    assert todo.text == f"1 mandat(s) SEPA caduc(s), 1 bientôt caduc(s) pour {section.alias}"
    assert todo.url == f"/s/{section.alias}/prelevements/mandats/caducs/" and todo.count == 2
    outsider = UserFactory()
    SectionAccessFactory(user=outsider, section=SectionFactory())
    client.force_login(outsider)
    assert client.get(f"/s/{section.alias}/prelevements/mandats/caducs/").status_code == 404


def test_mandate_texts_per_establishment_printed_on_the_form(client):
    from sepa.models import MandateText
    from tests.sepa.helpers import active_mandate

    section = SectionFactory()
    creditor_for(section, sepa_prenotification_days=5)
    mandate = active_mandate(section, resident_in(section))
    pdf_url = f"/s/{section.alias}/prelevements/mandats/{mandate.pk}/formulaire.pdf"
    url = f"/s/{section.alias}/prelevements/mandats/textes/"

    def pdf_text(c):
        text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(c.get(pdf_url).content)).pages)
        return " ".join(text.split())

    manager = _client(client, section, SectionAccess.Role.MANAGER)
    default = pdf_text(manager)
    assert "vous autorisez EHPAD Les Tilleuls à envoyer des instructions" in default
    assert "au moins 5 jours avant la date de débit" in default
    assert "textarea" in manager.get(url).content.decode()
    response = manager.post(url, {"authorisation": "Par ce mandat vous autorisez {creancier} ({ics}) à prélever.",
                                  "notice": "Préavis de {delai} jours. Remboursement sous 8 semaines."})
    assert response.status_code == 302
    changed = pdf_text(manager)
    assert "Par ce mandat vous autorisez EHPAD Les Tilleuls (FR72ZZZ123456) à prélever." in changed
    assert "Préavis de 5 jours. Remboursement sous 8 semaines." in changed
    assert "envoyer des instructions à votre banque" not in changed and mandate.rum in changed
    # A wrong placeholder is refused in French, naming it; nothing saved.
    response = manager.post(url, {"authorisation": "Autorisation {créancier}", "notice": "x"})
    assert response.status_code == 400 and "Champ inconnu : {créancier}" in response.content.decode()
    assert MandateText.objects.get().notice.startswith("Préavis")
    # Emptied: the French default again.
    manager.post(url, {"authorisation": "", "notice": ""})
    assert "vous autorisez EHPAD Les Tilleuls à envoyer des instructions" in pdf_text(manager)
    # Refusals: a clerk may print but not edit; another section's user gets 404.
    clerk = UserFactory()
    SectionAccessFactory(user=clerk, section=section, role=SectionAccess.Role.CLERK)
    client.force_login(clerk)
    assert client.get(url).status_code == 403
    assert client.post(url, {"authorisation": "x", "notice": "y"}).status_code == 403
    outsider = UserFactory()
    SectionAccessFactory(user=outsider, section=SectionFactory(), role=SectionAccess.Role.MANAGER)
    client.force_login(outsider)
    assert client.get(url).status_code == 404
