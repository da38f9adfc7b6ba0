"""*Comptabilité* page: managers edit the account map and build / transmit exports; readers see
and download; another establishment's section or export: 404; a *lecture* or *facturation* user
posting: 403. The admin lets managers edit the map of their establishments only."""
from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from billing.models import AccountingExport, AccountMap
from billing.services import accounting as acc
from billing.services import payments as pay
from core import fec
from tests.billing.payment_helpers import issued_invoice, resident_in
from tests.factories import SectionAccessFactory, SectionFactory, UserFactory

D = Decimal
pytestmark = pytest.mark.django_db


@pytest.fixture
def site():
    section = SectionFactory(alias="CPT-A", establishment__siret="73282932000074")
    foreign = SectionFactory(alias="CPT-Z")
    resident = resident_in(section)
    invoice = issued_invoice(section, resident, "100.00", date(2026, 1, 5))
    pay.payment_record(section=section, on=date(2026, 1, 10), amount=D("100.00"), mode="cheque", invoice=invoice)
    users = {}
    for role in ("reader", "clerk", "manager"):
        users[role] = UserFactory(username=role)
        SectionAccessFactory(user=users[role], section=section, role=role)
    return {"section": section, "foreign": foreign, **users}


def _url(name, alias="CPT-A", **kwargs):
    return reverse(f"billing:{name}", kwargs={"alias": alias, **kwargs})


def _map_post(account_map, **changes):
    data = {"sales_journal": "VT", "sales_journal_label": "Ventes", "bank_journal": "BQ",
            "bank_journal_label": "Banque", "customer_account": "411", "default_revenue_account": "7088",
            "cheque_account": "512", "transfer_account": "512", "direct_debit_account": "512",
            "payer_account": "512", "cash_account": "530", "pocket_money_account": "4671",
            "split_by_financing": "on"}
    rows = list(account_map.revenue_accounts.all())
    prefix = "revenue_accounts"
    data.update({f"{prefix}-TOTAL_FORMS": str(len(rows)), f"{prefix}-INITIAL_FORMS": str(len(rows)),
                 f"{prefix}-MIN_NUM_FORMS": "0", f"{prefix}-MAX_NUM_FORMS": "1000"})
    for i, row in enumerate(rows):
        data.update({f"{prefix}-{i}-id": str(row.pk), f"{prefix}-{i}-account_map": str(account_map.pk),
                     f"{prefix}-{i}-product_kind": row.product_kind, f"{prefix}-{i}-financing": row.financing,
                     f"{prefix}-{i}-account": row.account, f"{prefix}-{i}-label": row.label})
    data.update(changes)
    return data


def test_manager_edits_the_map_builds_downloads_and_transmits(client, site):
    client.force_login(site["manager"])
    page = client.get(_url("accounting")).content.decode()
    assert "Plan de comptes d'export" in page and "73531" in page
    account_map = AccountMap.objects.get(establishment=site["section"].establishment)
    response = client.post(_url("accounting-map"), _map_post(account_map, cheque_account="5112",
                                                             **{"revenue_accounts-0-account": "706"}))
    assert response.status_code == 302
    account_map.refresh_from_db()
    assert account_map.cheque_account == "5112"
    assert "706" in set(account_map.revenue_accounts.values_list("account", flat=True))
    bad = client.post(_url("accounting-map"), _map_post(account_map, cash_account="CAISSE"))
    assert bad.status_code == 200 and "commence par 3 chiffres" in bad.content.decode()
    assert client.post(_url("accounting-export-build"), {"date_from": "2026-01-01", "date_to": "2026-01-31"}
                       ).status_code == 302
    export = AccountingExport.objects.get(establishment=site["section"].establishment)
    response = client.get(_url("accounting-export-download", pk=export.pk, fmt="fec"))
    assert response["Content-Disposition"] == 'attachment; filename="732829320FEC20260131.txt"'
    assert fec.fec_check(response.content) == [] and b"5112" in response.content
    assert client.post(_url("accounting-export-transmit", pk=export.pk)).status_code == 302
    export.refresh_from_db()
    assert export.is_transmitted
    assert "Marquer transmis" not in client.get(_url("accounting")).content.decode()


def test_refusals(client, site):
    export = acc.export_build(establishment=site["section"].establishment, date_from=date(2026, 1, 1),
                              date_to=date(2026, 1, 31))
    foreign_export = acc.export_build(establishment=site["foreign"].establishment, date_from=date(2026, 1, 1),
                                      date_to=date(2026, 1, 31))
    client.force_login(site["reader"])
    page = client.get(_url("accounting")).content.decode()
    assert "Préparer l'export" not in page and "73531" in page
    assert client.get(_url("accounting-export-download", pk=export.pk, fmt="csv")).status_code == 200
    for user in ("reader", "clerk"):
        client.force_login(site[user])
        assert client.post(_url("accounting-export-build"), {"date_from": "2026-01-01",
                                                             "date_to": "2026-01-31"}).status_code == 403
        assert client.post(_url("accounting-export-transmit", pk=export.pk)).status_code == 403
        assert client.post(_url("accounting-map"), {}).status_code == 403
    client.force_login(site["manager"])
    assert client.get(_url("accounting", alias="CPT-Z")).status_code == 404
    assert client.get(_url("accounting-export-download", pk=foreign_export.pk, fmt="fec")).status_code == 404
    assert client.post(_url("accounting-export-transmit", pk=foreign_export.pk)).status_code == 404
    assert client.get(_url("accounting-export-download", pk=export.pk, fmt="pdf")).status_code == 404
    export.refresh_from_db()
    assert not export.is_transmitted


def test_admin_map_scoped_to_the_managers_establishments(client, site):
    manager = site["manager"]
    manager.is_staff = True
    manager.save()
    from django.contrib.auth.models import Permission
    manager.user_permissions.add(*Permission.objects.filter(codename__in=["view_accountmap", "change_accountmap",
                                                                           "view_revenueaccount",
                                                                           "change_revenueaccount"]))
    own = acc.account_map_for(site["section"].establishment)
    other = acc.account_map_for(site["foreign"].establishment)
    client.force_login(manager)
    assert client.get(reverse("admin:billing_accountmap_change", args=[own.pk])).status_code == 200
    assert client.get(reverse("admin:billing_accountmap_change", args=[other.pk])).status_code == 302
    listing = client.get(reverse("admin:billing_accountmap_changelist")).content.decode()
    assert str(site["section"].establishment) in listing and str(site["foreign"].establishment) not in listing
