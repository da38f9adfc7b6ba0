"""SEPA on the tableau de bord (imported at start-up by ``StructuresConfig.ready``): one to-do per
section with lapsed mandates or mandates about to lapse — « 3 mandats SEPA caducs ou bientôt caducs »,
one query for all the user's sections (``mandates_lapse_todo``)."""
from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext as _

from structures.dashboard import Todo, register_todos

from .mandates import mandates_lapse_todo


@register_todos(order=45)
def mandate_lapse_todos(*, user, sections, year, month, shared) -> list[Todo]:
    by_id = {section.pk: section for section in sections}
    todos = []
    for section_id, (lapsed, lapsing) in mandates_lapse_todo(sections).items():
        section = by_id[section_id]
        todos.append(Todo(_("%(lapsed)s mandat(s) SEPA caduc(s), %(lapsing)s bientôt caduc(s) pour %(alias)s") % {
            "lapsed": lapsed, "lapsing": lapsing, "alias": section.alias},
            reverse("sepa:mandates-lapsed", kwargs={"alias": section.alias}), section, count=lapsed + lapsing,
            level="warning" if lapsed else "info", key="sepa-mandates-lapse"))
    return todos
