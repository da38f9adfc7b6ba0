"""Mandate life cycle (billing-rules.md §11), the shared IBAN/BIC/ICS validator, the lapse task and
the pre-flight warning of a period."""
from datetime import date

import pytest
from django.core.exceptions import ValidationError

from billing.services.checks import period_checks
from core.bank import iban_check, validate_bic, validate_iban
from residents.models import PaymentMode
from sepa.models import Mandate
from sepa.services.mandates import (add_months, mandate_change_account, mandate_create, mandate_lapse_date,
                                    mandate_revoke, mandate_sign, mandates_lapse)
from sepa.tasks import mandates_lapse_task
from tests.billing.payment_helpers import paying_relative, resident_in
from tests.factories import SectionFactory
from tests.sepa.helpers import IBAN_A, IBAN_B, active_mandate

pytestmark = pytest.mark.django_db


def test_validator_messages():
    assert validate_iban("fr76 3000 6000 0112 3456 7890 189") == IBAN_A
    assert iban_check(IBAN_A)[1]  # a proposed BIC
    with pytest.raises(ValidationError, match="clé RIB incorrecte"):
        validate_iban("FR0630006000011234567890188")  # IBAN key right, RIB key wrong
    with pytest.raises(ValidationError, match="clé de contrôle de l'IBAN"):
        validate_iban("FR7730006000011234567890189")
    with pytest.raises(ValidationError, match="hors de la zone SEPA"):
        validate_iban("BR1800360305000010009795493C1")
    with pytest.raises(ValidationError, match="BIC invalide"):
        validate_bic("AGRI")
    assert validate_bic("agrifrpp xxx") == "AGRIFRPPXXX"


def test_establishment_creditor_identity_checked():
    establishment = SectionFactory().establishment
    establishment.creditor_id, establishment.iban, establishment.bic = "FR00ZZZ123456", "FR7730006000011234567890189", "X"
    with pytest.raises(ValidationError) as exc:
        establishment.full_clean()
    assert set(exc.value.message_dict) == {"creditor_id", "iban", "bic"}
    assert "clé de contrôle" in exc.value.message_dict["iban"][0]


def test_create_sign_generated_and_typed_rum():
    section = SectionFactory()
    establishment = section.establishment
    resident = resident_in(section)
    mandate = mandate_create(establishment=establishment, resident=resident, iban=IBAN_A, account_holder="Dupont")
    assert mandate.rum == f"{establishment.code}-{resident.pk}" and mandate.status == Mandate.Status.PENDING
    assert mandate.next_sequence_type == "FRST"
    second = mandate_create(establishment=establishment, resident=resident, iban=IBAN_B, account_holder="Dupont")
    assert second.rum == f"{establishment.code}-{resident.pk}-2"
    mandate_sign(mandate=mandate, signature_date=date(2026, 1, 5))
    assert mandate.status == Mandate.Status.ACTIVE
    with pytest.raises(ValidationError, match="Seul un mandat à signer"):
        mandate_sign(mandate=mandate, signature_date=date(2026, 1, 5))
    taken = mandate_create(establishment=establishment, resident=resident, iban=IBAN_A, account_holder="Dupont",
                           rum="ANCIEN/77", signature_date=date(2019, 3, 1), last_collection_date=date(2025, 11, 5))
    assert taken.next_sequence_type == "RCUR" and taken.status == Mandate.Status.ACTIVE
    with pytest.raises(ValidationError, match="existe déjà"):
        mandate_create(establishment=establishment, resident=resident, iban=IBAN_A, account_holder="X", rum="ancien/77")
    with pytest.raises(ValidationError):
        mandate_create(establishment=establishment, resident=resident, iban=IBAN_A, account_holder="X", rum="A//B")


def test_change_of_account_keeps_rum_and_history():
    section = SectionFactory()
    resident = resident_in(section)
    mandate = active_mandate(section, resident, IBAN_A)
    rum = mandate.rum
    mandate_change_account(mandate=mandate, iban=IBAN_B, bic="PSSTFRPPXXX", on=date(2026, 2, 1))
    mandate.refresh_from_db()
    assert (mandate.rum, mandate.iban, mandate.bic, mandate.original_iban) == (rum, IBAN_B, "PSSTFRPPXXX", IBAN_A)
    assert list(mandate.accounts.values_list("iban", "valid_from")) == [(IBAN_A, date(2025, 12, 1)),
                                                                        (IBAN_B, date(2026, 2, 1))]
    mandate_change_account(mandate=mandate, iban=IBAN_A)  # back and forth before any collection
    mandate.refresh_from_db()
    assert mandate.original_iban == IBAN_A  # the original is the account of the last collection
    with pytest.raises(ValidationError, match="déjà l'IBAN"):
        mandate_change_account(mandate=mandate, iban=IBAN_A)


def test_revoke():
    section = SectionFactory()
    mandate = active_mandate(section, resident_in(section))
    with pytest.raises(ValidationError, match="motif"):
        mandate_revoke(mandate=mandate, on=date(2026, 1, 1), reason=" ")
    mandate_revoke(mandate=mandate, on=date(2026, 1, 1), reason="Changement de banque")
    assert (mandate.status, mandate.revoked_on) == (Mandate.Status.REVOKED, date(2026, 1, 1))
    with pytest.raises(ValidationError, match="n'est plus utilisable"):
        mandate_change_account(mandate=mandate, iban=IBAN_B)


def test_lapse_dates_and_daily_task():
    section = SectionFactory()
    used = active_mandate(section, resident_in(section), last_collection_date=date(2023, 3, 31))
    never = active_mandate(section, resident_in(section))  # signed 2025-12-01, never used
    recent = active_mandate(section, resident_in(section), last_collection_date=date(2023, 4, 1))
    assert mandate_lapse_date(used) == date(2026, 3, 31)
    assert mandate_lapse_date(never) == date(2028, 12, 1)
    assert add_months(date(2024, 2, 29), 36) == date(2027, 2, 28)
    assert mandates_lapse(today=date(2026, 3, 30)) == []
    assert mandates_lapse(today=date(2026, 3, 31)) == [used]
    used.refresh_from_db()
    assert (used.status, used.lapsed_on) == (Mandate.Status.EXPIRED, date(2026, 3, 31))
    recent.refresh_from_db()
    assert recent.status == Mandate.Status.ACTIVE
    assert sorted(m.pk for m in mandates_lapse(today=date(2028, 12, 1))) == sorted([recent.pk, never.pk])
    assert mandates_lapse_task() == []  # nothing left today


def test_preflight_warns_direct_debit_without_active_mandate(billing_setup):
    stay = billing_setup.stay(gir=2)
    resident = stay.resident
    resident.payment_mode = PaymentMode.DIRECT_DEBIT
    resident.save()
    period = billing_setup.period(date(2026, 4, 1), date(2026, 4, 30))

    def warnings():
        return [c for c in period_checks(period=period) if "mandat SEPA actif" in c.message]

    assert len(warnings()) == 1 and warnings()[0].level == "warning"
    assert warnings()[0].link == f"/s/{billing_setup.section.alias}/prelevements/residents/{resident.pk}/mandats/"
    relative = paying_relative(resident)
    mandate_create(establishment=billing_setup.section.establishment, resident=resident, iban=IBAN_A,
                   account_holder="Dupont", signature_date=date(2026, 1, 5))  # the resident's, but a relative pays
    assert len(warnings()) == 1
    mandate_create(establishment=billing_setup.section.establishment, resident=resident, relative=relative,
                   iban=IBAN_A, account_holder="Proche", signature_date=date(2026, 1, 5))
    assert warnings() == []
