from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from core.services.backup import BackupError, backup_create, manifest_summary


class Command(BaseCommand):
    help = ("Sauvegarde la base de données (pg_dump format custom, ou copie SQLite) et les médias dans une "
            "archive avec un manifeste (comptes de lignes, sommes de contrôle).")

    def add_arguments(self, parser):
        parser.add_argument("--output", default=None, help="Dossier de destination (défaut : BACKUP_DIR, var/backups).")

    def handle(self, *args, **options):
        output = Path(options["output"] or settings.BACKUP_DIR)
        try:
            archive, manifest = backup_create(output_dir=output)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"Sauvegarde écrite : {archive}"))
        self.stdout.write(manifest_summary(manifest))
