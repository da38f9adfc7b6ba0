"""manage.py import_payments --section TIL-HP FILE.csv [--dry-run] [--allow-duplicates]

Validates the whole file, prints every error as ``fichier › ligne › colonne › valeur › message`` and
exits with status 1 without writing anything; otherwise records and allocates every payment in one
transaction and prints a summary. ``--dry-run`` only validates (the run is recorded as a simulation).
"""
from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from structures.models import Section

from ...services import payments_import as service
from .import_absences import _read


class Command(BaseCommand):
    help = ("Importe des règlements (CSV DATE;MONTANT;MODE;FACTURE;REF_EXTERNE;PAYEUR;REFERENCE;TIREUR;"
            "COMMENTAIRE) dans une section et les impute aux factures.")

    def add_arguments(self, parser):
        parser.add_argument("file", help="Fichier des règlements (CSV).")
        parser.add_argument("--section", required=True, help="Alias de la section (ex. TIL-HP).")
        parser.add_argument("--dry-run", action="store_true", help="Valider seulement, sans rien écrire.")
        parser.add_argument("--allow-duplicates", action="store_true",
                            help="Accepter une ligne identique à un règlement existant (date, montant, référence, "
                                 "débiteur).")

    def handle(self, *args, file, section, dry_run, allow_duplicates, **options):
        try:
            section_obj = Section.objects.select_related("establishment__organisation").get(alias=section)
        except Section.DoesNotExist as exc:
            raise CommandError(f"Section inconnue : « {section} ».") from exc
        data = _read(file, "Fichier des règlements")
        try:
            run = service.payments_import_apply(section=section_obj, data=data, name=Path(file).name,
                                                dry_run=dry_run, allow_duplicates=allow_duplicates)
        except service.PaymentsImportError as exc:
            for entry in exc.run.report:
                for p in entry["errors"]:
                    self.stderr.write(f"ERREUR : {entry['file']} › ligne {entry['row'] or '—'} › "
                                      f"{p['column'] or '—'} › {p['value'] if p['value'] != '' else '—'} › "
                                      f"{p['message']}")
            raise CommandError(f"{exc} (import n° {exc.run.pk}).") from exc
        summary = run.summary
        if dry_run:
            self.stdout.write(self.style.SUCCESS(
                f"Simulation réussie, rien n'a été écrit : {summary['section']} — {summary['lines']} règlement(s), "
                f"{summary['total_label']}."))
            return
        self.stdout.write(self.style.SUCCESS(
            f"Import réussi : {summary['section']} — {summary['lines']} règlement(s), {summary['total_label']} ; "
            f"non imputé (crédit) : {summary['credit_label']}."))
