"""*Soldes à rembourser* and the refund of a credit: who is listed (departed, with a credit, on their own
account or their paying relative's), the refund entry (cheque or transfer, at most the credit), the
section scoping of the pages."""
from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from billing.models import Payment
from billing.services import payments as pay
from billing.services import refunds
from billing.services.payments import Debtor
from residents.models import Stay
from structures.models import SectionAccess
from tests.billing.payment_helpers import issued_invoice, paying_relative
from tests.factories import ResidentFactory, SectionAccessFactory, SectionFactory, UserFactory

D = Decimal
pytestmark = pytest.mark.django_db


def _resident(section, name, *, end=None, reason=""):
    resident = ResidentFactory(organisation=section.establishment.organisation, last_name=name)
    Stay.objects.create(resident=resident, section=section, entry_date=date(2026, 1, 1), end_date=end,
                        end_reason=reason)
    return resident


@pytest.fixture
def site():
    section = SectionFactory(alias="RMB-HP")
    # ARNAUD died on 30/06: paid 300,00 on an invoice of 250,00 → credit 50,00.
    arnaud = _resident(section, "ARNAUD", end=date(2026, 6, 30), reason="death")
    inv = issued_invoice(section, arnaud, "250.00", date(2026, 6, 5))  # issue dates in order
    pay.payment_record(section=section, invoice=inv, on=date(2026, 6, 20), amount=D("300.00"), mode="cheque")
    # BLANC is still there with a credit of 30,00: not listed.
    blanc = _resident(section, "BLANC")
    pay.payment_record(section=section, debtor=Debtor(section.pk, "resident", resident_id=blanc.pk),
                       on=date(2026, 6, 2), amount=D("30.00"), mode="transfer")
    # COLIN left on 30/06 with nothing left: not listed.
    colin = _resident(section, "COLIN", end=date(2026, 6, 30), reason="departure")
    inv_c = issued_invoice(section, colin, "100.00", date(2026, 6, 6))
    pay.payment_record(section=section, invoice=inv_c, on=date(2026, 6, 20), amount=D("100.00"), mode="cheque")
    # DUPUIS left on 15/07: the paying relative paid 20,00 too much.
    dupuis = _resident(section, "DUPUIS", end=date(2026, 7, 15), reason="departure")
    son = paying_relative(dupuis, last_name="DUPUIS", first_name="Marc")
    inv_d = issued_invoice(section, dupuis, "80.00", date(2026, 7, 5), relative=son)
    pay.payment_record(section=section, invoice=inv_d, on=date(2026, 7, 10), amount=D("100.00"), mode="cheque")
    return {"section": section, "arnaud": arnaud, "blanc": blanc, "dupuis": dupuis, "son": son}


def test_departed_residents_with_a_credit(site):
    rows = refunds.refunds_due(section=site["section"], on=date(2026, 8, 1))
    assert [(r.resident.last_name, r.debtor_name, r.credit, r.end_date, r.end_reason) for r in rows] == [
        ("ARNAUD", site["arnaud"].full_name, D("50.00"), date(2026, 6, 30), "Décès"),
        ("DUPUIS", str(site["son"]), D("20.00"), date(2026, 7, 15), "Départ")]
    # On 01/07, DUPUIS is still present.
    assert [r.resident.last_name for r in refunds.refunds_due(section=site["section"], on=date(2026, 7, 1))] == [
        "ARNAUD"]


def test_refund_clears_the_credit_and_the_list(site):
    debtor = Debtor(site["section"].pk, "resident", resident_id=site["arnaud"].pk)
    refund = refunds.credit_refund(debtor=debtor, on=date(2026, 8, 2), amount=D("50.00"), mode="transfer",
                                   reference="VIR REMB ARNAUD")
    assert refund.kind == Payment.Kind.REFUND and pay.debtor_credit(debtor) == D("0.00")
    assert [r.resident.last_name for r in refunds.refunds_due(section=site["section"], on=date(2026, 8, 3))] == [
        "DUPUIS"]


def test_refund_limits(site):
    debtor = Debtor(site["section"].pk, "resident", resident_id=site["arnaud"].pk)
    with pytest.raises(Exception, match="dépasse le crédit"):
        refunds.credit_refund(debtor=debtor, on=date(2026, 8, 2), amount=D("50.01"), mode="cheque")
    with pytest.raises(Exception, match="chèque ou par virement"):
        refunds.credit_refund(debtor=debtor, on=date(2026, 8, 2), amount=D("10.00"), mode="cash")


def test_pages_and_scoping(client, site):
    section = site["section"]
    reader, clerk, stranger = UserFactory(), UserFactory(), UserFactory()
    SectionAccessFactory(user=reader, section=section, role=SectionAccess.Role.READER)
    SectionAccessFactory(user=clerk, section=section, role=SectionAccess.Role.CLERK)
    list_url = reverse("billing:refunds-due", kwargs={"alias": section.alias})
    refund_url = reverse("billing:refund", kwargs={"alias": section.alias, "pk": site["dupuis"].pk})
    client.force_login(reader)
    page = client.get(list_url)
    assert page.status_code == 200 and "ARNAUD" in page.content.decode() and "BLANC" not in page.content.decode()
    assert client.get(refund_url + f"?proche={site['son'].pk}").status_code == 403
    client.force_login(stranger)
    assert client.get(list_url).status_code == 404
    assert client.get(refund_url).status_code == 404
    client.force_login(clerk)
    form = client.get(refund_url + f"?proche={site['son'].pk}")
    assert form.status_code == 200 and "20,00" in form.content.decode()
    other = paying_relative(site["arnaud"])
    assert client.get(refund_url + f"?proche={other.pk}").status_code == 404  # not DUPUIS's relative
    too_much = client.post(refund_url, {"proche": site["son"].pk, "on": "2026-08-02", "amount": "25,00",
                                        "mode": "cheque", "reference": "0001"})
    assert too_much.status_code == 400 and "dépasse le crédit" in too_much.content.decode()
    done = client.post(refund_url, {"proche": site["son"].pk, "on": "2026-08-02", "amount": "20.00",
                                    "mode": "cheque", "reference": "0001"})
    assert done.status_code == 302
    refund = Payment.objects.get(kind=Payment.Kind.REFUND)
    assert (refund.relative_id, refund.amount, refund.mode, refund.entered_by) == (site["son"].pk, D("20.00"),
                                                                                    "cheque", clerk)
