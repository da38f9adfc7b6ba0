"""manage.py import_residents RESIDENTS.xlsx [--relatives PROCHES.xlsx] [--dry-run]
manage.py import_residents --template DIR [--section ALIAS]

Technicians' import of new residents (with their current stay) and relatives from XLSX files
(../shared/docs/formats.md). Both files are validated completely; every error is printed as
``file › sheet › row › column › value › message``; if there is any error nothing is written and
the command exits with status 1. Otherwise everything is created in one transaction and a
summary is printed (and the run is recorded as an ImportRun). ``--dry-run`` only validates.
Exit status: 0 success (or valid dry run), 1 errors in the files, 2 wrong usage.
"""
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from imports.services import residents_import as service


class Command(BaseCommand):
    help = "Importe des résidents (et leurs proches) depuis des classeurs XLSX, ou écrit les modèles (--template)."

    def add_arguments(self, parser):
        parser.add_argument("residents", nargs="?", help="Fichier des résidents (.xlsx).")
        parser.add_argument("--relatives", help="Fichier des proches (.xlsx), facultatif.")
        parser.add_argument("--dry-run", action="store_true", help="Contrôler seulement, sans rien écrire.")
        parser.add_argument("--template", metavar="DIR",
                            help="Écrire les classeurs modèles (résidents et proches) dans DIR, puis s'arrêter.")
        parser.add_argument("--section", metavar="ALIAS",
                            help="Avec --template : section utilisée pour la ligne d'exemple.")

    def handle(self, *args, **options):
        if options["template"]:
            return self._templates(options["template"], options.get("section"))
        if not options["residents"]:
            raise CommandError(_("Indiquez le fichier des résidents (ou --template DIR)."), returncode=2)
        residents = service.ImportFile(Path(options["residents"]), Path(options["residents"]).name)
        relatives = None
        if options["relatives"]:
            relatives = service.ImportFile(Path(options["relatives"]), Path(options["relatives"]).name)
        dry_run = options["dry_run"]
        outcome = service.residents_import(residents=residents, relatives=relatives, user=None, dry_run=dry_run)
        report = outcome.report
        for issue in report.sorted():
            (self.stderr if issue.level == "error" else self.stdout).write(issue.as_line())
        if report.has_errors:
            raise CommandError(_("%(n)s erreur(s), %(w)s avertissement(s) : rien n'a été importé.") % {
                "n": len(report.errors), "w": len(report.warnings)}, returncode=1)
        lines = service.summary_lines(outcome.summary, imported=outcome.imported)
        if dry_run:
            self.stdout.write(_("Simulation : fichiers valides, rien n'a été écrit."))
        else:
            self._record(residents, relatives, outcome)
            self.stdout.write(self.style.SUCCESS(_("Import terminé.")))
        for line in lines:
            self.stdout.write(f"  {line}")
        if report.warnings:
            self.stdout.write(_("%(w)s avertissement(s).") % {"w": len(report.warnings)})

    def _templates(self, directory, alias):
        section = None
        if alias:
            from structures.models import Section

            section = Section.objects.select_related("establishment").filter(alias=alias.upper()).first()
            if section is None:
                raise CommandError(_("Section inconnue : %(alias)s.") % {"alias": alias}, returncode=2)
        from imports.services.residents_templates import template_write

        for path in template_write(directory, section=section):
            self.stdout.write(_("Modèle écrit : %(path)s") % {"path": path})

    def _record(self, residents, relatives, outcome):
        from imports.models import ImportRun

        files = []
        for role, f in (("residents", residents), ("relatives", relatives)):
            if f is not None:
                files.append({"role": role, "name": f.name, **service.file_fingerprint(f.source)})
        summary = {k: v for k, v in outcome.summary.items() if k != "resident_ids"}
        summary["source"] = "command"
        ImportRun.objects.create(kind=ImportRun.Kind.RESIDENTS, status=ImportRun.Status.IMPORTED, files=files,
                                 summary=summary, report=outcome.report.as_list(limit=service.REPORT_LIMIT))
