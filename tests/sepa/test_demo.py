"""The demo residents paying by direct debit have an active mandate (no pre-flight warning)."""
from demo.services.seed import demo_seed
from residents.models import PaymentMode, Resident
from sepa.models import Mandate


def test_demo_mandates(demo_with_residents):
    debit = Resident.objects.filter(payment_mode=PaymentMode.DIRECT_DEBIT, external_ref__startswith="DEMO-")
    assert debit.exists()
    for resident in debit:
        payer = resident.relatives.filter(is_payer=True).first()
        assert Mandate.objects.filter(resident=resident, relative=payer, status=Mandate.Status.ACTIVE).exists()
    count = Mandate.objects.count()
    demo_seed(residents=12)  # idempotent
    assert Mandate.objects.count() == count
