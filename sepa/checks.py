"""Pre-flight check of a period contributed by sepa (registered in ``SepaConfig.ready`` into
``billing.services.checks``, which never imports sepa): residents paying by direct debit whose
debtor has no active mandate."""
from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext as _

from residents.models import PaymentMode, Relative

from .models import Mandate


def direct_debit_without_mandate(*, period, stays) -> list:
    from billing.services.checks import Check

    section = period.section
    residents = {s.resident_id: s.resident for s in stays if s.resident.payment_mode == PaymentMode.DIRECT_DEBIT}
    if not residents:
        return []
    payers = dict(Relative.objects.filter(resident_id__in=residents, is_payer=True).values_list("resident_id", "pk"))
    active = set(Mandate.objects.filter(establishment_id=section.establishment_id, status=Mandate.Status.ACTIVE,
                                        resident_id__in=residents).values_list("resident_id", "relative_id"))
    checks = []
    for resident_id, resident in sorted(residents.items(), key=lambda item: item[1].sort_key or ""):
        if (resident_id, payers.get(resident_id)) in active:
            continue
        checks.append(Check("warning", _(
            "%(name)s paie par prélèvement mais son débiteur n'a pas de mandat SEPA actif : la facture ne pourra "
            "pas être prélevée.") % {"name": resident.full_name},
            reverse("sepa:resident-mandates", kwargs={"alias": section.alias, "pk": resident_id}),
            _("Mandats")))
    return checks
