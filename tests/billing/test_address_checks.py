"""Pre-flight checks list every debtor without a postal address (payers and relatives included)."""
from datetime import date

from billing.services.checks import period_checks
from residents.models import Relative

APRIL = (date(2026, 4, 1), date(2026, 4, 30))


def _messages(setup):
    from billing.models import BillingPeriod

    period = BillingPeriod.objects.filter(section=setup.section, start=APRIL[0]).first() or setup.period(*APRIL)
    return [c.message for c in period_checks(period=period) if "adresse" in c.message]


def test_debtors_without_address_are_listed(billing_setup):
    stay = billing_setup.stay(gir=2)
    billing_setup.apa(stay, "CD69")
    resident = stay.resident
    resident.address = resident.postal_code = resident.city = ""
    resident.save()
    recipient = Relative.objects.create(resident=resident, last_name="Durand", first_name="Anne",
                                        receives_invoices=True)
    messages = _messages(billing_setup)
    assert any("Le payeur Département 69 n'a pas d'adresse postale" in m for m in messages), messages
    assert any("DURAND Anne, destinataire des factures" in m and "le résident non plus" in m for m in messages)
    # The resident has an address: the recipient's missing one falls back to it, and the message says so.
    resident.address, resident.postal_code, resident.city = "4 allée des Tilleuls", "69003", "Lyon"
    resident.save()
    messages = _messages(billing_setup)
    assert any("seront adressées au résident, à sa propre adresse" in m for m in messages), messages
    # A paying relative without address is listed too.
    recipient.is_payer = True
    recipient.save()
    assert any("proche payeur de" in m for m in _messages(billing_setup))
    payer = billing_setup.payers["CD69"]
    payer.address, payer.postal_code, payer.city = "29 cours de la Liberté", "69003", "Lyon"
    payer.save()
    recipient.address, recipient.postal_code, recipient.city = "1 rue Neuve", "69001", "Lyon"
    recipient.save()
    assert _messages(billing_setup) == []


def test_demo_payers_have_addresses(demo):
    from payers.models import Payer

    payers = Payer.objects.all()
    assert payers and all(p.address_lines and p.accounting_account for p in payers)


def test_demo_relatives_civility_matches_first_name(demo_with_residents):
    from demo.services.seed import MEN, WOMEN

    for relative in Relative.objects.all():
        assert relative.first_name in (WOMEN if relative.civility == "MME" else MEN), relative


def test_demo_period_has_no_missing_address(demo_with_residents):
    from billing.services.periods import period_create

    from structures.models import Section

    for alias in ("TIL-HP", "VER-HP"):
        section = Section.objects.get(alias=alias)
        period = period_create(section=section, start=date(2026, 11, 1))
        assert not [c.message for c in period_checks(period=period) if "adresse" in c.message]
