"""Reminders on the tableau de bord (imported at start-up by ``StructuresConfig.ready``): one to-do
per section whose month's proposal waits for validation — « 12 relances proposées pour TIL-HP » —
and one per section with social-aid applications pending too long (their invoices are not reminded)."""
from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import ngettext

from payers.selectors import stale_pending_counts
from structures.dashboard import Todo, register_todos

from ..selectors import proposals_todo


@register_todos(order=40)
def reminder_todos(*, user, sections, year, month, shared) -> list[Todo]:
    by_alias = {section.alias: section for section in sections}
    return [Todo(line["text"], reverse("reminders:run", kwargs={"alias": line["section"], "pk": line["run_id"]}),
                 by_alias[line["section"]], count=line["count"], level="info", key="reminders")
            for line in proposals_todo(sections) if line["section"] in by_alias]


@register_todos(order=41)
def aid_pending_todos(*, user, sections, year, month, shared) -> list[Todo]:
    """« 2 demandes d'aide sociale en attente depuis plus de 4 mois pour TIL-HP », to the runs page's
    list of suspended invoices (with the filing dates)."""
    months = settings.SOCIAL_AID_PENDING_WARNING_MONTHS
    counts = stale_pending_counts(sections=sections, on=timezone.localdate(), months=months)
    todos = []
    for section in sections:
        n = counts.get(section.pk)
        if not n:
            continue
        text = ngettext("%(count)s demande d'aide sociale en attente depuis plus de %(months)s mois pour %(alias)s",
                        "%(count)s demandes d'aide sociale en attente depuis plus de %(months)s mois pour %(alias)s",
                        n) % {"count": n, "months": months, "alias": section.alias}
        todos.append(Todo(text, reverse("reminders:runs", kwargs={"alias": section.alias}) + "#aid-pending", section,
                          count=n, level="warning", key="social_aid_pending"))
    return todos
