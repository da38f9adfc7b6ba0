"""Demo SEPA mandates: every demo resident paying by direct debit gets an active mandate for its
debtor (the paying relative, or the resident), with a valid fictitious French IBAN."""
from __future__ import annotations

from datetime import date

from residents.models import PaymentMode, Resident
from sepa.models import Mandate
from sepa.services.mandates import mandate_create


def demo_iban(serial: int) -> str:
    """A fictitious but valid French IBAN (RIB key and IBAN key computed), bank 30006 branch 00001."""
    bank, branch, account = "30006", "00001", f"{serial:011d}"
    key = 97 - ((89 * int(bank) + 15 * int(branch) + 3 * int(account)) % 97)
    bban = f"{bank}{branch}{account}{key:02d}"
    digits = "".join(str(int(c, 36)) for c in bban + "FR00")
    return f"FR{98 - int(digits) % 97:02d}{bban}"


def demo_mandates(*, organisation) -> int:
    made = 0
    residents = (Resident.objects.filter(organisation=organisation, external_ref__startswith="DEMO-",
                                         payment_mode=PaymentMode.DIRECT_DEBIT)
                 .prefetch_related("stays__section__establishment", "relatives").order_by("pk"))
    for resident in residents:
        payer = next((r for r in resident.relatives.all() if r.is_payer), None)
        for establishment in {stay.section.establishment for stay in resident.stays.all()}:
            if Mandate.objects.filter(establishment=establishment, resident=resident, relative=payer).exists():
                continue
            holder = payer or resident
            mandate_create(establishment=establishment, resident=resident, relative=payer,
                           iban=demo_iban(resident.pk * 10 + (1 if payer else 0)),
                           account_holder=f"{holder.first_name} {holder.last_name}",
                           signature_date=date(2025, 1, 2))
            made += 1
    return made
