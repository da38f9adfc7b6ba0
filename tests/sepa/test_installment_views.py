"""Mensualisation screens: settings (responsable), the resident's plan next to the mandates
(estimate, create, postpone, stop), the schedule PDF (text extracted), the Compte tab panel, the
yearly régularisation, the batch page with an installment; refusals (other section → 404,
*lecture* → 403, *facturation* on the settings → 403)."""
import io
from datetime import date
from decimal import Decimal

import pytest
from pypdf import PdfReader

from sepa.models import Installment, InstallmentPlan, InstallmentSettings
from sepa.services import debits
from sepa.services import installments as svc
from structures.models import SectionAccess
from tests.billing.payment_helpers import resident_in
from tests.factories import SectionAccessFactory, SectionFactory, UserFactory
from tests.sepa.helpers import active_mandate, creditor_for, debit_invoice, period_for
from tests.sepa.test_views import _client

pytestmark = pytest.mark.django_db
D = Decimal


def _pdf_text(response) -> str:
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)


def test_settings_page(client):
    section = SectionFactory()
    url = f"/s/{section.alias}/prelevements/mensualisation/parametres/"
    clerk = _client(client, section)
    assert clerk.get(url).status_code == 403  # settings: responsable only
    manager = _client(client, section, SectionAccess.Role.MANAGER)
    page = manager.get(url).content.decode()
    assert "Échéancier de prélèvements mensuels" in page and 'value="10"' in page
    bad = manager.post(url, {"installment_count": "13", "debit_day": "5", "title": "T", "header_text": "H",
                             "footer_text": "F"})
    assert bad.status_code == 400 and not InstallmentSettings.objects.exists()
    manager.post(url, {"installment_count": "12", "debit_day": "5", "title": "Échéancier 2026",
                       "header_text": "Bonjour", "footer_text": "Merci"})
    saved = InstallmentSettings.objects.get(section=section)
    assert (saved.installment_count, saved.debit_day, saved.title) == (12, 5, "Échéancier 2026")


def test_resident_plan_screens_and_schedule_pdf(client, billing_setup):
    section = billing_setup.section
    creditor_for(section)
    stay = billing_setup.stay(entry=date(2025, 6, 1))
    resident = stay.resident
    mandate = active_mandate(section, resident)
    c = _client(client, section)
    mandates_page = c.get(f"/s/{section.alias}/prelevements/residents/{resident.pk}/mandats/").content.decode()
    url = f"/s/{section.alias}/prelevements/residents/{resident.pk}/mensualisation/"
    assert url in mandates_page  # reachable from the mandates tab
    page = c.get(url).content.decode()
    assert "Utiliser la mensualisation" in page and "après les tarifs" in page
    estimate = c.post(url, {"action": "estimate", "first_month": "2026-01", "installment_count": "10",
                            "debit_day": "10", "yearly_amount": ""}).content.decode()
    assert 'value="25915,00"' in estimate and "ticket modérateur" in estimate
    bad = c.post(url, {"action": "create", "first_month": "janvier", "yearly_amount": "100"})
    assert bad.status_code == 400 and "Mois de la première échéance invalide : « janvier »" in bad.content.decode()
    assert not InstallmentPlan.objects.exists()
    c.post(url, {"action": "create", "first_month": "2026-01", "installment_count": "10", "debit_day": "10",
                 "yearly_amount": "100,00", "estimate_note": "Estimation test"})
    plan = InstallmentPlan.objects.get()
    assert plan.yearly_amount == D("100.00") and plan.estimate_note == "Estimation test"
    first = plan.installments.get(number=1)
    c.post(url, {"action": "postpone", "plan": plan.pk, "installment": first.pk})
    page = c.get(url).content.decode()
    assert "Reportée" in page and "11,11" in page and "11,12" in page
    assert "100,00 € en 10 échéances prélevées le 10 de chaque mois à partir de 01/2026" in page.replace("\u00a0", " ")
    text = _pdf_text(c.get(f"/s/{section.alias}/prelevements/mensualisation/{plan.pk}/echeancier.pdf"))
    assert "Échéancier de prélèvements mensuels" in text and "pré-notification" in text
    assert mandate.rum in text and "FR72ZZZ123456" in text and resident.full_name in text
    assert "10/02/2026" in text and "11,11" in text and "11,12" in text and "Reportée" in text
    assert "100,00" in text  # total of the installments still due
    c.post(url, {"action": "stop", "plan": plan.pk})
    plan.refresh_from_db()
    assert plan.status == InstallmentPlan.Status.STOPPED
    assert "Utiliser la mensualisation" in c.get(url).content.decode()  # a new plan can be made


def test_refusals(client):
    section = SectionFactory()
    creditor_for(section)
    resident = resident_in(section)
    plan = svc.plan_create(section=section, resident=resident, yearly_amount="100", first_month=date(2026, 1, 1))
    url = f"/s/{section.alias}/prelevements/residents/{resident.pk}/mensualisation/"
    pdf = f"/s/{section.alias}/prelevements/mensualisation/{plan.pk}/echeancier.pdf"
    reader = _client(client, section, SectionAccess.Role.READER)
    assert reader.get(url).status_code == 200 and reader.get(pdf).status_code == 200
    first = plan.installments.get(number=1)
    assert reader.post(url, {"action": "postpone", "plan": plan.pk, "installment": first.pk}).status_code == 403
    assert Installment.objects.get(pk=first.pk).state == Installment.State.DUE
    other = SectionFactory()
    outsider = UserFactory()
    SectionAccessFactory(user=outsider, section=other)
    client.force_login(outsider)
    assert client.get(url).status_code == 404
    assert client.get(pdf).status_code == 404
    assert client.post(url, {"action": "postpone", "plan": plan.pk, "installment": first.pk}).status_code == 404
    # through the outsider's own section: the resident and the plan are not found either
    assert client.get(f"/s/{other.alias}/prelevements/residents/{resident.pk}/mensualisation/").status_code == 404
    assert client.get(f"/s/{other.alias}/prelevements/mensualisation/{plan.pk}/echeancier.pdf").status_code == 404
    assert client.post(f"/s/{other.alias}/prelevements/residents/{resident.pk}/mensualisation/",
                       {"action": "stop", "plan": plan.pk}).status_code == 404
    plan.refresh_from_db()
    assert plan.status == InstallmentPlan.Status.ACTIVE and Installment.objects.get(pk=first.pk).state == "due"
    assert client.get(f"/s/{section.alias}/prelevements/mensualisation/regularisation/").status_code == 404
    assert client.get(f"/s/{section.alias}/prelevements/mensualisation/parametres/").status_code == 404
    own = client.get(f"/s/{other.alias}/prelevements/mensualisation/regularisation/?annee=2026").content.decode()
    assert resident.full_name not in own and "Aucun échéancier" in own


def test_account_tab_regularisation_and_batch_page(client):
    section = SectionFactory()
    creditor_for(section)
    period = period_for(section)
    resident = resident_in(section)
    active_mandate(section, resident)
    plan = svc.plan_create(section=section, resident=resident, yearly_amount="1200", first_month=date(2026, 1, 1),
                           installment_count=10, debit_day=10)
    invoice = debit_invoice(period, resident, "150.00")
    batch = debits.debit_batch_create(period=period, collection_date=date(2026, 2, 20), today=date(2026, 2, 2))
    c = _client(client, section)
    page = c.get(f"/s/{section.alias}/prelevements/lots/{batch.pk}/").content.decode()
    assert f"Mensualisation 01/2026 échéance 1/10 {resident.full_name}" in page
    assert "Mensualisé : réglée par les échéances" in page and invoice.number in page
    debits.debit_batch_mark_sent(batch=debits.debit_batch_generate(batch=batch))
    debits.debit_batch_settle(batch=batch, today=date(2026, 2, 20))
    account = c.get(f"/s/{section.alias}/facturation/residents/{resident.pk}/compte/")
    html = account.content.decode()
    assert 'id="account-installments"' in html and "120,00" in html and "150,00" in html and "-30,00" in html
    regul = c.get(f"/s/{section.alias}/prelevements/mensualisation/regularisation/?annee=2026").content.decode()
    assert f'data-plan="{plan.pk}"' in regul and "-30,00" in regul and "Régularisation de l" in regul
    assert "Aucun échéancier" in c.get(f"/s/{section.alias}/prelevements/mensualisation/regularisation/?annee=2025") \
        .content.decode()
    links = c.get(f"/s/{section.alias}/prelevements/lots/").content.decode()
    assert "/prelevements/mensualisation/regularisation/" in links


def test_represent_a_returned_installment_from_the_plan_page(client):
    """« Représenter » on a returned installment's row: refused in French for a revoked mandate, done
    for an active one (then offered no more); *lecture* → 403, another section → 404."""
    from sepa.models import Mandate
    from sepa.services.returns import returns_apply
    from tests.sepa.test_returns import pain002

    section = SectionFactory()
    creditor_for(section)
    period = period_for(section)
    resident = resident_in(section)
    mandate = active_mandate(section, resident)
    plan = svc.plan_create(section=section, resident=resident, yearly_amount="1200", first_month=date(2026, 1, 1),
                           installment_count=10, debit_day=10)
    batch = debits.debit_batch_create(period=period, collection_date=date(2026, 2, 20), today=date(2026, 2, 2))
    debits.debit_batch_mark_sent(batch=debits.debit_batch_generate(batch=batch))
    returns_apply(content=pain002("001.03", [(f"ECHEANCE-{plan.pk}-01", "AM04")]), on=date(2026, 2, 10))
    first = plan.installments.get(number=1)
    url = f"/s/{section.alias}/prelevements/residents/{resident.pk}/mensualisation/"
    represent = {"action": "represent", "plan": plan.pk, "installment": first.pk}

    reader = _client(client, section, SectionAccess.Role.READER)
    page = reader.get(url).content.decode()
    assert "AM04 : Provision insuffisante" in page and 'value="represent"' not in page
    assert reader.post(url, represent).status_code == 403
    other = SectionFactory()
    outsider = UserFactory()
    SectionAccessFactory(user=outsider, section=other)
    client.force_login(outsider)
    assert client.post(url, represent).status_code == 404
    assert client.post(f"/s/{other.alias}/prelevements/residents/{resident.pk}/mensualisation/",
                       represent).status_code == 404
    assert Installment.objects.get(pk=first.pk).state == Installment.State.REJECTED

    clerk = _client(client, section)
    assert 'value="represent"' in clerk.get(url).content.decode()
    Mandate.objects.filter(pk=mandate.pk).update(status=Mandate.Status.REVOKED)
    refused = clerk.post(url, represent, follow=True).content.decode()
    assert "L&#x27;échéance n° 1 ne peut pas être représentée : mandat révoqué." in refused
    assert Installment.objects.get(pk=first.pk).state == Installment.State.REJECTED
    Mandate.objects.filter(pk=mandate.pk).update(status=Mandate.Status.ACTIVE)
    done = clerk.post(url, represent, follow=True).content.decode()
    assert "Échéance n° 1 représentée : le prochain lot de prélèvements la prélève." in done
    first.refresh_from_db()
    assert (first.state, first.representations) == (Installment.State.DUE, 1)
    assert "Représentée le" in done and 'value="represent"' not in done
    again = clerk.post(url, represent, follow=True).content.decode()
    assert "a déjà été représentée" in again
