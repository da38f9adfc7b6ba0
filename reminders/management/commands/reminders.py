"""manage.py reminders (--section TIL-HP | --all-sections [--section TIL-HP]) [--date 2026-05-02]
[--limit-date 2026-05-01] [--create] [--format csv]

Prints the reminder proposal (FACTURE;DEBITEUR;NIVEAU;RESTE;RETARD_JOURS;EXCLUSION, with a first
column SECTION for ``--all-sections``), through the shared export writer; ``--create`` stores it as
runs, as the screen does (never sends anything). ``--all-sections``: every active section of the
association of ``--section`` (of every association without it), one run per section."""
from __future__ import annotations

import itertools
import sys
from datetime import date as Date

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from core.exports import csv_bytes
from structures.models import Section

from ...services.proposal import first_of_month, proposal_rows
from ...services.runs import run_create, runs_create

HEADERS = ("FACTURE", "DEBITEUR", "NIVEAU", "RESTE", "RETARD_JOURS", "EXCLUSION")
ALL_HEADERS = ("SECTION",) + HEADERS


def _parse(value: str, name: str) -> Date:
    try:
        return Date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"Date invalide pour {name} : « {value} » (attendu AAAA-MM-JJ).") from exc


class Command(BaseCommand):
    help = "Affiche la proposition de relances d'une section (et la crée avec --create)."

    def add_arguments(self, parser):
        parser.add_argument("--section", default="", help="Alias de la section (ex. TIL-HP).")
        parser.add_argument("--all-sections", dest="all_sections", action="store_true",
                            help="Toutes les sections actives de l'association de --section (sans --section : "
                                 "de toutes les associations), une campagne par section.")
        parser.add_argument("--date", default="", help="Date d'impression AAAA-MM-JJ (défaut : aujourd'hui).")
        parser.add_argument("--limit-date", dest="limit_date", default="",
                            help="Date limite AAAA-MM-JJ (défaut : le 1er du mois de --date).")
        parser.add_argument("--create", action="store_true", help="Crée la campagne de relance proposée.")
        parser.add_argument("--format", dest="fmt", default="csv", help="csv (seul format).")

    def handle(self, *args, section, all_sections, date, limit_date, create, fmt, **options):
        if (fmt or "").lower() != "csv":
            raise CommandError(f"Format inconnu : « {fmt} » (format possible : csv).")
        if not section and not all_sections:
            raise CommandError("Indiquez --section ALIAS ou --all-sections.")
        section_obj = None
        if section:
            try:
                section_obj = Section.objects.select_related("establishment").get(alias=section)
            except Section.DoesNotExist as exc:
                raise CommandError(f"Section inconnue : « {section} ».") from exc
        print_date = _parse(date, "--date") if date else timezone.localdate()
        limit = _parse(limit_date, "--limit-date") if limit_date else first_of_month(print_date)
        if limit > print_date:
            raise CommandError("La date limite doit précéder la date d'impression.")
        if all_sections:
            sections = Section.objects.filter(is_active=True).select_related("establishment").order_by("alias")
            if section_obj is not None:
                sections = sections.filter(establishment__organisation_id=section_obj.establishment.organisation_id)
            sections = list(sections)
        else:
            sections = [section_obj]
        aliases = {s.pk: s.alias for s in sections}
        if create:
            try:
                runs = run_create_many(sections=sections, print_date=print_date, limit_date=limit)
            except ValidationError as exc:
                raise CommandError(" ".join(exc.messages)) from exc
            rows = [(run.section.alias, r.invoice.number, r.invoice.debtor_name, r.level, r.balance, r.days_late,
                     _label(r.exclusion)) for run in runs for r in run.reminders.select_related("invoice")
                    .order_by("invoice__debtor_name", "invoice__due_date", "invoice__number")]
            for run in runs:
                self.stderr.write(f"Campagne de relance n° {run.pk} créée pour {run.section.alias} "
                                  f"({run.reminders.count()} ligne(s)).")
        else:
            rows = [(aliases[r.invoice.section_id], r.invoice.number, r.debtor_name, r.level, r.balance,
                     r.days_late, r.exclusion_label)
                    for r in proposal_rows(sections=sections, limit_date=limit, print_date=print_date)]
        if not all_sections:
            rows = [row[1:] for row in rows]
        sys.stdout.flush()
        headers = ALL_HEADERS if all_sections else HEADERS
        self.stdout.write(csv_bytes(itertools.chain([headers], rows)).decode("utf-8-sig"), ending="")


def run_create_many(*, sections, print_date, limit_date):
    if len(sections) == 1:
        return [run_create(section=sections[0], print_date=print_date, limit_date=limit_date)]
    return runs_create(sections=sections, print_date=print_date, limit_date=limit_date)


def _label(code: str) -> str:
    from ...services.proposal import EXCLUSIONS

    return str(EXCLUSIONS.get(code, "")) if code else ""
