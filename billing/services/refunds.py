"""*Soldes à rembourser*: departed or deceased residents (every stay of the section ended) whose
account — their own or their paying relative's — still holds a credit, and the refund of any credit
(an entry of its own through ``payments.refund_record``, by cheque or transfer, never more than the
credit)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from residents.models import Relative, Resident, Stay

from ..models import Invoice, Payment
from .payments import Debtor, debtor_credit, refund_record

REFUND_MODES = (Payment.Mode.CHEQUE, Payment.Mode.TRANSFER)


@dataclass
class CreditRow:
    resident: Resident
    relative: Relative | None
    debtor: Debtor
    credit: Decimal
    end_date: date | None
    end_reason: str

    @property
    def debtor_name(self) -> str:
        return str(self.relative) if self.relative else self.resident.full_name


def refunds_due(*, section, on: date | None = None) -> list[CreditRow]:
    """Residents of the section with no stay open on ``on`` (default today) and a credit on an account."""
    on = on or timezone.localdate()
    open_stay = Stay.objects.filter(Q(end_date__isnull=True) | Q(end_date__gte=on), section=section,
                                    resident=OuterRef("pk"))
    departed = (Resident.objects.filter(stays__section=section).annotate(present=Exists(open_stay))
                .filter(present=False).distinct())
    departed_ids = set(departed.values_list("pk", flat=True))
    if not departed_ids:
        return []
    keys = set(Payment.objects.filter(section=section, resident_id__in=departed_ids, kind=Payment.Kind.PAYMENT,
                                      cancelled_at__isnull=True)
               .exclude(debtor_kind=Invoice.DebtorKind.PAYER).values_list("debtor_kind", "resident_id", "relative_id"))
    keys |= set(Invoice.objects.filter(section=section, resident_id__in=departed_ids, kind=Invoice.Kind.CREDIT_NOTE,
                                       status=Invoice.Status.ISSUED)
                .exclude(debtor_kind=Invoice.DebtorKind.PAYER).values_list("debtor_kind", "resident_id", "relative_id"))
    residents = {r.pk: r for r in Resident.objects.filter(pk__in={k[1] for k in keys})}
    relatives = {r.pk: r for r in Relative.objects.filter(pk__in={k[2] for k in keys if k[2]})}
    last_stays = {}
    for stay in Stay.objects.filter(section=section, resident_id__in=residents).order_by("end_date"):
        last_stays[stay.resident_id] = stay
    rows = []
    for kind, resident_id, relative_id in keys:
        debtor = Debtor(section.pk, kind, resident_id=resident_id,
                        relative_id=relative_id if kind == Invoice.DebtorKind.RELATIVE else None)
        credit = debtor_credit(debtor)
        if credit > 0:
            stay = last_stays.get(resident_id)
            rows.append(CreditRow(residents[resident_id], relatives.get(relative_id) if debtor.relative_id else None,
                                  debtor, credit, stay.end_date if stay else None,
                                  stay.get_end_reason_display() if stay and stay.end_reason else ""))
    rows.sort(key=lambda r: (r.end_date or date.min, r.resident.sort_key,
                             r.debtor_name))
    return rows


def account_debtor(*, section, resident: Resident, relative_id: int | None = None) -> Debtor:
    if relative_id:
        if not Relative.objects.filter(pk=relative_id, resident=resident).exists():
            raise ValidationError(_("Ce proche n'est pas un proche du résident."))
        return Debtor(section.pk, Invoice.DebtorKind.RELATIVE, resident_id=resident.pk, relative_id=relative_id)
    return Debtor(section.pk, Invoice.DebtorKind.RESIDENT, resident_id=resident.pk)


def credit_refund(*, debtor: Debtor, on: date, amount, mode: str, reference: str = "", comment: str = "",
                  user=None) -> Payment:
    """Refund a credit by cheque or transfer (``refund_record`` checks it does not exceed the credit)."""
    if mode not in REFUND_MODES:
        raise ValidationError({"mode": _("Un remboursement se fait par chèque ou par virement.")})
    return refund_record(debtor=debtor, on=on, amount=amount, mode=mode, reference=reference, comment=comment,
                         user=user)
