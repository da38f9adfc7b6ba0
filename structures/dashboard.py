"""The tableau de bord (home page after login): what each granted section looks like this month and
what is left to do. ``structures`` knows no billing or mailing model: the apps above plug in from
their ``services/dashboard.py`` (imported at start-up by ``StructuresConfig.ready``, like the
``services/mailing.py`` modules of the outbox) with three kinds of providers:

* **facts** — ``func(*, user, sections, year, month, shared) -> {section_id: [Fact, …]}``: figures shown in
  each section's card (period status, checks, totals, occupancy…);
* **charts** — ``func(*, user, sections, year, month, shared) -> {section_id: [Chart, …]}``: a template and
  its context (small inline SVG/CSS charts, no JavaScript);
* **to-dos** — ``func(*, user, sections, year, month, shared) -> [Todo, …]``: what is left to do, shown as
  one list (payments to allocate, reminders proposed, debit batches… register theirs later);
* **actions** — ``func(*, user, sections, year, month, shared) -> [Action, …]``: buttons over all sections
  (« Générer tout », « Émettre tout »), each app checking the roles it needs;
* **links** — ``func(*, user, sections, year, month, shared) -> [Link, …]``: pages over all the user's
  sections (« Restes à recouvrer » of the association), shown next to the actions.

``sections`` are always the ones ``access.sections_for(user)`` returns: a provider never widens them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

# (order, provider) pairs, kept sorted by order.
FACT_PROVIDERS: list[tuple[int, Callable]] = []
CHART_PROVIDERS: list[tuple[int, Callable]] = []
TODO_PROVIDERS: list[tuple[int, Callable]] = []
ACTION_PROVIDERS: list[tuple[int, Callable]] = []
LINK_PROVIDERS: list[tuple[int, Callable]] = []


@dataclass
class Fact:
    label: str
    value: str
    url: str = ""
    level: str = ""  # "" | "ok" | "warning" | "error"
    key: str = ""  # stable identifier for templates and tests


@dataclass
class Chart:
    title: str
    template: str
    context: dict = field(default_factory=dict)
    key: str = ""


@dataclass
class Todo:
    text: str
    url: str = ""
    section: object = None
    count: int = 0
    level: str = "warning"  # "error" first, then "warning", then "info"
    key: str = ""


@dataclass
class Action:
    label: str
    url: str
    fields: dict = field(default_factory=dict)  # hidden POST fields
    help: str = ""
    key: str = ""


@dataclass
class Link:
    label: str
    url: str
    key: str = ""


@dataclass
class SectionCard:
    section: object
    facts: list[Fact] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)


@dataclass
class Dashboard:
    year: int
    month: int
    cards: list[SectionCard]
    todos: list[Todo]
    actions: list[Action]
    links: list[Link] = field(default_factory=list)

    @property
    def tree(self) -> dict:
        """association → establishment → cards, as the former home page showed the sections."""
        tree: dict = {}
        for card in self.cards:
            establishment = card.section.establishment
            tree.setdefault(establishment.organisation, {}).setdefault(establishment, []).append(card)
        return tree


def _register(registry: list, func: Callable | None, order: int):
    """Usable as ``@register_x`` or ``@register_x(order=20)``; providers run (and show) by ``order``."""
    def add(f: Callable) -> Callable:
        if all(existing is not f for _, existing in registry):
            registry.append((order, f))
            registry.sort(key=lambda pair: pair[0])
        return f
    return add(func) if func is not None else add


def register_facts(func: Callable | None = None, *, order: int = 50):
    return _register(FACT_PROVIDERS, func, order)


def register_charts(func: Callable | None = None, *, order: int = 50):
    return _register(CHART_PROVIDERS, func, order)


def register_todos(func: Callable | None = None, *, order: int = 50):
    return _register(TODO_PROVIDERS, func, order)


def register_actions(func: Callable | None = None, *, order: int = 50):
    return _register(ACTION_PROVIDERS, func, order)


def register_links(func: Callable | None = None, *, order: int = 50):
    return _register(LINK_PROVIDERS, func, order)


def unregister(func: Callable) -> None:
    for registry in (FACT_PROVIDERS, CHART_PROVIDERS, TODO_PROVIDERS, ACTION_PROVIDERS, LINK_PROVIDERS):
        registry[:] = [pair for pair in registry if pair[1] is not func]


LEVEL_ORDER = {"error": 0, "warning": 1, "info": 2}


def dashboard_build(*, user, sections, year: int, month: int) -> Dashboard:
    sections = list(sections)
    # ``shared``: one dict per dashboard where a provider may keep what its other providers reuse.
    kwargs = {"user": user, "sections": sections, "year": year, "month": month, "shared": {}}
    cards = {s.pk: SectionCard(section=s) for s in sections}
    for _order, provider in FACT_PROVIDERS:
        for section_id, facts in provider(**kwargs).items():
            if section_id in cards:
                cards[section_id].facts.extend(facts)
    for _order, provider in CHART_PROVIDERS:
        for section_id, charts in provider(**kwargs).items():
            if section_id in cards:
                cards[section_id].charts.extend(charts)
    allowed = set(cards)
    todos = [todo for _order, provider in TODO_PROVIDERS for todo in provider(**kwargs)
             if todo.section is None or todo.section.pk in allowed]
    todos.sort(key=lambda t: (LEVEL_ORDER.get(t.level, 9), t.section.alias if t.section else "", t.text))
    actions = [action for _order, provider in ACTION_PROVIDERS for action in provider(**kwargs)]
    links = [link for _order, provider in LINK_PROVIDERS for link in provider(**kwargs)] if sections else []
    return Dashboard(year=year, month=month, cards=list(cards.values()), todos=todos, actions=actions, links=links)
