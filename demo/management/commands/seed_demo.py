from django.core.management.base import BaseCommand

from demo.services.seed import DEMO_PASSWORDS_NOTE, demo_seed


class Command(BaseCommand):
    help = "Crée (idempotent) l'association de démonstration « Les Quatre Saisons »."

    def add_arguments(self, parser):
        parser.add_argument("--no-residents", action="store_true", help="Configuration seule (pour les imports).")
        parser.add_argument("--residents", type=int, default=60, help="Nombre de résidents de démo (défaut 60).")
        parser.add_argument("--payments", action="store_true",
                            help="Émettre octobre à décembre 2025 de VER-HP avec des règlements (partiels, en "
                                 "retard, un crédit) et un historique de relances (niveaux 1 et 2).")

    def handle(self, *args, **options):
        from django.conf import settings
        from django.core.management.base import CommandError

        if not settings.DEMO_ALLOWED:
            raise CommandError("Données de démonstration refusées : DEMO_ALLOWED=0 (production).")
        count = 0 if options["no_residents"] else options["residents"]
        if count < 0:
            from django.core.management.base import CommandError

            raise CommandError("--residents doit être positif ou nul.")
        result = demo_seed(residents=count)
        if options["payments"]:
            from demo.services.payments_seed import demo_payments
            from demo.services.statements_seed import demo_payer_setup, demo_statements

            demo_payer_setup(organisation=result["organisation"])  # MUTSAN coverage, CD69 social aid
            made = demo_payments(organisation=result["organisation"])
            self.stdout.write(f"Règlements de démonstration : {made['issued']} facture(s) émise(s), "
                              f"{made['payments']} règlement(s), {made.get('batches', 0)} lot(s) de prélèvements, "
                              f"{made.get('returns', 0)} rejet(s).")
            made = demo_statements(organisation=result["organisation"])
            self.stdout.write(f"Bordereaux de démonstration : {made['statements']} bordereau(x), "
                              f"{made['settlements']} régularisation(s) d'argent de poche.")
            from demo.services.reminders_seed import demo_reminders

            reminded = demo_reminders(organisation=result["organisation"])
            self.stdout.write(f"Relances de démonstration : {reminded} relance(s) déjà envoyée(s).")
        self.stdout.write(self.style.SUCCESS(
            f"Association « {result['organisation'].name} » prête : {len(result['sections'])} sections, "
            f"{result['residents_created']} résident(s) créé(s)."))
        self.stdout.write(f"Comptes de démonstration : {DEMO_PASSWORDS_NOTE}")
