"""manage.py tax_certificates --section ALIAS --year YYYY [-o DIR] [--send] [--format pdf|csv]

The yearly tax certificates (*attestations fiscales*, billing-rules.md §12) of a section's residents:

* ``--format pdf`` (default): one PDF per resident and the merged print file
  ``attestations-fiscales-ALIAS-YYYY.pdf`` in DIR (default: the current directory);
* ``--format csv``: ``REF_EXTERNE;NOM;HEBERGEMENT;DEPENDANCE;AIDES;NET`` on the standard output (or
  ``DIR/attestations-fiscales-ALIAS-YYYY.csv`` with ``-o``);
* ``--send``: one e-mail per resident to the invoice recipient, through the outbox (sent inline;
  exit 1 if a message failed for good or nobody had an address).
"""
from __future__ import annotations

import sys
from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from billing.services import tax_certificates as tax
from structures.models import Section


class Command(BaseCommand):
    help = "Attestations fiscales d'une section pour une année (PDF, CSV, envoi par e-mail)."

    def add_arguments(self, parser):
        parser.add_argument("--section", required=True, help="Alias de la section (ex. TIL-HP).")
        parser.add_argument("--year", required=True, help="Année civile, AAAA.")
        parser.add_argument("-o", "--output", default="", help="Dossier où écrire les fichiers.")
        parser.add_argument("--send", action="store_true", help="Envoyer chaque attestation par e-mail.")
        parser.add_argument("--format", dest="fmt", default="pdf", help="pdf (défaut) ou csv.")

    def handle(self, *args, section: str, year: str, output: str, send: bool, fmt: str, **options):
        fmt = (fmt or "").lower()
        if fmt not in ("pdf", "csv"):
            raise CommandError(f"Format inconnu : « {fmt} » (formats possibles : pdf, csv).")
        section_obj = Section.objects.select_related("establishment__organisation").filter(alias=section).first()
        if section_obj is None:
            raise CommandError(f"Section inconnue : « {section} ».")
        try:
            certificates = tax.tax_certificates_compute(section=section_obj, year=year)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        year = int(year)
        folder = Path(output) if output else Path(".")
        if output:
            folder.mkdir(parents=True, exist_ok=True)
        if fmt == "csv":
            content = tax.certificates_csv(certificates)
            if output:
                target = folder / f"attestations-fiscales-{section_obj.alias}-{year}.csv"
                target.write_bytes(content)
                self.stderr.write(f"{len(certificates)} attestation(s) écrite(s) dans {target}.")
            else:
                sys.stdout.flush()
                self.stdout.write(content.decode("utf-8-sig"), ending="")
        else:
            if not certificates:
                raise CommandError(f"Aucune attestation à établir pour {year} dans la section {section_obj.alias}.")
            texts = tax.section_settings(section_obj)
            for cert in certificates:
                (folder / tax.certificate_filename(cert)).write_bytes(tax.certificate_pdf(cert, texts))
            merged = folder / tax.batch_filename(section_obj, year)
            merged.write_bytes(tax.certificates_merged_pdf(certificates))
            self.stdout.write(f"{len(certificates)} attestation(s) écrite(s) dans {folder} ; à imprimer : {merged}.")
        if send:
            self._send(section_obj, year, certificates)

    def _send(self, section, year, certificates):
        from mailing.models import OutgoingMessage
        from mailing.services.outbox import outbox_run

        try:
            campaign, without = tax.certificates_send(section=section, year=year, certificates=certificates,
                                                      start=False)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        for name in without:
            self.stdout.write(f"  SANS ADRESSE  {name}")
        messages = OutgoingMessage.objects.filter(campaign=campaign)
        outbox_run(messages, progress=lambda r: None)
        failures = 0
        for message in messages.order_by("related_label", "pk"):
            if message.status == OutgoingMessage.Status.SENT:
                self.stdout.write(f"  ENVOYÉ        {message.related_label} → {', '.join(message.recipients)}")
            else:
                failures += 1
                self.stdout.write(f"  NON ENVOYÉ    {message.related_label} : {message.explanation or message.status}")
        if failures or (certificates and len(without) == len(certificates)):
            raise CommandError(f"{failures} attestation(s) non envoyée(s), {len(without)} sans adresse.")
