"""Payment pages: the invoice page (state, balance, allocations, « Saisir un règlement »), a
payment's page (cancel, re-allocate), the journal « impayées » filter and the *Compte* tab — with
the section scoping (another section's objects: 404; *lecture*: 403; foreign choices refused)."""
from django.db.models import QuerySet
from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from billing.models import BillingPeriod, Invoice, Payment
from billing.services import payments as svc
from structures.models import SectionAccess
from tests.billing.payment_helpers import issued_invoice, paying_relative, resident_in
from tests.factories import SectionAccessFactory, SectionFactory, UserFactory

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.fixture
def site():
    section = SectionFactory(alias="PAY-A")
    other = SectionFactory(alias="PAY-B", establishment=section.establishment)
    resident = resident_in(section, last_name="MARTIN")
    a = issued_invoice(section, resident, "100.00", date(2026, 1, 5))
    b = issued_invoice(section, resident, "150.00", date(2026, 2, 5))
    foreign = issued_invoice(other, resident_in(other), "70.00", date(2026, 2, 5))
    clerk = UserFactory(username="clerk")
    SectionAccessFactory(user=clerk, section=section, role=SectionAccess.Role.CLERK)
    reader = UserFactory(username="reader")
    SectionAccessFactory(user=reader, section=section, role=SectionAccess.Role.READER)
    return {"section": section, "other": other, "resident": resident, "a": a, "b": b, "foreign": foreign,
            "clerk": clerk, "reader": reader}


def _invoice_url(site, invoice, name="billing:invoice-detail", alias=None):
    return reverse(name, kwargs={"alias": alias or site["section"].alias, "pk": invoice.pk})


def test_invoice_page_enter_a_payment(client, site):
    client.force_login(site["clerk"])
    page = client.get(_invoice_url(site, site["b"])).content.decode()
    assert "Saisir un règlement" in page and "À payer" in page
    response = client.post(_invoice_url(site, site["b"], "billing:invoice-payment"), {
        "on": "2026-03-01", "amount": "200,00", "mode": "cheque", "reference": "0001234", "bank": "Crédit Agricole",
        "drawer": "M. MARTIN", "comment": ""})
    assert response.status_code == 302
    a, b = (Invoice.objects.get(pk=site[k].pk) for k in "ab")
    # B named: 150 → paid; the 50 in excess to A (oldest due).
    assert (b.paid_amount, a.paid_amount) == (D("150.00"), D("50.00"))
    page = client.get(_invoice_url(site, site["b"])).content.decode()
    assert 'data-state="paid"' in page and "0001234" in page and "Saisir un règlement" not in page
    page = client.get(_invoice_url(site, site["a"])).content.decode()
    assert 'data-state="partial"' in page and "Partiellement payée" in page


def test_invalid_payment_shows_french_errors(client, site):
    client.force_login(site["clerk"])
    response = client.post(_invoice_url(site, site["a"], "billing:invoice-payment"),
                           {"on": "2026-03-01", "amount": "-5", "mode": "cheque"})
    assert response.status_code == 400
    assert "montant" in response.content.decode().lower()
    assert not Payment.objects.exists()


def test_scoping_of_the_payment_pages(client, site):
    client.force_login(site["reader"])
    assert client.get(_invoice_url(site, site["a"])).status_code == 200
    assert "Saisir un règlement" not in client.get(_invoice_url(site, site["a"])).content.decode()
    assert client.post(_invoice_url(site, site["a"], "billing:invoice-payment"),
                       {"on": "2026-03-01", "amount": "5", "mode": "cheque"}).status_code == 403
    client.force_login(site["clerk"])
    # Another section's invoice, through this section's URL or its own: 404, nothing recorded.
    assert client.post(_invoice_url(site, site["foreign"], "billing:invoice-payment"),
                       {"on": "2026-03-01", "amount": "5", "mode": "cheque"}).status_code == 404
    assert client.post(_invoice_url(site, site["foreign"], "billing:invoice-payment", alias="PAY-B"),
                       {"on": "2026-03-01", "amount": "5", "mode": "cheque"}).status_code == 404
    assert client.post(_invoice_url(site, site["foreign"], "billing:invoice-credit-apply")).status_code == 404
    foreign_payment = svc.payment_record(section=site["other"], invoice=site["foreign"], on=date(2026, 3, 1),
                                         amount=D("5"), mode="cheque")
    assert client.get(reverse("billing:payment-detail", kwargs={"alias": "PAY-A", "pk": foreign_payment.pk})
                      ).status_code == 404
    assert client.get(reverse("billing:resident-account", kwargs={
        "alias": "PAY-A", "pk": site["foreign"].resident_id})).status_code == 404
    assert Payment.objects.count() == 1


def test_cancel_and_reallocate_on_the_payment_page(client, site):
    payment = svc.payment_record(section=site["section"], invoice=site["a"], on=date(2026, 3, 1), amount=D("100"),
                                 mode="transfer")
    url = reverse("billing:payment-detail", kwargs={"alias": "PAY-A", "pk": payment.pk})
    client.force_login(site["reader"])
    assert client.post(url, {"reason": "erreur"}).status_code == 403
    client.force_login(site["clerk"])
    # A foreign invoice id among the choices is refused, nothing changes.
    response = client.post(url, {f"invoice_{site['foreign'].pk}": "10.00"})
    assert response.status_code == 400 and "Facture inconnue" in response.content.decode()
    response = client.post(url, {f"invoice_{site['a'].pk}": "", f"invoice_{site['b'].pk}": "60.00"})
    assert response.status_code == 302
    assert Invoice.objects.get(pk=site["b"].pk).paid_amount == D("60.00")
    assert Invoice.objects.get(pk=site["a"].pk).paid_amount == D("0.00")
    assert client.post(url, {"reason": ""}).status_code == 400
    assert client.post(url, {"reason": "Virement d'un autre résident"}).status_code == 302
    assert Invoice.objects.get(pk=site["b"].pk).paid_amount == D("0.00")
    assert "Virement d&#x27;un autre résident" in client.get(url).content.decode()


def test_credit_offered_on_the_next_invoice(client, site):
    svc.payment_record(section=site["section"], invoice=site["a"], on=date(2026, 3, 1), amount=D("300"),
                       mode="cheque")
    c = issued_invoice(site["section"], site["resident"], "80.00", date(2026, 3, 5))
    client.force_login(site["clerk"])
    page = client.get(_invoice_url(site, c)).content.decode()
    assert "Imputer le crédit" in page and "50,00" in page
    assert client.post(_invoice_url(site, c, "billing:invoice-credit-apply")).status_code == 302
    c.refresh_from_db()
    assert c.paid_amount == D("50.00")


def test_journal_unpaid_filter(client, site):
    period = BillingPeriod.objects.create(section=site["section"], start=date(2026, 1, 1), end=date(2026, 2, 28),
                                          accounting_date=date(2026, 2, 28), label="T1")
    QuerySet.update(Invoice.objects.filter(pk__in=[site["a"].pk, site["b"].pk]), period=period)  # fixture: bypasses the guard
    svc.payment_record(section=site["section"], invoice=site["a"], on=date(2026, 3, 1), amount=D("100"),
                       mode="cheque")
    client.force_login(site["reader"])
    url = reverse("billing:journal", kwargs={"alias": "PAY-A", "period_pk": period.pk})
    page = client.get(url, {"unpaid": "on"}).content.decode()
    assert site["b"].number in page and site["a"].number not in page
    assert site["a"].number in client.get(url).content.decode()


def test_account_tab_per_debtor_with_running_balance(client, site):
    resident = site["resident"]
    relative = paying_relative(resident, last_name="MARTIN", first_name="Paul")
    r1 = issued_invoice(site["section"], resident, "40.00", date(2026, 2, 10), relative=relative)
    svc.payment_record(section=site["section"], invoice=site["a"], on=date(2026, 3, 1), amount=D("120.00"),
                       mode="cheque", reference="CHQ-77")
    svc.payment_record(section=site["section"], invoice=r1, on=date(2026, 3, 2), amount=D("40.00"), mode="cash")
    client.force_login(site["reader"])
    response = client.get(reverse("billing:resident-account", kwargs={"alias": "PAY-A", "pk": resident.pk}))
    assert response.status_code == 200
    accounts = response.context["accounts"]
    assert [a["label"] for a in accounts][1].startswith("Paul MARTIN") or "MARTIN" in accounts[1]["label"]
    # Resident: +100 (05/01), +150 (05/02), -120 (01/03) → 130.00 owed.
    assert [e["balance"] for e in accounts[0]["entries"]] == [D("100.00"), D("250.00"), D("130.00")]
    # Relative: +40, -40 → 0.
    assert [e["balance"] for e in accounts[1]["entries"]] == [D("40.00"), D("0.00")]
    page = response.content.decode()
    assert "CHQ-77" in page and 'data-tab="account"' in page
    # The tab is linked from the resident file.
    detail = client.get(reverse("residents:detail", kwargs={"alias": "PAY-A", "pk": resident.pk})).content.decode()
    assert reverse("billing:resident-account", kwargs={"alias": "PAY-A", "pk": resident.pk}) in detail


# ---------------------------------------------------------------- fast keying and deposit slip

def _batch_post(rows, on="2026-03-10", mode="cheque"):
    data = {"on": on, "mode": mode, "rows": str(len(rows))}
    for i, row in enumerate(rows):
        for key, value in row.items():
            data[f"line-{i}-{key}"] = value
    return data


def test_batch_lookup_proposes_the_balance(client, site):
    client.force_login(site["clerk"])
    url = reverse("billing:payment-batch-lookup", kwargs={"alias": "PAY-A"})
    svc.payment_record(section=site["section"], invoice=site["b"], on=date(2026, 3, 1), amount=D("100"),
                       mode="cheque")
    html = client.get(url, {"row": "2", "line-2-query": site["b"].number}).content.decode()
    assert f'name="line-2-invoice" value="{site["b"].pk}"' in html and 'value="50,00"' in html
    # The end of the number is enough; a name too (one open invoice each here).
    html = client.get(url, {"row": "0", "line-0-query": site["a"].number[-2:]}).content.decode()
    assert f'value="{site["a"].pk}"' in html
    html = client.get(url, {"row": "0", "line-0-query": "martin"}).content.decode()
    assert "Plusieurs factures ouvertes" in html and site["a"].number in html and site["b"].number in html
    # Another section's invoice is never found.
    html = client.get(url, {"row": "0", "line-0-query": site["foreign"].number}).content.decode()
    assert "Aucune facture ouverte" in html
    client.force_login(site["reader"])
    assert client.get(url, {"row": "0", "line-0-query": "x"}).status_code == 403


def test_batch_all_or_nothing_and_foreign_invoice_refused(client, site):
    client.force_login(site["clerk"])
    url = reverse("billing:payment-batch", kwargs={"alias": "PAY-A"})
    rows = [{"invoice": str(site["a"].pk), "amount": "100,00", "reference": "111", "bank": "LCL", "drawer": "X"},
            {"invoice": str(site["foreign"].pk), "amount": "70,00", "reference": "112"}]
    response = client.post(url, _batch_post(rows))
    assert response.status_code == 400 and "Ligne 2 : facture inconnue dans cette section" in response.content.decode()
    rows[1] = {"invoice": str(site["b"].pk), "amount": "150,00", "reference": ""}
    response = client.post(url, _batch_post(rows))
    assert response.status_code == 400 and "Ligne 2 : le numéro du chèque est obligatoire" in response.content.decode()
    assert not Payment.objects.exists() and Invoice.objects.get(pk=site["a"].pk).paid_amount == D("0.00")


def test_batch_records_and_prints_the_deposit_slip(client, site):
    import io

    from pypdf import PdfReader

    client.force_login(site["clerk"])
    rows = [{"invoice": str(site["a"].pk), "amount": "100,00", "reference": "5550001", "bank": "LCL",
             "drawer": "Mme MARTIN"},
            {"invoice": str(site["b"].pk), "amount": "75,50", "reference": "5550002", "bank": "Banque Postale",
             "drawer": "M. MARTIN"},
            {}]
    response = client.post(reverse("billing:payment-batch", kwargs={"alias": "PAY-A"}), _batch_post(rows))
    assert response.status_code == 302
    assert Invoice.objects.get(pk=site["b"].pk).paid_amount == D("75.50")
    pdf = client.get(response.url + "bordereau.pdf")
    assert pdf["Content-Type"] == "application/pdf"
    text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "Bordereau de remise de chèques" in text
    assert "5550001" in text and "Banque Postale" in text and "Mme MARTIN" in text and "175,50" in text
    other = UserFactory(username="other-clerk")
    SectionAccessFactory(user=other, section=site["other"], role=SectionAccess.Role.CLERK)
    client.force_login(other)
    assert client.get(response.url + "bordereau.pdf").status_code == 404


def test_credit_note_page_shows_where_it_went(client, site):
    from billing.services.issuing import credit_note_create

    svc.payment_record(section=site["section"], invoice=site["a"], on=date(2026, 3, 1), amount=D("40"),
                       mode="cheque")
    note = credit_note_create(invoice=site["a"], reason="Erreur", issue_date=date(2026, 3, 2))
    client.force_login(site["reader"])
    page = client.get(_invoice_url(site, note)).content.decode()
    # -100.00: 60.00 on A, the other 40.00 on B (oldest open invoice of the debtor).
    assert "credit-note-allocations" in page and site["a"].number in page and "60,00" in page
    assert site["b"].number in page and "40,00" in page


def test_admin_shows_payments_read_only(client, site):
    payment = svc.payment_record(section=site["section"], invoice=site["a"], on=date(2026, 3, 1), amount=D("40"),
                                 mode="cheque")
    admin_user = UserFactory(username="root", is_superuser=True, is_staff=True)
    client.force_login(admin_user)
    assert client.get(reverse("admin:billing_payment_changelist")).status_code == 200
    assert client.get(reverse("admin:billing_payment_change", args=[payment.pk])).status_code == 200
    assert client.get(reverse("admin:billing_paymentallocation_changelist")).status_code == 200
    assert client.post(reverse("admin:billing_payment_delete", args=[payment.pk]), {"post": "yes"}).status_code == 403
    assert Payment.objects.filter(pk=payment.pk).exists()
