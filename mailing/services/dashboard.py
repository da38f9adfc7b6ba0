"""The outbox on the tableau de bord (imported at start-up by ``StructuresConfig.ready``): per section
the messages given up (*échec définitif*) or interrupted during sending (*à vérifier*), and a to-do
to look at them."""
from __future__ import annotations

from collections import defaultdict

from django.db.models import Count
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from structures.dashboard import Fact, Todo, register_facts, register_todos

from ..models import OutgoingMessage

FAILED_STATUSES = (OutgoingMessage.Status.FAILED, OutgoingMessage.Status.UNCERTAIN)


def failed_messages(*, sections, shared) -> dict[int, dict[str, int]]:
    """Per section, {status: count} of messages given up or to check (whatever their month: a failed
    message stays a to-do until someone resends or cancels it)."""
    if "mailing" not in shared:
        counts = defaultdict(dict)
        for section_id, status, n in (OutgoingMessage.objects.filter(section__in=sections, status__in=FAILED_STATUSES)
                                      .values("section_id", "status").annotate(n=Count("pk"))
                                      .values_list("section_id", "status", "n")):
            counts[section_id][status] = n
        shared["mailing"] = counts
    return shared["mailing"]


@register_facts
def mailing_facts(*, user, sections, year, month, shared) -> dict:
    counts = failed_messages(sections=sections, shared=shared)
    facts = {}
    for section in sections:
        failed = counts.get(section.pk, {}).get(OutgoingMessage.Status.FAILED, 0)
        uncertain = counts.get(section.pk, {}).get(OutgoingMessage.Status.UNCERTAIN, 0)
        facts[section.pk] = [Fact(
            _("Courriels en échec"), _("%(failed)s en échec, %(uncertain)s à vérifier") % {
                "failed": failed, "uncertain": uncertain},
            reverse("mailing:campaigns", kwargs={"alias": section.alias}) if failed or uncertain else "",
            "error" if failed or uncertain else "ok", key="failed_mails")]
    return facts


@register_todos
def mailing_todos(*, user, sections, year, month, shared) -> list:
    counts = failed_messages(sections=sections, shared=shared)
    todos = []
    for section in sections:
        n = sum(counts.get(section.pk, {}).values())
        if n:
            todos.append(Todo(ngettext("Vérifier %(n)s courriel en échec ou interrompu",
                                       "Vérifier %(n)s courriels en échec ou interrompus", n) % {"n": n},
                              reverse("mailing:campaigns", kwargs={"alias": section.alias}), section, n, "error",
                              key="failed_mails"))
    return todos
