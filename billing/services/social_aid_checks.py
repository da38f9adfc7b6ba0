"""Social-aid applications seen from billing: the pre-flight warning for an application still pending
long after its filing (registered on the period checks in ``BillingConfig.ready``; payers, below
billing, holds the applications and the selector, and imports nothing of billing)."""
from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from django.utils.translation import gettext as _

from core.formats import fr_date
from payers.selectors import stale_pending_applications

from .checks import Check


def social_aid_pending_too_long(*, period, stays) -> list[Check]:
    """A pending application of a stay of the period filed more than ``SOCIAL_AID_PENDING_WARNING_MONTHS``
    months before the period's end: warn, naming the resident, the département and the filing date."""
    months = settings.SOCIAL_AID_PENDING_WARNING_MONTHS
    alias = period.section.alias
    applications = stale_pending_applications(stay_ids=[s.pk for s in stays], on=period.end, months=months)
    return [Check("warning", _(
        "%(name)s : demande d'aide sociale déposée le %(day)s auprès de %(payer)s toujours en attente après plus "
        "de %(months)s mois — ses factures ne sont pas relancées ; relancez le département.") % {
        "name": application.stay.resident.full_name, "day": fr_date(application.filed_on),
        "payer": application.payer.code, "months": months},
        reverse("payers:resident-social-aid", kwargs={"alias": alias, "pk": application.stay.resident_id}),
        _("Demande d'aide sociale")) for application in applications]
