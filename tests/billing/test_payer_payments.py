"""A payer's payment spread over its beneficiaries' invoices: « associer automatiquement » (exact
amount first, then the period's total, then oldest due), the allocation service with chosen amounts,
and the payer page (section scoping: foreign payer 404, reader 403, foreign invoice refused)."""
from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from billing.models import Invoice, Payment, PaymentAllocation
from billing.services import payer_payments as pp
from billing.services import payments as svc
from payers.models import Payer
from structures.models import SectionAccess
from tests.billing.payment_helpers import issued_invoice, resident_in
from tests.factories import OrganisationFactory, SectionAccessFactory, SectionFactory, UserFactory

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.fixture
def site():
    section = SectionFactory(alias="PP-A")
    other = SectionFactory(alias="PP-B", establishment=section.establishment)
    org = section.establishment.organisation
    payer = Payer.objects.create(organisation=org, code="CD69", name="Département du Rhône", kind=Payer.Kind.DEPARTEMENT)
    r1, r2, r3 = (resident_in(section, last_name=n) for n in ("ALBERT", "BERNARD", "CAMUS"))
    # January (two beneficiaries), February, March; a resident's own invoice and another section's.
    jan1 = issued_invoice(section, r1, "300.00", date(2026, 1, 31), payer=payer)
    jan2 = issued_invoice(section, r2, "200.00", date(2026, 1, 31), payer=payer)
    own = issued_invoice(section, r1, "999.00", date(2026, 1, 31))
    feb = issued_invoice(section, r3, "250.00", date(2026, 2, 28), payer=payer)
    mar = issued_invoice(section, r1, "300.00", date(2026, 3, 31), payer=payer)
    foreign = issued_invoice(other, resident_in(other), "300.00", date(2026, 3, 31), payer=payer)
    clerk = UserFactory(username="clerk")
    SectionAccessFactory(user=clerk, section=section, role=SectionAccess.Role.CLERK)
    reader = UserFactory(username="reader")
    SectionAccessFactory(user=reader, section=section, role=SectionAccess.Role.READER)
    return {"section": section, "other": other, "payer": payer, "jan1": jan1, "jan2": jan2, "own": own, "feb": feb,
            "mar": mar, "foreign": foreign, "clerk": clerk, "reader": reader}


def _opens(site, **period):
    return pp.payer_open_invoices(section=site["section"], payer=site["payer"], **period)


def _ids(site, *names):
    return [site[n].pk for n in names]


def test_open_invoices_of_the_payer_in_the_section_with_beneficiaries(site):
    opens = _opens(site)
    assert [o.invoice.pk for o in opens] == _ids(site, "jan1", "jan2", "feb", "mar")
    assert opens[0].beneficiaries == ["ALBERT " + site["jan1"].resident.first_name]
    assert [o.invoice.pk for o in _opens(site, period_from=date(2026, 2, 1), period_to=date(2026, 2, 28))] == \
        _ids(site, "feb")


def test_auto_match_exact_amount_first(site):
    # 250 = February's balance exactly (not 250 of January's oldest due).
    assert pp.payer_auto_match(_opens(site), D("250.00")) == {site["feb"].pk: D("250.00")}
    # Two invoices of 300: the oldest due.
    assert pp.payer_auto_match(_opens(site), D("300.00")) == {site["jan1"].pk: D("300.00")}


def test_auto_match_the_period_total_then_oldest_due(site):
    january = _opens(site, period_from=date(2026, 1, 1), period_to=date(2026, 1, 31))
    assert pp.payer_auto_match(january, D("500.00")) == {site["jan1"].pk: D("300.00"), site["jan2"].pk: D("200.00")}
    # 620 matches nothing exactly: oldest due first, the last in part.
    assert pp.payer_auto_match(_opens(site), D("620.00")) == {
        site["jan1"].pk: D("300.00"), site["jan2"].pk: D("200.00"), site["feb"].pk: D("120.00")}
    # More than everything: all in full (the rest will be credit).
    assert pp.payer_auto_match(_opens(site), D("2000.00")) == {
        site["jan1"].pk: D("300.00"), site["jan2"].pk: D("200.00"), site["feb"].pk: D("250.00"),
        site["mar"].pk: D("300.00")}
    assert pp.payer_auto_match([], D("10.00")) == {}


def test_payment_record_allocated_rest_is_credit(site):
    debtor = pp.payer_debtor(section=site["section"], payer=site["payer"])
    payment = svc.payment_record_allocated(
        section=site["section"], debtor=debtor, on=date(2026, 4, 10), amount="600.00", mode=Payment.Mode.TRANSFER,
        amounts={site["jan2"].pk: D("200.00"), site["mar"].pk: D("300.00")}, reference="VIR CD69")
    paid = {i.pk: i.paid_amount for i in Invoice.objects.filter(pk__in=_ids(site, "jan1", "jan2", "mar"))}
    assert paid == {site["jan1"].pk: D("0.00"), site["jan2"].pk: D("200.00"), site["mar"].pk: D("300.00")}
    assert svc.debtor_credit(debtor) == D("100.00")
    for invoice in Invoice.objects.filter(pk__in=_ids(site, "jan2", "mar")):
        assert svc.invoice_paid_amount_check(invoice) == invoice.paid_amount
    assert payment.debtor_kind == "payer" and payment.payer_id == site["payer"].pk


@pytest.mark.parametrize("amounts, message", [
    ({"foreign": "300.00"}, "n'est pas due par ce débiteur"),
    ({"own": "10.00"}, "n'est pas due par ce débiteur"),
    ({"jan2": "200.01"}, "dépasse le reste à régler"),
    ({"jan1": "300.00", "mar": "300.01"}, "dépasse le montant du règlement"),
])
def test_payment_record_allocated_refusals_write_nothing(site, amounts, message):
    from django.core.exceptions import ValidationError

    debtor = pp.payer_debtor(section=site["section"], payer=site["payer"])
    with pytest.raises(ValidationError, match=message):
        svc.payment_record_allocated(section=site["section"], debtor=debtor, on=date(2026, 4, 10), amount="600.00",
                                     mode=Payment.Mode.TRANSFER, amounts={site[k].pk: D(v) for k, v in amounts.items()})
    assert not Payment.objects.exists() and not PaymentAllocation.objects.exists()


def _url(site, payer=None, alias=None):
    return reverse("billing:payer_payment", kwargs={"alias": alias or site["section"].alias,
                                                    "payer": (payer or site["payer"]).pk})


def test_payer_page_auto_then_untick_and_save(client, site):
    client.force_login(site["clerk"])
    page = client.get(_url(site)).content.decode()
    assert site["jan1"].number in page and site["foreign"].number not in page and site["own"].number not in page
    assert "ALBERT" in page and "BERNARD" in page
    list_page = client.get(reverse("billing:payer_payment_list", kwargs={"alias": "PP-A"})).content.decode()
    assert "Département du Rhône" in list_page and _url(site) in list_page
    form = {"on": "2026-04-10", "amount": "620,00", "mode": "transfer", "reference": "VIR CD69 AVRIL"}
    page = client.post(_url(site), {**form, "auto": "1"}).content.decode()
    for key in ("jan1", "jan2", "feb"):
        assert f'value="{site[key].pk}" aria-label="{site[key].number}" checked' in page
    assert f'value="{site["mar"].pk}" aria-label="{site["mar"].number}">' in page
    assert f'name="amount-{site["feb"].pk}" value="120,00"' in page
    assert not Payment.objects.exists()  # proposing writes nothing
    # The clerk unticks January's second invoice and saves: 420 allocated, 200 left as credit.
    post = {**form, "save": "1", "pick": [site["jan1"].pk, site["feb"].pk],
            f"amount-{site['jan1'].pk}": "300,00", f"amount-{site['feb'].pk}": "120,00"}
    response = client.post(_url(site), post)
    assert response.status_code == 302
    payment = Payment.objects.get()
    assert response.url == reverse("billing:payment-detail", kwargs={"alias": "PP-A", "pk": payment.pk})
    assert dict(payment.allocations.values_list("invoice_id", "amount")) == {
        site["jan1"].pk: D("300.00"), site["feb"].pk: D("120.00")}
    assert Invoice.objects.get(pk=site["jan2"].pk).paid_amount == D("0.00")
    assert svc.debtor_credit(pp.payer_debtor(section=site["section"], payer=site["payer"])) == D("200.00")


def test_payer_page_scoping(client, site):
    stranger = Payer.objects.create(organisation=OrganisationFactory(), code="CD01", name="Ain",
                                    kind=Payer.Kind.DEPARTEMENT)
    client.force_login(site["clerk"])
    assert client.get(_url(site, payer=stranger)).status_code == 404
    assert client.get(_url(site, alias="PP-B")).status_code == 404
    form = {"on": "2026-04-10", "amount": "300,00", "mode": "transfer", "save": "1"}
    # Another section's invoice of the same payer, a resident's invoice: refused, nothing written.
    for key in ("foreign", "own"):
        response = client.post(_url(site), {**form, "pick": [site[key].pk]})
        assert response.status_code == 400 and "Facture inconnue ou déjà réglée" in response.content.decode()
    response = client.post(_url(site), {**form, "pick": [site["jan2"].pk], f"amount-{site['jan2'].pk}": "250"})
    assert response.status_code == 400 and "dépasse le reste à régler" in response.content.decode()
    assert not Payment.objects.exists()
    client.force_login(site["reader"])
    assert client.get(_url(site)).status_code == 403
    assert client.post(_url(site), {**form, "pick": [site["jan1"].pk]}).status_code == 403
    assert not Payment.objects.exists()
