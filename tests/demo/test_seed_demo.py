from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from billing.models import Calendar, CalendarDay, Package, Product, StayPackage, Tariff
from imports.models import AbsenceCodeMapping
from payers.models import CoverageRule, Payer
from residents.models import Absence, Relative, Resident, Stay
from structures.models import Section, SectionAccess


def _counts():
    return {m.__name__: m.objects.count() for m in (Section, SectionAccess, Product, Tariff, Package, Calendar,
                                                       CalendarDay, Payer, Resident, Relative, Stay, Absence,
                                                       StayPackage, CoverageRule, AbsenceCodeMapping)}


@pytest.mark.django_db
def test_seed_demo_builds_the_reference_configuration_idempotently():
    out = StringIO()
    call_command("seed_demo", "--residents", "20", stdout=out)
    assert "tilleuls / demo" in out.getvalue()
    first = _counts()
    assert first["Section"] == 4 and first["Resident"] == 20 and first["Payer"] == 5
    assert first["CalendarDay"] == 3 * (365 * 2 + 365)  # CAL-TIL, CAL-VER, CAL-VER-AJ over 2025-2027
    assert str(Tariff.objects.get(product__establishment__code="TIL", product__code="DEP12",
                                  valid_from="2025-01-01").price) == "22.64"  # 23.10 − 2 %, rounded
    assert StayPackage.objects.count() == Stay.objects.count()
    call_command("seed_demo", "--residents", "20", stdout=StringIO())
    assert _counts() == first
    call_command("seed_demo", "--residents", "25", stdout=StringIO())
    assert Resident.objects.count() == 25
    user = get_user_model().objects.get(username="direction")
    assert set(user.section_accesses.values_list("role", flat=True)) == {"reader"}


@pytest.mark.django_db
def test_seed_demo_refused_in_production(settings):
    settings.DEMO_ALLOWED = False
    with pytest.raises(CommandError, match="DEMO_ALLOWED=0"):
        call_command("seed_demo", stdout=StringIO())
    assert not Section.objects.exists()


@pytest.mark.django_db
def test_responsable_demo_login_manages_both_tilleuls_sections(client, settings):
    from pathlib import Path

    from structures import access

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    out = StringIO()
    call_command("seed_demo", "--residents", "0", stdout=out)
    assert "responsable / demo" in out.getvalue()
    assert client.login(username="responsable", password="demo")
    user = get_user_model().objects.get(username="responsable")
    for alias in ("TIL-HP", "TIL-HT"):
        assert access.has_role(user, Section.objects.get(alias=alias), access.Role.MANAGER)
    assert not user.section_accesses.filter(section__alias__startswith="VER").exists()
    root = Path(__file__).resolve().parents[2]
    assert "| `responsable` | `demo` |" in (root / "README.md").read_text(encoding="utf-8")
    assert "responsable / demo" in (root / "dev").read_text(encoding="utf-8")
