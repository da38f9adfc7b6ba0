"""Ship the dated national parameters of billing-rules.md (editable in the admin afterwards)."""
from datetime import date
from decimal import Decimal

from django.db import migrations

NATIONAL = [
    ("hospital_daily_charge", date(2018, 1, 1), "20.00", "Arrêté du 21/12/2017"),
    ("hospital_daily_charge", date(2026, 3, 1), "23.00", "JO du 28/02/2026"),
    ("psychiatric_daily_charge", date(2018, 1, 1), "15.00", "Arrêté du 21/12/2017"),
    ("psychiatric_daily_charge", date(2026, 3, 1), "17.00", "JO du 28/02/2026"),
    ("pocket_money_minimum", date(2024, 1, 1), "121.00", "1 % de l'ASPA annuelle (CASF R231-6)"),
    ("pocket_money_minimum", date(2025, 1, 1), "124.00", "1 % de l'ASPA annuelle (CASF R231-6)"),
    ("pocket_money_minimum", date(2026, 1, 1), "125.00", "1 % de l'ASPA annuelle (CASF R231-6)"),
]


def forwards(apps, schema_editor):
    NationalParameter = apps.get_model("billing", "NationalParameter")
    for kind, valid_from, amount, source in NATIONAL:
        NationalParameter.objects.get_or_create(kind=kind, valid_from=valid_from,
                                                defaults={"amount": Decimal(amount), "source": source})


class Migration(migrations.Migration):
    dependencies = [("billing", "0002_initial")]
    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
