"""manage.py sepa_batch --section ALIAS --month YYYY-MM [--collection-date YYYY-MM-DD] [-o FILE.xml] [--mark-sent]

Builds the debit batch of the period (invoices paid by direct debit with an active mandate and a
balance), generates its pain.008 validated against the XSD and writes it; exits non-zero with the
French reasons when nothing can be collected or the file is refused."""
from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from billing.models import BillingPeriod, Invoice
from core.formats import fr_date
from structures.models import Section

from ...services import debits


def _messages(exc: ValidationError) -> str:
    return " ".join(exc.messages)


class Command(BaseCommand):
    help = "Construit le lot de prélèvements SEPA d'une période et écrit son fichier pain.008 (contrôlé par le XSD)."

    def add_arguments(self, parser):
        parser.add_argument("--section", required=True, help="Alias de la section (ex. TIL-HP).")
        parser.add_argument("--month", required=True, help="Mois de la période, AAAA-MM.")
        parser.add_argument("--collection-date", default="",
                            help="Date de prélèvement AAAA-MM-JJ (défaut : premier jour ouvré TARGET après le délai "
                                 "de pré-notification).")
        parser.add_argument("-o", "--output", default="", help="Fichier pain.008 à écrire.")
        parser.add_argument("--mark-sent", action="store_true", help="Marque le lot envoyé à la banque.")

    def handle(self, *args, section, month, collection_date, output, mark_sent, **options):
        try:
            section_obj = Section.objects.select_related("establishment").get(alias=section)
        except Section.DoesNotExist as exc:
            raise CommandError(f"Section inconnue : « {section} ».") from exc
        try:
            first = date.fromisoformat(f"{month}-01")
        except ValueError as exc:
            raise CommandError(f"Mois invalide : « {month} » (attendu AAAA-MM).") from exc
        period = BillingPeriod.objects.filter(section=section_obj, start__lte=first, end__gte=first).first()
        if period is None:
            raise CommandError(f"Aucune période de facturation en {first:%m/%Y} pour la section {section}.")
        if not Invoice.objects.filter(period=period, status=Invoice.Status.ISSUED).exists():
            raise CommandError(f"La période {period.label} n'a aucune facture émise.")
        today = timezone.localdate()
        try:
            creditor = debits.creditor_of(section_obj)
            if collection_date:
                try:
                    on = date.fromisoformat(collection_date)
                except ValueError as exc:
                    raise CommandError(f"Date invalide : « {collection_date} » (attendu AAAA-MM-JJ).") from exc
            else:
                on = today + timedelta(days=creditor.sepa_prenotification_days)
                while not debits.target_business_day(on):
                    on += timedelta(days=1)
            selection = debits.batch_selection(period=period, creditor=creditor)
            for exclusion in selection.exclusions:
                self.stderr.write(f"Exclue : {exclusion.label} — {exclusion.reason}")
            with transaction.atomic():  # a file refused by the XSD leaves no batch behind
                batch = debits.debit_batch_create(period=period, collection_date=on, today=today)
                batch = debits.debit_batch_generate(batch=batch)
                if mark_sent:
                    batch = debits.debit_batch_mark_sent(batch=batch)
        except ValidationError as exc:
            raise CommandError(_messages(exc)) from exc
        totals = debits.debit_batch_totals(batch)
        per = ", ".join(f"{seq} : {v['count']} pour {v['total']} €" for seq, v in totals["per_sequence"].items())
        self.stderr.write(f"Lot n° {batch.pk} ({batch.version}) : {totals['count']} prélèvements, "
                          f"{totals['total']} € le {fr_date(batch.collection_date)} ({per}) — "
                          f"{batch.get_status_display().lower()}.")
        if output:
            Path(output).write_bytes(batch.xml.encode("utf-8"))
            self.stderr.write(f"Fichier écrit dans {output}.")
        else:
            self.stdout.write(batch.xml)
