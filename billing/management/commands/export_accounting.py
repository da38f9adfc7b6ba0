"""manage.py export_accounting --establishment CODE --from YYYY-MM-DD --to YYYY-MM-DD --format fec|csv|xlsx
[-o FILE] [--layout generic|sage|cegid|ebp] [--separator tab|pipe] [--no-split] [--mark-transmitted]

Builds the draft export of what is not exported yet (sales and payments journals), checks the FEC
(balanced entries, continuous numbers) before writing anything, and with ``--mark-transmitted``
freezes it (« transmis à la comptabilité »): later entries go to the next export. Without ``-o``
the file is written in the current directory under its name (``SIRENFECAAAAMMJJ.txt`` for the FEC)."""
from __future__ import annotations

from datetime import date
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from core.fec import FecError
from structures.models import Establishment

from ...services import accounting

FORMATS = ("fec", "csv", "xlsx")


class Command(BaseCommand):
    help = "Exporte les écritures comptables (ventes, règlements) d'un établissement : FEC, CSV ou XLSX."

    def add_arguments(self, parser):
        parser.add_argument("--establishment", required=True, help="Code de l'établissement (ex. TIL).")
        parser.add_argument("--from", dest="date_from", required=True, help="Premier jour AAAA-MM-JJ.")
        parser.add_argument("--to", dest="date_to", required=True, help="Dernier jour AAAA-MM-JJ.")
        parser.add_argument("--format", dest="fmt", default="fec", help="fec (défaut), csv ou xlsx.")
        parser.add_argument("-o", "--output", default="", help="Fichier à écrire (défaut : nom officiel).")
        parser.add_argument("--layout", default="generic",
                            help="Colonnes du CSV/XLSX : generic (défaut), sage, cegid ou ebp.")
        parser.add_argument("--separator", default="tab", help="Séparateur du FEC : tab (défaut) ou pipe.")
        parser.add_argument("--no-split", dest="split", action="store_false", default=None,
                            help="Ne pas décomposer les factures par financement.")
        parser.add_argument("--mark-transmitted", action="store_true",
                            help="Marquer l'export « transmis à la comptabilité » (figé).")

    def handle(self, *args, establishment, date_from, date_to, fmt, output, separator="tab", split=None,
               mark_transmitted=False, layout="generic", **options):
        fmt = (fmt or "").lower()
        if fmt not in FORMATS:
            raise CommandError(f"Format inconnu : « {fmt} » (formats possibles : fec, csv, xlsx).")
        layout = (layout or "generic").lower()
        if layout not in accounting.LAYOUTS:
            raise CommandError(f"Présentation inconnue : « {layout} » (generic, sage, cegid ou ebp).")
        if layout != "generic" and fmt == "fec":
            raise CommandError("--layout vaut pour les formats csv et xlsx ; le FEC a ses 18 colonnes officielles.")
        if separator not in ("tab", "pipe"):
            raise CommandError(f"Séparateur inconnu : « {separator} » (tab ou pipe).")
        try:
            establishment_obj = Establishment.objects.select_related("organisation").get(code=establishment)
        except Establishment.DoesNotExist as exc:
            raise CommandError(f"Établissement inconnu : « {establishment} ».") from exc
        start, end = _parse(date_from, "--from"), _parse(date_to, "--to")
        try:
            with transaction.atomic():
                export = accounting.export_build(establishment=establishment_obj, date_from=start, date_to=end,
                                                 split_by_financing=split)
                if fmt == "fec":
                    content = accounting.export_fec(export, separator="\t" if separator == "tab" else "|")
                    from core.fec import fec_assert_valid
                    fec_assert_valid(content)
                else:
                    content = accounting.export_content(export, fmt, layout)
                name = output or accounting.export_filename(export, fmt, layout)
                if mark_transmitted:
                    accounting.export_transmit(export=export)
        except FecError as exc:
            raise CommandError("Fichier refusé par le contrôle FEC :\n" + "\n".join(exc.messages)) from exc
        except ValidationError as exc:
            raise CommandError("\n".join(exc.messages)) from exc
        Path(name).write_bytes(content)
        lines = export.entries.count()
        state = " (transmis à la comptabilité)" if mark_transmitted else ""
        self.stderr.write(f"{lines} écriture(s) du {start:%d/%m/%Y} au {end:%d/%m/%Y} écrites dans {name}{state}.")


def _parse(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"Date invalide pour {option} : « {value} » (attendu AAAA-MM-JJ).") from exc
