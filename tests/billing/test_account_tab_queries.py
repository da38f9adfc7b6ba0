"""The *Compte* tab reads every account of the resident (their own, each paying relative's) in a
number of queries that does not grow with the entries nor with the accounts, and a page view does
not rewrite the session when the section did not change."""
from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from billing.services import payments as svc
from billing.services.payments import Debtor
from structures.models import SectionAccess
from tests.billing.payment_helpers import issued_invoice, paying_relative, resident_in
from tests.factories import SectionAccessFactory, SectionFactory, UserFactory

D = Decimal
pytestmark = pytest.mark.django_db


def _queries(client, url) -> tuple[int, str]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    assert not [q for q in ctx.captured_queries if q["sql"].startswith("UPDATE") and "django_session" in q["sql"]]
    return len(ctx.captured_queries), response.content.decode()


def test_account_tab_queries_do_not_grow(client):
    section = SectionFactory(alias="CPT-HP")
    resident = resident_in(section, last_name="DURAND")
    clerk = UserFactory(username="cpt-clerk")
    SectionAccessFactory(user=clerk, section=section, role=SectionAccess.Role.CLERK)
    client.force_login(clerk)
    url = reverse("billing:resident-account", kwargs={"alias": "CPT-HP", "pk": resident.pk})
    first = issued_invoice(section, resident, "100.00", date(2026, 1, 5))
    svc.payment_record(section=section, invoice=first, on=date(2026, 1, 20), amount=D("100.00"), mode="cheque")
    client.get(url)  # the session learns the section
    small, _page = _queries(client, url)
    # Eleven more months, payments, a refund, a cancelled payment and a paying relative's account.
    son = paying_relative(resident, last_name="DURAND", first_name="Marc")
    for month in range(2, 13):
        invoice = issued_invoice(section, resident, f"{100 + month}.00", date(2026, month, 5),
                                 relative=son if month % 2 else None)
        svc.payment_record(section=section, invoice=invoice, on=date(2026, month, 20), amount=D("50.00"),
                           mode="transfer", reference=f"VIR-{month}")
    cancelled = svc.payment_record(section=section, debtor=Debtor(section.pk, "resident", resident_id=resident.pk),
                                   on=date(2026, 12, 28), amount=D("5000.00"), mode="cheque")
    svc.payment_cancel(payment=cancelled, reason="Chèque sans provision")
    large, page = _queries(client, url)
    assert large == small
    assert "VIR-12" in page and "Sans provision" not in page and "Chèque sans provision" in page
    accounts = client.get(url).context["accounts"]
    assert [len(a["entries"]) for a in accounts] == [2 + 2 * 6 + 2, 2 * 5]
    assert accounts[1]["balance"] == sum((D(f"{100 + m}.00") - D("50.00") for m in (3, 5, 7, 9, 11)), D("0"))
