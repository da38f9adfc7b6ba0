"""Reads of the reminders app: runs, histories, reminded debtors still owing, the home to-do line."""
from __future__ import annotations

from django.db.models import Count, F, Max, Q
from django.http import Http404
from django.utils.translation import ngettext

from billing.models import Invoice
from billing.services.payments import PAYABLE_KINDS
from payers.selectors import pending_filings, pending_resident_ids

from .models import Reminder, ReminderLetter, ReminderRun
from .services.proposal import FAMILY_KINDS, SOCIAL_AID


def run_get(*, section, pk: int) -> ReminderRun:
    try:
        return ReminderRun.objects.select_related("section__establishment", "job").get(pk=pk, section=section)
    except ReminderRun.DoesNotExist as exc:
        raise Http404("Campagne de relance introuvable dans cette section.") from exc


def invoice_get(*, section, pk: int) -> Invoice:
    try:
        return Invoice.objects.select_related("resident").get(pk=pk, section=section)
    except Invoice.DoesNotExist as exc:
        raise Http404("Facture introuvable dans cette section.") from exc


def letter_get(*, section, pk: int) -> ReminderLetter:
    try:
        return ReminderLetter.objects.select_related("run").get(pk=pk, run__section=section)
    except ReminderLetter.DoesNotExist as exc:
        raise Http404("Lettre de relance introuvable dans cette section.") from exc


def proposed_runs(sections) -> list[ReminderRun]:
    """Runs waiting for validation in ``sections`` (already scoped by the caller), by alias."""
    return list(ReminderRun.objects.filter(section__in=sections, status=ReminderRun.Status.PROPOSED)
                .select_related("section").order_by("section__alias", "-pk"))


def run_debtors(run: ReminderRun) -> list[dict]:
    """The run's lines grouped per debtor (name order), each group with its lines and total; the lines
    suspended for a pending social-aid application are left out (``run_suspended``)."""
    groups: dict[tuple, dict] = {}
    for line in (run.reminders.exclude(exclusion=SOCIAL_AID).select_related("invoice__payer", "letter")
                 .order_by("invoice__debtor_name", "invoice__due_date", "invoice__number")):
        inv = line.invoice
        key = (inv.debtor_kind, inv.resident_id, inv.relative_id, inv.payer_id)
        group = groups.setdefault(key, {"name": inv.debtor_name or str(inv), "lines": [], "first": line})
        group["lines"].append(line)
    return list(groups.values())


def run_suspended(run: ReminderRun) -> list[Reminder]:
    """The run's lines not proposed because the resident's social-aid application is pending (their
    detail names the filing date), by resident and due date."""
    return list(run.reminders.filter(exclusion=SOCIAL_AID).select_related("invoice")
                .order_by("invoice__resident_name", "invoice__debtor_name", "invoice__due_date", "invoice__number"))


def aid_pending_invoices(section) -> list[dict]:
    """Issued family invoices of the section still owed whose resident has a social-aid application
    pending, whatever their due date — not reminded until the decision: with the filing date and the
    département, so that nobody forgets them (two queries)."""
    invoices = list(Invoice.objects.filter(section=section, status=Invoice.Status.ISSUED, kind__in=PAYABLE_KINDS,
                                           debtor_kind__in=FAMILY_KINDS, paid_amount__lt=F("total"),
                                           resident_id__in=pending_resident_ids())
                    .select_related("resident").order_by("resident__last_name", "resident__first_name",
                                                         "due_date", "number"))
    filings = pending_filings({invoice.resident_id for invoice in invoices})
    return [{"invoice": invoice, "resident": invoice.resident, "balance": invoice.total - invoice.paid_amount,
             "application": filings.get(invoice.resident_id)} for invoice in invoices]


def invoice_history(invoice) -> list[Reminder]:
    """Every reminder of the invoice that went out (sent or cancelled since), oldest first."""
    return list(invoice.reminders.filter(status__in=(Reminder.Status.SENT, Reminder.Status.CANCELLED))
                .select_related("letter", "cancelled_by").order_by("print_date", "level", "pk"))


def resident_history(*, section, resident) -> list[Reminder]:
    """Reminders sent about a resident's invoices (own or paid by a relative) in the section."""
    return list(Reminder.objects.filter(invoice__section=section, invoice__resident=resident,
                                        status__in=(Reminder.Status.SENT, Reminder.Status.CANCELLED))
                .select_related("invoice", "letter").order_by("-print_date", "invoice__number", "level"))


def reminded_unpaid(section) -> list[dict]:
    """Invoices reminded and still unpaid: level reached, date of the last letter, balance now."""
    rows = (Reminder.objects.filter(run__section=section, status=Reminder.Status.SENT,
                                    invoice__paid_amount__lt=F("invoice__total"),
                                    invoice__status=Invoice.Status.ISSUED)
            .values("invoice_id", "invoice__number", "invoice__debtor_name", "invoice__total",
                    "invoice__paid_amount")
            .annotate(level=Max("level"), last=Max("print_date"))
            .order_by("invoice__debtor_name", "invoice__number"))
    return [{"invoice_id": r["invoice_id"], "number": r["invoice__number"], "debtor": r["invoice__debtor_name"],
             "level": r["level"], "last": r["last"], "balance": r["invoice__total"] - r["invoice__paid_amount"]}
            for r in rows]


def proposals_todo(sections) -> list[dict]:
    """Home page to-do lines: « 12 relances proposées pour TIL-HP » for each section with a proposal
    waiting for validation (``{"section": alias, "count": n, "text": …, "run_id": pk}``)."""
    runs = (ReminderRun.objects.filter(section__in=sections, status=ReminderRun.Status.PROPOSED)
            .annotate(n=Count("reminders", filter=Q(reminders__exclusion="", reminders__selected=True)))
            .select_related("section").order_by("section__alias"))
    lines = []
    for run in runs:
        if not run.n:
            continue
        text = ngettext("%(count)s relance proposée pour %(alias)s", "%(count)s relances proposées pour %(alias)s",
                        run.n) % {"count": run.n, "alias": run.section.alias}
        lines.append({"section": run.section.alias, "count": run.n, "text": text, "run_id": run.pk})
    return lines
