"""manage.py export_facturx --section ALIAS --month YYYY-MM [-o FILE.zip]

Writes the zip of the section's Factur-X (invoices and credit notes issued in the month to payers that
receive their invoices through Chorus Pro), for batch upload on the Chorus Pro portal. Each PDF is the
stored one (rendered first when missing); its XML was checked against the Factur-X XSD."""
from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from structures.models import Section

from ...services import facturx


class Command(BaseCommand):
    help = "Zip des Factur-X d'un mois d'une section, à déposer sur Chorus Pro."

    def add_arguments(self, parser):
        parser.add_argument("--section", required=True, help="Alias de la section (ex. TIL-HP).")
        parser.add_argument("--month", required=True, help="Mois d'émission AAAA-MM.")
        parser.add_argument("-o", "--output", default="", help="Fichier zip à écrire (défaut : facturx-ALIAS-MOIS.zip).")

    def handle(self, *args, section, month, output, **options):
        try:
            section_obj = Section.objects.select_related("establishment").get(alias=section)
        except Section.DoesNotExist as exc:
            raise CommandError(f"Section inconnue : « {section} ».") from exc
        try:
            content, count = facturx.facturx_zip(section_obj, month)
        except ValidationError as exc:
            raise CommandError("\n".join(exc.messages)) from exc
        name = output or facturx.facturx_zip_name(section_obj, month)
        Path(name).write_bytes(content)
        self.stderr.write(f"{count} Factur-X de {section} ({month}) écrits dans {name}.")
