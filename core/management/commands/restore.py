from django.core.management.base import BaseCommand, CommandError

from core.services.backup import BackupError, backup_restore, manifest_summary, target_default


class Command(BaseCommand):
    help = ("Restaure une archive de « manage.py backup » dans la base configurée (qui doit être vide, sauf "
            "--force) et dans MEDIA_ROOT. L'archive est vérifiée (chemins, sommes de contrôle) avant toute écriture.")

    def add_arguments(self, parser):
        parser.add_argument("archive", help="Fichier sejour-backup-….tar")
        parser.add_argument("--force", action="store_true", help="Remplacer une base qui contient déjà des données.")

    def handle(self, *args, **options):
        try:
            result = backup_restore(archive=options["archive"], target=target_default(), force=options["force"])
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"Restauration terminée : {manifest_summary(result['manifest'])}."))
