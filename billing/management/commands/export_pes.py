"""manage.py export_pes --section ALIAS --month YYYY-MM [-o FILE] [--simulate]
manage.py export_pes --section ALIAS --role N [--exercice YYYY] [-o FILE]

Builds the PES V2 ORMC rôle of the section's period for the month (public establishments): with
``--simulate`` nothing is stored and no rôle number is consumed; otherwise the rôle is numbered,
checked (rules of books.md §1, and the official XSD when ``PES_XSD_DIR`` is set) and stored. With
``--role`` the file of a stored rôle is written again (rebuilt from its snapshots: the same bytes).
Without ``-o`` the file is written in the current directory under its NomFic."""
from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from core.pes import PesError
from structures.models import Section

from ...models import PesRole
from ...services import pes as services
from ...services.periods import parse_month, period_for_month


class Command(BaseCommand):
    help = "Génère (ou simule) le rôle PES V2 ORMC d'un mois pour un établissement public."

    def add_arguments(self, parser):
        parser.add_argument("--section", required=True, help="Alias de la section (ex. VER-HP).")
        parser.add_argument("--month", default="", help="Mois AAAA-MM.")
        parser.add_argument("-o", "--output", default="", help="Fichier à écrire (défaut : NomFic du rôle).")
        parser.add_argument("--simulate", action="store_true", help="Simuler : rien n'est enregistré.")
        parser.add_argument("--role", type=int, default=None, help="Réécrire le fichier du rôle n° N.")
        parser.add_argument("--exercice", type=int, default=None, help="Exercice du rôle (avec --role).")

    def handle(self, *args, section, month, output, simulate=False, role=None, exercice=None, **options):
        section_obj = Section.objects.select_related("establishment").filter(alias=section).first()
        if section_obj is None:
            raise CommandError(f"Section inconnue : « {section} ».")
        if role is not None:
            roles = PesRole.objects.filter(section=section_obj, id_bord=role)
            if exercice:
                roles = roles.filter(exercice=exercice)
            stored = roles.order_by("-exercice").first()
            if stored is None:
                raise CommandError(f"Aucun rôle n° {role} pour la section {section}.")
            content = services.role_render(stored)
            if content != bytes(stored.content):
                raise CommandError(f"Le rôle n° {role} ne se régénère pas à l'identique : fichier non écrit.")
            Path(output or stored.nom_fic).write_bytes(content)
            self.stderr.write(f"Rôle n° {stored.id_bord}/{stored.exercice} écrit dans {output or stored.nom_fic}.")
            return
        try:
            year, month_number = parse_month(month)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        period = period_for_month(section=section_obj, year=year, month=month_number)
        if period is None:
            raise CommandError(f"Aucune période de {month} pour la section {section}.")
        try:
            if simulate:
                draft = services.role_simulate(period=period)
                if draft.errors:
                    raise PesError(draft.errors)
                content, name, count = draft.content, draft.data["envelope"]["nom_fic"], len(draft.articles)
                total = draft.total
            else:
                stored = services.role_generate(period=period)
                content, name, count, total = bytes(stored.content), stored.nom_fic, stored.pieces_count, stored.total
        except PesError as exc:
            raise CommandError("Fichier refusé par le contrôle PES :\n" + "\n".join(exc.messages)) from exc
        except ValidationError as exc:
            raise CommandError("\n".join(exc.messages)) from exc
        Path(output or name).write_bytes(content)
        state = "simulation, rien d'enregistré" if simulate else "rôle enregistré"
        self.stderr.write(f"{count} titre(s), {total} €, écrits dans {output or name} ({state}).")
