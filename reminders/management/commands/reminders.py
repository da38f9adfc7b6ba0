"""manage.py reminders --section TIL-HP [--date 2026-05-02] [--limit-date 2026-05-01] [--create] [--format csv]

Prints the reminder proposal (FACTURE;DEBITEUR;NIVEAU;RESTE;RETARD_JOURS;EXCLUSION), through the
shared export writer; ``--create`` stores it as a run, as the screen does (never sends anything)."""
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
from ...services.runs import run_create

HEADERS = ("FACTURE", "DEBITEUR", "NIVEAU", "RESTE", "RETARD_JOURS", "EXCLUSION")


def _parse(value: str, name: str) -> Date:
    try:
        return Date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"Date invalide pour {name} : « {value} » (attendu AAAA-MM-JJ).") from exc


class Command(BaseCommand):
    help = "Affiche la proposition de relances d'une section (et la crée avec --create)."

    def add_arguments(self, parser):
        parser.add_argument("--section", required=True, help="Alias de la section (ex. TIL-HP).")
        parser.add_argument("--date", default="", help="Date d'impression AAAA-MM-JJ (défaut : aujourd'hui).")
        parser.add_argument("--limit-date", dest="limit_date", default="",
                            help="Date limite AAAA-MM-JJ (défaut : le 1er du mois de --date).")
        parser.add_argument("--create", action="store_true", help="Crée la campagne de relance proposée.")
        parser.add_argument("--format", dest="fmt", default="csv", help="csv (seul format).")

    def handle(self, *args, section, date, limit_date, create, fmt, **options):
        if (fmt or "").lower() != "csv":
            raise CommandError(f"Format inconnu : « {fmt} » (format possible : csv).")
        try:
            section_obj = Section.objects.select_related("establishment").get(alias=section)
        except Section.DoesNotExist as exc:
            raise CommandError(f"Section inconnue : « {section} ».") from exc
        print_date = _parse(date, "--date") if date else timezone.localdate()
        limit = _parse(limit_date, "--limit-date") if limit_date else first_of_month(print_date)
        if create:
            try:
                run = run_create(section=section_obj, print_date=print_date, limit_date=limit)
            except ValidationError as exc:
                raise CommandError(" ".join(exc.messages)) from exc
            rows = [(r.invoice.number, r.invoice.debtor_name, r.level, r.balance, r.days_late,
                     _label(r.exclusion)) for r in run.reminders.select_related("invoice")
                    .order_by("invoice__debtor_name", "invoice__due_date", "invoice__number")]
            self.stderr.write(f"Campagne de relance n° {run.pk} créée ({len(rows)} ligne(s)).")
        else:
            if limit > print_date:
                raise CommandError("La date limite doit précéder la date d'impression.")
            rows = [(r.invoice.number, r.debtor_name, r.level, r.balance, r.days_late, r.exclusion_label)
                    for r in proposal_rows(section=section_obj, limit_date=limit, print_date=print_date)]
        sys.stdout.flush()
        self.stdout.write(csv_bytes(itertools.chain([HEADERS], rows)).decode("utf-8-sig"), ending="")


def _label(code: str) -> str:
    from ...services.proposal import EXCLUSIONS

    return str(EXCLUSIONS.get(code, "")) if code else ""
