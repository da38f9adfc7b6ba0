"""manage.py export_balances --section TIL-HP | --all-sections [--association NOM] [--date 2026-12-31]
--format csv|xlsx [-o FILE]

One row per open invoice (FACTURE;DEBITEUR;TYPE_DEBITEUR;REF_EXTERNE;DATE_EMISSION;ECHEANCE;MONTANT;
REGLE;RESTE;RETARD_JOURS) and one per unallocated credit (negative RESTE, empty FACTURE), as of the date.
With ``--all-sections``: every section of the association, a first column SECTION (its alias)."""
from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from structures.models import Organisation, Section

from ...services import balances

FORMATS = ("csv", "xlsx")


class Command(BaseCommand):
    help = "Exporte les restes à recouvrer d'une section (factures ouvertes et crédits non imputés) en CSV ou XLSX."

    def add_arguments(self, parser):
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--section", help="Alias de la section (ex. TIL-HP).")
        target.add_argument("--all-sections", action="store_true",
                            help="Toutes les sections de l'association (colonne SECTION en tête).")
        parser.add_argument("--association", default="",
                            help="Nom de l'association, avec --all-sections quand la base en contient plusieurs.")
        parser.add_argument("--date", default="", help="Situation au AAAA-MM-JJ (défaut : aujourd'hui).")
        parser.add_argument("--format", dest="fmt", default="csv", help="csv (défaut) ou xlsx.")
        parser.add_argument("-o", "--output", default="", help="Fichier à écrire (obligatoire pour xlsx). "
                                                               "Sans -o, le CSV est écrit sur la sortie standard.")

    def handle(self, *args, section, all_sections, association, date: str, fmt, output, **options):
        fmt = (fmt or "").lower()
        if fmt not in FORMATS:
            raise CommandError(f"Format inconnu : « {fmt} » (formats possibles : csv, xlsx).")
        if fmt == "xlsx" and not output:
            raise CommandError("Le format xlsx s'écrit dans un fichier : indiquez -o FICHIER.xlsx.")
        try:
            on = _parse(date) if date else timezone.localdate()
        except ValueError as exc:
            raise CommandError(f"Date invalide : « {date} » (attendu AAAA-MM-JJ).") from exc
        if all_sections:
            sections = list(Section.objects.filter(establishment__organisation=_organisation(association))
                            .order_by("alias"))
            content = balances.balances_export(sections=sections, on=on, fmt=fmt)
        else:
            try:
                section_obj = Section.objects.select_related("establishment").get(alias=section)
            except Section.DoesNotExist as exc:
                raise CommandError(f"Section inconnue : « {section} ».") from exc
            content = balances.balances_export(section=section_obj, on=on, fmt=fmt)
        if output:
            Path(output).write_bytes(content)
            self.stderr.write(f"Restes à recouvrer au {on:%d/%m/%Y} écrits dans {output}.")
        else:
            sys.stdout.flush()
            self.stdout.write(content.decode("utf-8-sig"), ending="")


def _organisation(name: str) -> Organisation:
    organisations = list(Organisation.objects.order_by("name"))
    if name:
        chosen = [o for o in organisations if o.name.casefold() == name.strip().casefold()]
        if not chosen:
            raise CommandError(f"Association inconnue : « {name} » (associations : "
                               f"{', '.join(o.name for o in organisations)}).")
        return chosen[0]
    if len(organisations) != 1:
        raise CommandError("La base contient plusieurs associations : indiquez --association NOM ("
                           f"{', '.join(o.name for o in organisations)}).")
    return organisations[0]


def _parse(value: str):
    return date.fromisoformat(value)
