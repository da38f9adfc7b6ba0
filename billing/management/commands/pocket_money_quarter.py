"""manage.py pocket_money_quarter --section TIL-HP --quarter 2026-T2 [--issue [--issue-date AAAA-MM-JJ]]

The quarterly pocket-money settlement (billing-rules §8) of every resident under social aid of the
section, listed per payer: resources, contributions billed, minimum, amount to give back (or 0).
With ``--issue``, issues it (credit notes to the residents, invoices to the départements, or the
quarter confirmed at zero); re-running never issues twice."""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from core.money import format_euros
from structures.models import Section

from datetime import date

from ...services.pocket_money import quarter_pocket_money, quarter_pocket_money_issue


class Command(BaseCommand):
    help = "Calcule la régularisation trimestrielle de l'argent de poche (aide sociale) d'une section, par payeur."

    def add_arguments(self, parser):
        parser.add_argument("--section", required=True, help="Alias de la section (ex. TIL-HP).")
        parser.add_argument("--quarter", required=True, help="Trimestre AAAA-T1 … AAAA-T4 (ex. 2026-T2).")
        parser.add_argument("--issue", action="store_true",
                            help="Émettre la régularisation (avoirs aux résidents, factures aux départements).")
        parser.add_argument("--issue-date", default=None, help="Date d'émission AAAA-MM-JJ (défaut : aujourd'hui).")

    def handle(self, *args, section, quarter, **options):
        try:
            section_obj = Section.objects.select_related("establishment").get(alias=section)
        except Section.DoesNotExist as exc:
            raise CommandError(f"Section inconnue : « {section} ».") from exc
        try:
            if options.get("issue"):
                issue_date = date.fromisoformat(options["issue_date"]) if options.get("issue_date") else None
                result = quarter_pocket_money_issue(section=section_obj, quarter=quarter, issue_date=issue_date)
                for row in result["rows"]:
                    state = ("déjà traitée" if row.get("already") else ", ".join(row["documents"]) or "à zéro")
                    self.stdout.write(f"{row['payer']} — {row['resident']} : {row['refund']} € ({state})")
                self.stdout.write(result["message"])
                return
            rows = quarter_pocket_money(section=section_obj, quarter=quarter)
        except ValueError as exc:
            raise CommandError(f"Date d'émission invalide : « {options.get('issue_date')} » (attendu AAAA-MM-JJ).") \
                from exc
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
