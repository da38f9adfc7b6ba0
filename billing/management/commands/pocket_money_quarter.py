"""manage.py pocket_money_quarter --section TIL-HP --quarter 2026-T2

The quarterly pocket-money settlement (billing-rules §8) of every resident under social aid of the
section, listed per payer: resources, contributions billed, minimum, amount to give back (or 0)."""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from core.money import format_euros
from structures.models import Section

from ...services.pocket_money import quarter_pocket_money


class Command(BaseCommand):
    help = "Calcule la régularisation trimestrielle de l'argent de poche (aide sociale) d'une section, par payeur."

    def add_arguments(self, parser):
        parser.add_argument("--section", required=True, help="Alias de la section (ex. TIL-HP).")
        parser.add_argument("--quarter", required=True, help="Trimestre AAAA-T1 … AAAA-T4 (ex. 2026-T2).")

    def handle(self, *args, section, quarter, **options):
        try:
            section_obj = Section.objects.select_related("establishment").get(alias=section)
        except Section.DoesNotExist as exc:
            raise CommandError(f"Section inconnue : « {section} ».") from exc
        try:
            rows = quarter_pocket_money(section=section_obj, quarter=quarter)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        if not rows:
            self.stdout.write("Aucun résident sous aide sociale sur ce trimestre.")
            return
        current = None
        for row in rows:
            if row.payer_code != current:
                current = row.payer_code
                self.stdout.write(f"{row.payer_code} — {row.payer_name}")
            outcome = (f"à reverser : {format_euros(row.refund)}" if row.refund else "rien à reverser")
            self.stdout.write(f"  {row.resident_name} ({row.decision_reference or 'sans n°'}) : {row.months} mois, "
                              f"ressources {format_euros(row.resources)}, participations {format_euros(row.contributions)}, "
                              f"minimum {format_euros(row.minimum)}/mois — {outcome}")
        total = sum((r.refund for r in rows), start=rows[0].refund * 0)
        self.stdout.write(f"Total à reverser : {format_euros(total)}")
