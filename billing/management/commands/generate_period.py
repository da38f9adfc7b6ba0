from datetime import date

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from billing.services import checks as check_services
from billing.services import batch, issuing, periods
from billing.services.generation import period_generate
from core.money import format_euros
from structures.models import Section


class Command(BaseCommand):
    help = "Génère (et émet avec --issue) les factures d'une section pour un mois."

    def add_arguments(self, parser):
        target = parser.add_mutually_exclusive_group(required=True)
        target.add_argument("--section", help="Alias de la section (ex. TIL-HP).")
        target.add_argument("--all-sections", action="store_true",
                            help="Toutes les sections actives, l'une après l'autre (une section refusée "
                                 "n'arrête pas les autres ; code de sortie non nul s'il y en a une).")
        parser.add_argument("--month", required=True, help="Mois AAAA-MM.")
        parser.add_argument("--issue", action="store_true", help="Émettre les brouillons après la génération.")
        parser.add_argument("--regularise", action="store_true",
                            help="Lister et émettre les régularisations (avoirs et factures) des factures déjà émises "
                                 "de la période, sans régénérer.")
        parser.add_argument("--issue-date", help="Date d'émission AAAA-MM-JJ (défaut : aujourd'hui).")

    def handle(self, *args, **options):
        section = None
        if not options["all_sections"]:
            section = Section.objects.filter(alias=options["section"]).first()
            if section is None:
                raise CommandError(f"Section inconnue : « {options['section']} ».")
        try:
            year, month = periods.parse_month(options["month"])
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        issue_date = None
        if options.get("issue_date"):
            try:
                issue_date = date.fromisoformat(options["issue_date"])
            except ValueError as exc:
                raise CommandError(f"Date d'émission invalide : « {options['issue_date']} » (AAAA-MM-JJ).") from exc
        if options["regularise"]:
            if section is None:
                raise CommandError("--regularise se lance section par section : précisez --section ALIAS.")
            return self._regularise(section=section, year=year, month=month, issue_date=issue_date)
        if section is None:
            return self.handle_all(year=year, month=month, issue=options["issue"], issue_date=issue_date)
        # Opening the period and checking it is one transaction: a refused run leaves nothing behind.
        with transaction.atomic():
            period = periods.period_for_month(section=section, year=year, month=month)
            created = period is None
            if created:
                try:
                    period = periods.period_create(section=section, start=date(year, month, 1))
                except ValidationError as exc:
                    raise CommandError(" ".join(exc.messages)) from exc
            checks = check_services.period_checks(period=period)
            for check in checks:
                prefix = "ERREUR" if check.level == "error" else "Attention"
                (self.stderr if check.level == "error" else self.stdout).write(f"{prefix} : {check.message}")
            if check_services.period_blocking(checks):
                raise CommandError("Génération impossible : corrigez les erreurs ci-dessus.")
        if created:
            self.stdout.write(f"Période « {period.label} » ouverte pour {section.alias}.")
        try:
            result = period_generate(period=period)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stdout.write(self.style.SUCCESS(
            f"{result['drafts']} facture(s) brouillon, {result['lines']} ligne(s), total {format_euros(result['total'])}"
            + (f" ; {result['skipped_issued']} débiteur(s) déjà facturé(s)" if result["skipped_issued"] else "")))
        for warning in result["warnings"]:
            self.stdout.write(f"Attention : {warning}")
        if options["issue"]:
            issued = issuing.period_issue(period=period, issue_date=issue_date)
            numbers = sorted(i.number for i in issued)
            span = f" ({numbers[0]} à {numbers[-1]})" if numbers else ""
            self.stdout.write(self.style.SUCCESS(f"{len(issued)} facture(s) émise(s){span}."))

    def _regularise(self, *, section, year, month, issue_date):
        from billing.services.regularisation import period_regularisations, period_regularise

        period = periods.period_for_month(section=section, year=year, month=month)
        if period is None:
            raise CommandError(f"Aucune période de {section.alias} pour le mois {year}-{month:02d}.")
        try:
            regs = period_regularisations(period=period)
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        if not regs:
            self.stdout.write(f"Aucune régularisation pour {section.alias} {period.label}.")
            return
        self.stdout.write(f"Régularisations de {section.alias} {period.label} :")
        for reg in regs:
            self.stdout.write(
                f"- {reg.debtor_label} ({reg.resident_name}) : émis {format_euros(reg.issued)}, "
                f"dû {format_euros(reg.due)}, écart {format_euros(reg.difference)} — {reg.reason}")
            for detail in reg.details:
                self.stdout.write(f"    {detail}")
        try:
            result = period_regularise(period=period, issue_date=issue_date)
        except ValidationError as exc:
            raise CommandError("Régularisation impossible : " + " ".join(exc.messages)) from exc
        self.stdout.write(self.style.SUCCESS(
            f"{len(result['credit_notes'])} avoir(s) émis ({format_euros(result['credited'])})"
            + (f" : {', '.join(result['credit_notes'])}" if result["credit_notes"] else "")
            + f" ; {len(result['invoices'])} facture(s) de régularisation émise(s) ({format_euros(result['invoiced'])})"
            + (f" : {', '.join(result['invoices'])}" if result["invoices"] else "") + "."))

    def handle_all(self, *, year: int, month: int, issue: bool, issue_date):
        """Every active section in turn; a refused section is reported and the others go on."""
        sections = list(Section.objects.filter(is_active=True).select_related("establishment").order_by("alias"))
        failed = []
        for section in sections:
            try:
                result = batch.section_month_generate(section=section, year=year, month=month)
                line = (f"{section.alias} : {result['drafts']} facture(s) brouillon, {result['lines']} ligne(s), "
                        f"total {format_euros(result['total'])}")
                if issue:
                    issued = batch.section_month_issue(section=section, year=year, month=month, issue_date=issue_date,
                                                        render_pdfs=False)
                    line += f" ; {issued['issued']} émise(s)"
                    if issued["issued"]:
                        line += f" ({issued['first']} à {issued['last']})"
            except ValidationError as exc:
                failed.append(section.alias)
                self.stderr.write(f"{section.alias} : ERREUR : {' '.join(exc.messages)}")
                continue
            self.stdout.write(self.style.SUCCESS(line))
        self.stdout.write(f"{len(sections) - len(failed)} section(s) sur {len(sections)} générée(s).")
        if failed:
            raise CommandError(f"Génération impossible pour : {', '.join(failed)}.")
