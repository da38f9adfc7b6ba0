"""The demo's public EHPAD (Le Verger) has its PES settings: with the issued demo months
(``seed_demo --payments``: VER-HP October–December 2025) it simulates and generates a valid rôle,
with a SEPA block for the residents who pay by direct debit."""
import hashlib
import re
from datetime import date
from io import StringIO

import pytest
from django.core.management import call_command
from lxml import etree

from billing.models import BillingPeriod, PesSettings
from billing.services import pes as services
from core import pes

DEMO_SHA256 = "683f3182bc0b85a4c8524b397d715198a741a5a86bb6f18a39ff36ab753fc626"  # RUM and IBAN as *


@pytest.mark.django_db
def test_demo_generates_a_role_for_le_verger(tmp_path):
    call_command("seed_demo", "--residents", "30", "--payments", stdout=StringIO())
    assert PesSettings.objects.filter(establishment__code="VER").exists()
    assert not PesSettings.objects.filter(establishment__code="TIL").exists()
    period = BillingPeriod.objects.filter(section__alias="VER-HP", start__year=2025, start__month=12).get()
    draft = services.role_simulate(period=period)
    assert draft.errors == [], draft.errors
    # The demo's bytes, recorded before core.pes was split into one function per block (same date);
    # the demo derives a RUM and an IBAN from database ids, which PostgreSQL does not reuse between tests.
    on_file = re.sub(rb'<(RefUniMdt|IBAN) V="[^"]*"/>', rb'<\1 V="*"/>',
                     services.role_simulate(period=period, on=date(2026, 1, 5)).content)
    assert (hashlib.sha256(on_file).hexdigest(), len(on_file)) == (DEMO_SHA256, 20720)
    role = services.role_generate(period=period)
    assert pes.pes_check(bytes(role.content)) == []
    root = etree.fromstring(bytes(role.content))
    assert root.findall(".//InfoPrelevementSEPA"), "no debtor by direct debit in the demo rôle"
    out = tmp_path / "again.xml"
    call_command("export_pes", "--section", "VER-HP", "--role", str(role.id_bord), "-o", str(out))
    assert out.read_bytes() == bytes(role.content)
