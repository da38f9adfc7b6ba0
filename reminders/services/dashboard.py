"""Reminders on the tableau de bord (imported at start-up by ``StructuresConfig.ready``): one to-do
per section whose month's proposal waits for validation — « 12 relances proposées pour TIL-HP »."""
from __future__ import annotations

from django.urls import reverse

from structures.dashboard import Todo, register_todos

from ..selectors import proposals_todo


@register_todos(order=40)
def reminder_todos(*, user, sections, year, month, shared) -> list[Todo]:
    by_alias = {section.alias: section for section in sections}
    return [Todo(line["text"], reverse("reminders:run", kwargs={"alias": line["section"], "pk": line["run_id"]}),
                 by_alias[line["section"]], count=line["count"], level="info", key="reminders")
            for line in proposals_todo(sections) if line["section"] in by_alias]
