"""manage.py sepa_returns FILE — applies a pain.002 or camt.054 file of returned/rejected debits."""
from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from ...services import returns


class Command(BaseCommand):
    help = "Applique un fichier de rejets ou retours de prélèvements SEPA (pain.002 ou camt.054)."

    def add_arguments(self, parser):
        parser.add_argument("file", help="Fichier pain.002 (.001.03 ou .001.10) ou camt.054.")

    def handle(self, *args, file, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(f"Fichier introuvable : « {file} ».")
        try:
            report = returns.returns_apply(content=path.read_bytes())
        except ValidationError as exc:
            raise CommandError(f"{path.name} refusé, rien n'a été appliqué : {' '.join(exc.messages)}") from exc
        self.stderr.write(f"{len(report.applied)} rejet(s) ou retour(s) appliqué(s), {len(report.already)} déjà "
                          f"traité(s), {len(report.unmatched)} sans correspondance.")
        for e2e in report.unmatched:
            self.stderr.write(f"Sans correspondance : {e2e}")
        for rum in report.suspended:
            self.stderr.write(f"Mandat {rum} suspendu : à revoir avec le débiteur.")
