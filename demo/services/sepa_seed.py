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


def demo_debit_batches(*, organisation) -> dict:
    """After ``demo_payments`` (``seed_demo --payments``): the VER-HP months issued in 2025 collected by
    direct debit — October and November sent and settled, one November debit returned (AM04,
    provision insuffisante: the invoice is unpaid again), December sent to the bank, not yet due in the
    demo's story. Idempotent: nothing when VER-HP already has a batch."""
    from datetime import timedelta

    from billing.models import BillingPeriod
    from sepa.models import DebitBatch
    from sepa.services.debits import (batch_selection, debit_batch_create, debit_batch_generate,
                                      debit_batch_mark_sent, debit_batch_settle, target_business_day)
    from sepa.services.returns import returns_apply
    from structures.models import Section

    section = Section.objects.filter(alias="VER-HP", establishment__organisation=organisation).first()
    if section is None or DebitBatch.objects.filter(section=section).exists():
        return {"batches": 0, "returns": 0}
    made, returned = 0, 0
    periods = BillingPeriod.objects.filter(section=section, start__year=2025).order_by("start")
    for index, period in enumerate(periods):
        if not batch_selection(period=period).candidates:
            continue
        collection = period.end + timedelta(days=20)
        while not target_business_day(collection):
            collection += timedelta(days=1)
        batch = debit_batch_create(period=period, collection_date=collection, today=period.end + timedelta(days=1))
        debit_batch_mark_sent(batch=debit_batch_generate(batch=batch))
        made += 1
        if index == len(periods) - 1:
            continue  # the last month: sent to the bank, settlement to record
        debit_batch_settle(batch=batch)
        if period.start.month == 11:
            line = batch.lines.order_by("pk").first()
            content = ('<?xml version="1.0" encoding="UTF-8"?><Document xmlns="urn:iso:std:iso:20022:tech:xsd:'
                       'pain.002.001.03"><CstmrPmtStsRpt><OrgnlPmtInfAndSts><TxInfAndSts><OrgnlEndToEndId>'
                       f"{line.end_to_end_id}</OrgnlEndToEndId><TxSts>RJCT</TxSts><StsRsnInf><Rsn><Cd>AM04</Cd></Rsn>"
                       "</StsRsnInf></TxInfAndSts></OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>").encode()
            returned += len(returns_apply(content=content, on=collection + timedelta(days=3)).applied)
    return {"batches": made, "returns": returned}
