"""manage.py import_absences --section TIL-HP --month 2026-11 ABSENCES.csv [--mapping MAP.csv] [--dry-run]

Validates the whole file (and the correspondence table when given), prints every error as
``fichier › ligne › colonne › valeur › message`` and exits with status 1 without writing anything;
otherwise replaces the month's imported absences of the section, saves the correspondence table
when one was given, regenerates the drafts of the open period(s) concerned and prints a summary.
``--dry-run`` only validates (the run is still recorded, as a simulation).
"""
from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from billing.services.periods import parse_month
from structures.models import Section

from ...services import absences_import as service
from ...services.csvfiles import MAX_BYTES



def _read(path: str, what: str) -> bytes:
    file = Path(path)
    if not file.is_file():
        raise CommandError(f"{what} introuvable : « {path} ».")
    if file.stat().st_size > MAX_BYTES:
        raise CommandError(f"{what} « {path} » dépasse {MAX_BYTES // (1024 * 1024)} Mo.")
    try:
        return file.read_bytes()
    except OSError as exc:
        raise CommandError(f"Impossible de lire {what.lower()} « {path} » : {exc.strerror or exc}.") from exc


class Command(BaseCommand):
    help = ("Importe les absences d'un mois (fichier CSV/TXT ANNEE;MOIS;IDPERSONNE;SECTION;1…31) dans une "
            "section, avec le tableau de correspondance des codes enregistré ou fourni (--mapping).")

    def add_arguments(self, parser):
        parser.add_argument("absences", help="Fichier des absences du mois (CSV ou TXT).")
        parser.add_argument("--section", required=True, help="Alias de la section (ex. TIL-HP).")
        parser.add_argument("--month", required=True, help="Mois importé, AAAA-MM (ex. 2026-11).")
        parser.add_argument("--mapping", default="", help="Tableau de correspondance CODEMR;CODEEXT (enregistré "
                                                          "pour l'établissement si l'import réussit).")
        parser.add_argument("--dry-run", action="store_true", help="Valider seulement, sans rien écrire.")

    def handle(self, *args, absences, section, month, mapping, dry_run, **options):
        try:
            section_obj = Section.objects.select_related("establishment").get(alias=section)
        except Section.DoesNotExist as exc:
            raise CommandError(f"Section inconnue : « {section} ».") from exc
        try:
            year, month_number = parse_month(month)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        data = _read(absences, "Fichier des absences")
        mapping_data = _read(mapping, "Tableau de correspondance") if mapping else None
        kwargs = dict(section=section_obj, year=year, month=month_number, data=data, name=Path(absences).name,
                      mapping_data=mapping_data, mapping_name=Path(mapping).name if mapping else "correspondance.csv")
        if dry_run:
            validation = service.absences_import_validate(**kwargs)
            run = service.absences_import_record(validation=validation, dry_run=True)
            self._print_problems(validation.report)
            if not validation.ok:
                raise CommandError(f"{validation.error_count} erreur(s) : le fichier ne peut pas être importé "
                                   f"(simulation n° {run.pk}).")
            self._print_summary(run.summary, dry_run=True)
            return
        try:
            run = service.absences_import_apply(**kwargs, regenerate="inline")
        except service.AbsencesImportError as exc:
            if exc.run is not None:
                self._print_problems(exc.run.report)
            raise CommandError(f"{exc} (import n° {exc.run.pk if exc.run else '—'}).") from exc
        self._print_problems(run.report)  # warnings only
        self._print_summary(run.summary, dry_run=False)

    def _print_problems(self, report: list[dict]) -> None:
        for entry in report:
            for kind, problems in (("ERREUR", entry.get("errors", [])), ("AVERTISSEMENT", entry.get("warnings", []))):
                for p in problems:
                    row = entry.get("row") or "—"
                    self.stderr.write(f"{kind} : {entry.get('file', '')} › ligne {row} › {p['column'] or '—'} › "
                                      f"{p['value'] if p['value'] != '' else '—'} › {p['message']}")

    def _print_summary(self, summary: dict, *, dry_run: bool) -> None:
        head = "Simulation réussie, rien n'a été écrit" if dry_run else "Import réussi"
        self.stdout.write(self.style.SUCCESS(
            f"{head} : {summary['section']} {summary['month_label']} — {summary['lines']} ligne(s), "
            f"{summary['absences']} absence(s), {summary['absence_days']} jour(s) d'absence."))
        verb = "seraient" if dry_run else "ont été"
        self.stdout.write(f"Absences créées : {summary['created']} ; modifiées : {summary['updated']} ; "
                          f"supprimées (remplacées) : {summary['deleted']} ; dont prolongations d'une absence du "
                          f"mois précédent : {summary['joined']} (ces changements {verb} appliqués).")
        if summary.get("mapping") == "file":
            self.stdout.write(f"Tableau de correspondance : {summary['mapping_codes']} code(s)"
                              f"{' (serait enregistré)' if dry_run else ' enregistré'}.")
        for period in summary.get("regenerated", []):
            if period.get("error"):
                self.stderr.write(f"Brouillons de la période {period['label']} non recalculés : {period['error']}")
            else:
                self.stdout.write(f"Brouillons de la période {period['label']} recalculés : "
                                  f"{period['drafts']} facture(s).")
