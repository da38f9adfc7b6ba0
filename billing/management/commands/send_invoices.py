"""Send by e-mail every issued invoice of a month that was never sent (for technicians and beat).

    manage.py send_invoices --section TIL-HP --month 2026-11 [--dry-run]

Same outbox, throttle and log as the browser. The command queues the invoices of the period
that have no message sent, on its way or awaiting a check, then sends the pending messages of
the period inline (waiting for retries) and prints each outcome. Exit status 1 when a message
failed for good, is uncertain, or when the SMTP account could not be used. Running it twice
never sends an invoice twice: the second run finds nothing new to queue.
"""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from billing.services import mailing as mail_services
from mailing.models import MailCampaign, OutgoingMessage
from mailing.services.outbox import outbox_run
from structures.models import Section


class Command(BaseCommand):
    help = "Envoie par e-mail les factures émises d'un mois qui ne l'ont jamais été."

    def add_arguments(self, parser):
        parser.add_argument("--section", required=True, help="alias de la section, par exemple TIL-HP")
        parser.add_argument("--month", required=True, help="mois facturé, AAAA-MM")
        parser.add_argument("--dry-run", action="store_true", help="montrer ce qui partirait, sans rien envoyer")
        parser.add_argument("--no-wait", action="store_true",
                            help="ne pas attendre les nouveaux essais des échecs temporaires")

    def handle(self, *args, section: str, month: str, dry_run: bool, no_wait: bool, **options):
        section_obj = Section.objects.select_related("establishment__organisation").filter(alias=section).first()
        if section_obj is None:
            raise CommandError(f"Section inconnue : {section}")
        try:
            period = mail_services.month_period(section=section_obj, month=month)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        establishment = section_obj.establishment
        unsent = list(mail_services.period_unsent(period))
        to_queue, no_address = [], []
        for invoice in unsent:
            recipients = mail_services.invoice_recipients(invoice, relatives=list(invoice.resident.relatives.all())
                                                          if invoice.resident_id else [])
            (to_queue if recipients else no_address).append((invoice, recipients))
        pending = mail_services.period_pending_messages(period).filter(status__in=OutgoingMessage.PENDING)
        self.stdout.write(f"{section_obj.alias} {period.label} : {len(to_queue)} facture(s) à envoyer, "
                          f"{pending.count()} message(s) déjà en file, {len(no_address)} sans adresse.")
        for invoice, _r in no_address:
            self.stdout.write(f"  SANS ADRESSE  {invoice.number} {mail_services.invoice_person(invoice)} : "
                              f"{mail_services.NO_ADDRESS}")
        if dry_run:
            for invoice, recipients in to_queue:
                self.stdout.write(f"  À ENVOYER     {invoice.number} {mail_services.invoice_person(invoice)} → "
                                  f"{', '.join(r.email for r in recipients)}")
            self.stdout.write("Simulation : rien n'a été envoyé.")
            return
        if to_queue:
            try:
                mail_services.period_campaign_create(
                    period=period, invoice_ids=[invoice.pk for invoice, _r in to_queue],
                    subject=establishment.mail_subject, body=establishment.mail_body,
                    kind=MailCampaign.Kind.COMMAND)
            except ValidationError as exc:
                raise CommandError(" ".join(exc.messages)) from exc
        messages = mail_services.period_pending_messages(period)
        selection = messages.filter(status__in=OutgoingMessage.PENDING)
        ids = list(selection.values_list("pk", flat=True))
        result = outbox_run(OutgoingMessage.objects.filter(pk__in=ids), wait=not no_wait,
                            progress=lambda r: None)
        failures = 0
        for message in OutgoingMessage.objects.filter(pk__in=ids).order_by("related_label", "pk"):
            if message.status == OutgoingMessage.Status.SENT:
                line = f"  ENVOYÉ        {message.related_label} → {', '.join(message.recipients)}"
                if message.refused:
                    line += f" (refusé pour : {', '.join(message.refused)})"
            elif message.status == OutgoingMessage.Status.FAILED:
                failures += 1
                line = f"  ÉCHEC         {message.related_label} : {message.explanation}"
            elif message.status == OutgoingMessage.Status.UNCERTAIN:
                failures += 1
                line = f"  À VÉRIFIER    {message.related_label} : {message.explanation}"
            else:
                line = f"  NON ENVOYÉ    {message.related_label} ({message.get_status_display()}) {message.explanation}"
            self.stdout.write(line)
        counts = {s: OutgoingMessage.objects.filter(pk__in=ids, status=s).count() for s in OutgoingMessage.Status.values}
        self.stdout.write(f"Bilan : {counts['sent']} envoyé(s), {counts['failed']} échec(s), "
                          f"{counts['uncertain']} à vérifier, "
                          f"{counts['queued'] + counts['retry'] + counts['sending']} non envoyé(s), "
                          f"{len(no_address)} sans adresse.")
        if result.aborted is not None:
            raise CommandError(f"Envoi interrompu : {result.aborted.explanation}")
        if failures:
            raise CommandError(f"{failures} message(s) en échec définitif ou à vérifier.")
