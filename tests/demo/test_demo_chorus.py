"""The demo's public payer with Chorus Pro settings: the Rhône receives Les Tilleuls' invoices as Factur-X."""
from io import StringIO

import pytest
from django.core.management import call_command
from stdnum.fr import siret

from payers.models import Payer


@pytest.mark.django_db
def test_demo_rhone_receives_its_invoices_through_chorus_pro():
    call_command("seed_demo", "--no-residents", stdout=StringIO())
    rhone = Payer.objects.get(code="CD69")
    assert rhone.chorus_pro and siret.is_valid(rhone.siret)
    assert (rhone.chorus_service_code, rhone.chorus_engagement_number, rhone.facturx_profile) == (
        "DSOL-ASH", "EJ-2026-0042", "en16931")
    assert not Payer.objects.filter(chorus_pro=True).exclude(code="CD69").exists()
    rhone.chorus_service_code = "AUTRE"
    rhone.save()
    call_command("seed_demo", "--no-residents", stdout=StringIO())  # idempotent: a user's change stays
    assert Payer.objects.get(code="CD69").chorus_service_code == "AUTRE"
