"""manage.py import_bank_statement --section TIL-HP FILE.xml [--dry-run]

Reads a camt.053 bank statement (.001.02 or .001.08): credits naming an invoice of the section in
their remittance text are recorded as payments (virement) and allocated; the other lines wait on the
manual matching screen. A bad file is refused whole (``fichier › ligne › élément › valeur › message``,
exit status 1); importing the same statement again records nothing new.
"""
from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from structures.models import Section

from ...services import bank_statement as service
from .import_absences import _read


class Command(BaseCommand):
    help = "Importe un relevé bancaire camt.053 dans une section : virements rapprochés des factures."

    def add_arguments(self, parser):
        parser.add_argument("file", help="Relevé camt.053 (XML).")
        parser.add_argument("--section", required=True, help="Alias de la section (ex. TIL-HP).")
        parser.add_argument("--dry-run", action="store_true", help="Lire et rapprocher seulement, sans rien écrire.")

    def handle(self, *args, file, section, dry_run, **options):
        try:
            section_obj = Section.objects.select_related("establishment__organisation").get(alias=section)
        except Section.DoesNotExist as exc:
            raise CommandError(f"Section inconnue : « {section} ».") from exc
        data = _read(file, "Relevé bancaire")
        try:
            run = service.statement_import_apply(section=section_obj, data=data, name=Path(file).name, dry_run=dry_run)
        except service.StatementImportError as exc:
            for entry in exc.run.report:
                for p in entry["errors"]:
                    self.stderr.write(f"ERREUR : {entry['file']} › ligne {entry['row'] or '—'} › "
                                      f"{p['column'] or '—'} › {p['value'] if p['value'] != '' else '—'} › "
                                      f"{p['message']}")
            raise CommandError(f"{exc} (import n° {exc.run.pk}).") from exc
        s = run.summary
        head = "Simulation, rien n'a été écrit" if dry_run else "Relevé importé"
        self.stdout.write(self.style.SUCCESS(
            f"{head} : {s['section']} ({s['version']}) — {s['lines']} ligne(s), dont {s['already']} déjà importée(s) ; "
            f"{s['matched']} virement(s) rapproché(s) pour {s['matched_total_label']} ; "
            f"{s['pending']} ligne(s) à rapprocher à la main."))
