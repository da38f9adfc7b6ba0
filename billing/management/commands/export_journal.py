"""manage.py export_journal --section TIL-HP --month 2026-11 --format csv [-o journal.csv]"""
from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from structures.models import Section

from ...services import journal as journal_services
from ...services import periods

FORMATS = ("csv", "xlsx")


class Command(BaseCommand):
    help = "Exporte le journal des factures d'une période (une ligne par ligne de facture) en CSV ou XLSX."

    def add_arguments(self, parser):
        parser.add_argument("--section", required=True, help="Alias de la section (ex. TIL-HP).")
        parser.add_argument("--month", required=True, help="Mois de la période, AAAA-MM (ex. 2026-11).")
        parser.add_argument("--format", dest="fmt", default="csv", help="csv (défaut) ou xlsx.")
        parser.add_argument("-o", "--output", default="", help="Fichier à écrire (obligatoire pour xlsx). "
                                                               "Sans -o, le CSV est écrit sur la sortie standard.")

    def handle(self, *args, section, month, fmt, output, **options):
        fmt = (fmt or "").lower()
        if fmt not in FORMATS:
            raise CommandError(f"Format inconnu : « {fmt} » (formats possibles : csv, xlsx).")
        if fmt == "xlsx" and not output:
            raise CommandError("Le format xlsx est un fichier binaire : indiquez le fichier à écrire avec -o.")
        try:
            section_obj = Section.objects.select_related("establishment").get(alias=section)
        except Section.DoesNotExist as exc:
            raise CommandError(f"Section inconnue : « {section} ».") from exc
        try:
            year, number = periods.parse_month(month)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        period = periods.period_for_month(section=section_obj, year=year, month=number)
        if period is None:
            raise CommandError(f"Aucune période de facturation de la section {section_obj.alias} "
                               f"ne couvre le mois {number:02d}/{year}.")
        export = journal_services.journal_csv if fmt == "csv" else journal_services.journal_xlsx
        content = export(period)
        if not output:
            buffer = getattr(self.stdout._out, "buffer", None)
            if buffer is not None:
                self.stdout.flush()
                buffer.write(content)
                buffer.flush()
            else:  # a text stream (call_command(stdout=StringIO()) in tests)
                self.stdout.write(content.decode("utf-8"), ending="")
            return
        try:
            Path(output).write_bytes(content)
        except OSError as exc:
            raise CommandError(f"Impossible d'écrire le fichier « {output} » : {exc.strerror or exc}.") from exc
        self.stdout.write(self.style.SUCCESS(f"Journal {period.label} ({section_obj.alias}) exporté dans {output}."))
