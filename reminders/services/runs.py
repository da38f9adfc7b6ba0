"""Reminder runs: create the proposal, untick lines, validate (letters, e-mails, levels), cancel a
reminder sent by mistake (audited), record a registered-letter number."""
from __future__ import annotations

from collections import defaultdict
from datetime import date

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from billing.models import Invoice, PaymentAllocation
from billing.services.payments import Debtor
from core.money import round_money

from ..models import Audience, Level, Reminder, ReminderLetter, ReminderRun
from . import letters as letters_svc
from .proposal import SETTLED, delays_for, first_of_month, proposal_rows

VALIDATE_JOB_KIND = "reminders.run_validate"


def _check_dates(print_date: date, limit_date: date) -> None:
    if limit_date > print_date:
        raise ValidationError(_("La date limite (%(limit)s) doit précéder la date d'impression (%(print)s).") % {
            "limit": limit_date.strftime("%d/%m/%Y"), "print": print_date.strftime("%d/%m/%Y")})


def _run_store(*, section, rows, print_date: date, limit_date: date, user=None, by_scheduler=False) -> ReminderRun:
    """Store ``rows`` (the section's proposal) as a run; the section's earlier, not yet validated
    proposals are replaced. Call inside a transaction."""
    for old in ReminderRun.objects.select_for_update().filter(section=section, status=ReminderRun.Status.PROPOSED):
        old.reminders.all().delete()
        old.delete()
    run = ReminderRun.objects.create(section=section, limit_date=limit_date, print_date=print_date,
                                     created_by=user if (user and user.is_authenticated) else None,
                                     by_scheduler=by_scheduler)
    Reminder.objects.bulk_create([
        Reminder(run=run, invoice_id=row.invoice.pk, level=row.level, amount=row.amount, balance=row.balance,
                 days_late=row.days_late, exclusion=row.exclusion, exclusion_detail=row.exclusion_detail[:250],
                 selected=not row.is_excluded, print_date=print_date) for row in rows], batch_size=2000)
    return run


def run_create(*, section, print_date: date, limit_date: date | None = None, user=None,
               by_scheduler: bool = False) -> ReminderRun:
    """Store the proposal of ``section`` (its earlier, not yet validated proposals are replaced)."""
    limit_date = limit_date or first_of_month(print_date)
    _check_dates(print_date, limit_date)
    with transaction.atomic():
        rows = proposal_rows(section=section, limit_date=limit_date, print_date=print_date)
        return _run_store(section=section, rows=rows, print_date=print_date, limit_date=limit_date, user=user,
                          by_scheduler=by_scheduler)


def runs_create(*, sections, print_date: date, limit_date: date | None = None, user=None) -> list[ReminderRun]:
    """« Toutes les sections »: one proposal computed over ``sections`` (the caller scopes them with
    ``structures.access.sections_for``), stored as one run per section that has lines (each section
    keeps its own texts, sender, validation and history). Returns the runs, by section alias."""
    limit_date = limit_date or first_of_month(print_date)
    _check_dates(print_date, limit_date)
    sections = sorted(sections, key=lambda s: s.alias)
    with transaction.atomic():
        by_section = defaultdict(list)
        for row in proposal_rows(sections=sections, limit_date=limit_date, print_date=print_date):
            by_section[row.invoice.section_id].append(row)
        return [_run_store(section=section, rows=by_section[section.pk], print_date=print_date,
                           limit_date=limit_date, user=user) for section in sections if by_section[section.pk]]


def run_select(*, run: ReminderRun, selected_ids: list[int]) -> None:
    """Tick exactly ``selected_ids`` among the run's proposed, not excluded lines."""
    if run.status != ReminderRun.Status.PROPOSED:
        raise ValidationError(_("Cette campagne de relance est déjà validée."))
    wanted = {int(pk) for pk in selected_ids}
    lines = run.reminders.filter(status=Reminder.Status.PROPOSED, exclusion="")
    lines.filter(pk__in=wanted).update(selected=True)
    lines.exclude(pk__in=wanted).update(selected=False)


def _current_balances(invoice_ids: list[int], on: date) -> dict[int, object]:
    """Balances now: allocations up to the print date, and never more than what is left today."""
    from django.db.models import Sum

    paid_on = dict(PaymentAllocation.objects.filter(invoice_id__in=invoice_ids, date__lte=on).values("invoice_id")
                   .annotate(s=Sum("amount")).values_list("invoice_id", "s"))
    result = {}
    for pk, total, paid in Invoice.objects.filter(pk__in=invoice_ids).values_list("pk", "total", "paid_amount"):
        result[pk] = min(total - round_money(paid_on.get(pk) or 0), total - paid)
    return result


def _letter_debtor(invoice: Invoice) -> tuple[str, str, str]:
    """(name, address, person) of the debtor as issued on the invoice (a payer is written to about
    itself: its person is its name)."""
    name = invoice.debtor_name or str(invoice)
    if invoice.debtor_kind == Invoice.DebtorKind.PAYER:
        return name, invoice.debtor_address, name
    person = invoice.resident_name or (invoice.resident.full_name if invoice.resident_id else name)
    return name, invoice.debtor_address, person


def _statement_numbers(invoice_ids) -> dict[int, str]:
    """The statement (bordereau) each payer invoice was sent in, for the payers' letters."""
    from billing.models import StatementLine

    return dict(StatementLine.objects.filter(invoice_id__in=invoice_ids).exclude(statement__number="")
                .order_by("statement__statement_date").values_list("invoice_id", "statement__number"))


def _letter_data(*, run, delays, lines, statements) -> letters_svc.LetterData:
    """One debtor's letter: its lines (``Reminder`` rows), the family or payer texts."""
    first = lines[0].invoice
    name, address, person = _letter_debtor(first)
    audience = Audience.PAYER if first.debtor_kind == Invoice.DebtorKind.PAYER else Audience.FAMILY
    return letters_svc.LetterData(
        establishment=run.section.establishment, debtor_name=name, debtor_address=address, person=person,
        level=max(line.level for line in lines), print_date=run.print_date,
        pay_by=run.print_date + _pay_within(delays), audience=audience,
        lines=[letters_svc.LetterLine(line.invoice.number, line.invoice.issue_date, line.invoice.due_date,
                                      line.amount, line.balance, line.level, statements.get(line.invoice_id, ""))
               for line in lines])


def run_validate(*, run: ReminderRun, user=None, progress=None) -> dict:
    """Letters for the ticked lines still owed (a payment since the proposal drops the line),
    one PDF per debtor and a merged one to print, e-mails queued for debtors with an address,
    invoices moved to their level. Idempotent for a validated run."""
    from .mailing import letters_email

    with transaction.atomic():
        run = ReminderRun.objects.select_for_update().select_related("section__establishment").get(pk=run.pk)
        if run.status == ReminderRun.Status.VALIDATED:
            return run.result
        lines = list(run.reminders.filter(status=Reminder.Status.PROPOSED)
                     .select_related("invoice__resident", "invoice__relative", "invoice__payer")
                     .order_by("invoice__due_date", "invoice__number"))
        chosen = [r for r in lines if r.selected and not r.exclusion]
        balances = _current_balances([r.invoice_id for r in chosen], run.print_date)
        already = set(Reminder.objects.filter(invoice_id__in=[r.invoice_id for r in chosen],
                                              status=Reminder.Status.SENT).values_list("invoice_id", "level"))
        by_debtor: dict[Debtor, list[Reminder]] = defaultdict(list)
        for line in lines:
            if line not in chosen:
                line.status = Reminder.Status.SKIPPED
                continue
            balance = balances[line.invoice_id]
            if balance <= 0 or (line.invoice_id, line.level) in already:
                line.status, line.exclusion = Reminder.Status.SKIPPED, SETTLED if balance <= 0 else line.exclusion
                line.balance = max(balance, 0)
                continue
            line.balance = balance
            by_debtor[Debtor.of(line.invoice)].append(line)
        delays = delays_for(run.section)
        statements = _statement_numbers([r.invoice_id for r in chosen])
        datas, letters = [], []
        for debtor, debtor_lines in sorted(by_debtor.items(), key=lambda i: _letter_debtor(i[1][0].invoice)[0]):
            first = debtor_lines[0].invoice
            data = _letter_data(run=run, delays=delays, lines=debtor_lines, statements=statements)
            letter = ReminderLetter.objects.create(
                run=run, debtor_kind=debtor.kind, resident_id=debtor.resident_id, relative_id=debtor.relative_id,
                payer_id=debtor.payer_id, debtor_name=data.debtor_name[:250], debtor_address=data.debtor_address,
                level=data.level, total_due=data.total_due)
            letter.pdf.save(f"relance_{run.section.alias}_{run.print_date:%Y%m%d}_{letter.pk}.pdf",
                            ContentFile(letters_svc.letters_pdf([data])), save=True)
            for line in debtor_lines:
                line.status, line.letter = Reminder.Status.SENT, letter
            datas.append(data)
            letters.append((letter, first))
            if progress:
                progress(len(letters), len(by_debtor), _("%(n)s lettre(s) produite(s)") % {"n": len(letters)})
        Reminder.objects.bulk_update(lines, ["status", "letter", "balance", "exclusion"])
        if datas:
            run.merged_pdf.save(f"relances_{run.section.alias}_{run.print_date:%Y%m%d}.pdf",
                                ContentFile(letters_svc.letters_pdf(datas)), save=False)
        mail = letters_email(run=run, letters=letters, user=user)
        run.status = ReminderRun.Status.VALIDATED
        run.validated_at = timezone.now()
        run.validated_by = user if (user and user.is_authenticated) else None
        run.result = {"letters": len(letters), "emailed": mail["emailed"], "to_post": mail["to_post"],
                      "mail_error": mail.get("error", ""),
                      "sent": sum(1 for line in lines if line.status == Reminder.Status.SENT)}
        run.save()
    return run.result


def _pay_within(delays):
    from datetime import timedelta

    # The debtor is given the level-1 delay to pay (15 days by default).
    return timedelta(days=delays.level1_days)


def run_validate_job(*, job, progress) -> dict:
    from core.services.jobs import JobError

    run = ReminderRun.objects.filter(pk=(job.params or {}).get("run_id")).first()
    if run is None:
        raise JobError(_("Campagne de relance introuvable."))
    return run_validate(run=run, user=job.created_by, progress=progress)


def run_validate_start(*, run: ReminderRun, user=None):
    """Create and enqueue the validation job (the view redirects to its progress)."""
    from core.services.jobs import job_create, job_enqueue
    from core.tasks import run_job

    if run.status != ReminderRun.Status.PROPOSED:
        raise ValidationError(_("Cette campagne de relance est déjà validée."))
    job = job_create(kind=VALIDATE_JOB_KIND, label=_("Relances %(alias)s du %(day)s") % {
        "alias": run.section.alias, "day": run.print_date.strftime("%d/%m/%Y")}, user=user, section=run.section,
        params={"run_id": run.pk})
    ReminderRun.objects.filter(pk=run.pk).update(job=job, status=ReminderRun.Status.VALIDATING)
    return job_enqueue(job=job, task=run_job)


def reminder_cancel(*, reminder: Reminder, reason: str, user=None) -> Reminder:
    """A reminder sent by mistake no longer counts (the invoice goes back to its previous level);
    the row stays, with who, when and why (and the audit log entry)."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Indiquez le motif de l'annulation.")})
    if reminder.status != Reminder.Status.SENT:
        raise ValidationError(_("Seule une relance envoyée peut être annulée."))
    higher = Reminder.objects.filter(invoice_id=reminder.invoice_id, status=Reminder.Status.SENT,
                                     level__gt=reminder.level).exists()
    if higher:
        raise ValidationError(_("Annulez d'abord la relance de niveau supérieur de la facture %(number)s.") % {
            "number": reminder.invoice.number})
    reminder.status = Reminder.Status.CANCELLED
    reminder.cancelled_at = timezone.now()
    reminder.cancelled_by = user if (user and user.is_authenticated) else None
    reminder.cancel_reason = reason[:250]
    reminder.save()
    return reminder


def letter_set_registered_number(*, letter: ReminderLetter, number: str) -> ReminderLetter:
    number = (number or "").strip()
    if letter.level != Level.FORMAL_NOTICE:
        raise ValidationError(_("Seule une mise en demeure est envoyée en recommandé."))
    if not number:
        raise ValidationError({"registered_number": _("Saisissez le numéro de la lettre recommandée.")})
    letter.registered_number = number[:40]
    letter.save(update_fields=["registered_number"])
    return letter


def run_preview_pdf(*, run: ReminderRun, reminder: Reminder) -> bytes:
    """The « loupe »: the letter the debtor of ``reminder`` would receive (its ticked lines, or the
    line itself when none is ticked), as it stands now; nothing is stored."""
    debtor = Debtor.of(reminder.invoice)
    lines = [line for line in run.reminders.filter(debtor.q("invoice__")).select_related("invoice")
             .order_by("invoice__due_date", "invoice__number") if line.selected and not line.exclusion]
    lines = lines or [reminder]
    data = _letter_data(run=run, delays=delays_for(run.section), lines=lines,
                        statements=_statement_numbers([line.invoice_id for line in lines]))
    return letters_svc.letters_pdf([data])


def proposals_prepare(*, today: date | None = None) -> list[int]:
    """The scheduler's monthly proposal (beat, daily, idempotent): for each active section with
    nothing reminded this month yet, a run dated today with the limit date the 1st of the month,
    when it has at least one line to send. It never validates (never sends) anything."""
    from structures.models import Section

    today = today or timezone.localdate()
    created = []
    month = first_of_month(today)
    for section in Section.objects.filter(is_active=True).select_related("establishment"):
        if ReminderRun.objects.filter(section=section, print_date__gte=month).exists():
            continue
        rows = proposal_rows(section=section, limit_date=month, print_date=today)
        if any(not row.is_excluded for row in rows):
            created.append(run_create(section=section, print_date=today, limit_date=month, by_scheduler=True).pk)
    return created
