"""manage.py import_pes_acquit FILE [--section ALIAS]

Reads a PES_ACQUIT (the accountant's acknowledgement) and marks each rôle it names (exercice and
rôle number) accepted or rejected with the reasons; a rejected rôle's invoices go into the next rôle."""
from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from structures.models import Section

from ...services import pes as services


class Command(BaseCommand):
    help = "Importe un acquittement PES (PES_ACQUIT) : rôles acceptés ou rejetés avec leur motif."

    def add_arguments(self, parser):
        parser.add_argument("file", help="Fichier PES_ACQUIT.")
        parser.add_argument("--section", default="", help="Limiter à l'établissement de cette section.")

    def handle(self, *args, file, section="", **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"Fichier introuvable : « {file} ».")
        establishments = None
        if section:
            section_obj = Section.objects.filter(alias=section).first()
            if section_obj is None:
                raise CommandError(f"Section inconnue : « {section} ».")
            establishments = [section_obj.establishment_id]
        try:
            results = services.acquit_import(content=path.read_bytes(), establishments=establishments)
        except ValidationError as exc:
            raise CommandError("\n".join(exc.messages)) from exc
        for result in results:
            state = "accepté" if result.accepted else f"rejeté : {result.reason}"
            self.stderr.write(f"Rôle n° {result.role.id_bord}/{result.role.exercice} {state}.")
