"""Quarterly pocket-money settlement (billing-rules §8), computed for every resident under social aid
of a section: what the resident kept over the quarter (resources − contributions billed) must reach
max(10 % of the quarter's resources, 3 × the monthly minimum); the difference is owed back to the
resident. ``quarter_pocket_money`` computes and lists it per payer; ``quarter_pocket_money_issue`` issues
it (net model, §8): a credit note to the resident on the quarter's contribution lines (latest first) and
an invoice of the same amount to the département — the département pays what the resident no longer
contributes — or records the quarter at zero. One ``PocketMoneySettlement`` per decision and quarter,
written first in each resident's transaction: re-running a quarter never issues twice. The beat
(``pocket_money_prepare``, daily) starts the job of the previous quarter once its three months are issued.

Contributions are the issued *participation du résident* lines of the quarter, less what credit notes
took back from them. The resources of a month count when the decision covers at least one of its days.
The minimum is the decision's own, else its payer's, else the legal one of the quarter's first month.
"""
from __future__ import annotations

import calendar as pycal
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _

from core.formats import fr_date
from core.money import ZERO, format_euros, round_money
from payers.models import SocialAidDecision

from ..models import BillingPeriod, Invoice, InvoiceLine, NationalParameter, PocketMoneySettlement
from .issuing import credit_left_by_line, credit_note_create, invoices_issue
from .social_aid import quarter_pocket_money_refund

JOB_KIND = "billing.pocket_money"
CONTRIBUTION_Q = Q(reason=InvoiceLine.Reason.SOCIAL_AID_CONTRIBUTION) | Q(
    credited_line__reason=InvoiceLine.Reason.SOCIAL_AID_CONTRIBUTION)
PAYANT_KINDS = [Invoice.DebtorKind.RESIDENT, Invoice.DebtorKind.RELATIVE]


@dataclass
class QuarterRow:
    decision: SocialAidDecision
    payer_code: str
    payer_name: str
    resident_name: str
    decision_reference: str
    months: int
    resources: Decimal
    contributions: Decimal
    minimum: Decimal
    refund: Decimal


def quarter_bounds(quarter: str) -> tuple[date, date]:
    """« 2026-T2 » / « 2026-Q2 » → (1 April 2026, 30 June 2026); French error otherwise."""
    text = quarter.strip().upper().replace("Q", "T")
    try:
        year_text, number_text = text.split("-T")
        year, number = int(year_text), int(number_text)
        if not 1 <= number <= 4:
            raise ValueError
    except ValueError as exc:
        raise ValidationError(_("Trimestre invalide : « %(value)s » (attendu : AAAA-T1 à AAAA-T4).") % {
            "value": quarter}) from exc
    first_month = 3 * (number - 1) + 1
    return date(year, first_month, 1), date(year, first_month + 2, pycal.monthrange(year, first_month + 2)[1])


def _legal_minimum(on: date) -> Decimal:
    row = (NationalParameter.objects.filter(kind=NationalParameter.Kind.POCKET_MONEY_MINIMUM, valid_from__lte=on)
           .order_by("-valid_from").first())
    return row.amount if row else ZERO


def pocket_money_rows(*, section, start: date, end: date) -> list[QuarterRow]:
    """Per social-aid decision of the section overlapping [start, end] (whole months): resources,
    contributions billed (issued participation lines less their credit notes, pocket-money
    settlements included), the minimum, and what falls short of the pocket money (``refund``)."""
    legal = _legal_minimum(start)
    decisions = (SocialAidDecision.objects.filter(stay__section=section, valid_from__lte=end)
                 .filter(Q(valid_to__isnull=True) | Q(valid_to__gte=start))
                 .select_related("payer", "group", "stay__resident").order_by("payer__code", "stay__resident__sort_key"))
    contributions = defaultdict(lambda: ZERO)
    for row in (InvoiceLine.objects.filter(CONTRIBUTION_Q, invoice__section=section,
                                           invoice__debtor_kind__in=PAYANT_KINDS,
                                           date_from__lte=end, date_to__gte=start)
                .exclude(invoice__status=Invoice.Status.DRAFT)
                .values("stay_id").annotate(total=Sum("amount"))):
        contributions[row["stay_id"]] += row["total"]
    months_of_range = []
    cursor = date(start.year, start.month, 1)
    while cursor <= end:
        months_of_range.append(cursor)
        cursor = date(cursor.year + (cursor.month == 12), cursor.month % 12 + 1, 1)
    rows = []
    for decision in decisions:
        months = [m for m in months_of_range
                  if decision.valid_from <= date(m.year, m.month, pycal.monthrange(m.year, m.month)[1])
                  and (decision.valid_to is None or decision.valid_to >= m)]
        minimum = (decision.pocket_money_minimum if decision.pocket_money_minimum is not None
                   else decision.payer.pocket_money_minimum if decision.payer.pocket_money_minimum is not None
                   else legal)
        paid = round_money(contributions[decision.stay_id])
        # the housing allowance is handed over in full: it is not part of what the resident keeps
        housing = round_money(decision.housing_allowance * len(months))
        refund = quarter_pocket_money_refund(monthly_resources=[decision.monthly_resources] * len(months),
                                             contributions=[paid - housing], minimum=minimum)
        rows.append(QuarterRow(
            decision=decision, payer_code=decision.payer.code, payer_name=decision.payer.name,
            resident_name=decision.stay.resident.full_name, decision_reference=decision.decision_reference,
            months=len(months), resources=round_money(decision.monthly_resources * len(months)),
            contributions=paid, minimum=round_money(minimum), refund=refund))
    return rows


def quarter_pocket_money(*, section, quarter: str) -> list[QuarterRow]:
    start, end = quarter_bounds(quarter)
    return pocket_money_rows(section=section, start=start, end=end)


def quarter_label(quarter: str) -> str:
    start, _end = quarter_bounds(quarter)
    return f"{start.year}-T{(start.month - 1) // 3 + 1}"


def _contribution_lines(*, stay_id: int, start: date, end: date) -> list[InvoiceLine]:
    """The issued contribution lines of the stay in the quarter, latest first (the credit note gives back
    from the last month first)."""
    return list(InvoiceLine.objects.filter(
        stay_id=stay_id, reason=InvoiceLine.Reason.SOCIAL_AID_CONTRIBUTION, date_from__lte=end, date_to__gte=start,
        invoice__status=Invoice.Status.ISSUED, invoice__debtor_kind__in=PAYANT_KINDS,
        invoice__kind__in=[Invoice.Kind.INVOICE, Invoice.Kind.RAPPEL])
        .select_related("invoice", "product").order_by("-date_from", "-invoice__issue_date", "-pk"))


def _issue_refund(*, row: QuarterRow, quarter: str, start: date, end: date, user, issue_date: date):
    decision = row.decision
    label = _("Argent de poche du %(quarter)s rendu à %(name)s (minimum %(minimum)s/mois)") % {
        "quarter": quarter, "name": row.resident_name, "minimum": format_euros(row.minimum)}
    remaining, by_invoice, last_line = row.refund, {}, None
    for line in _contribution_lines(stay_id=decision.stay_id, start=start, end=end):
        left = credit_left_by_line(line.invoice).get(line.pk, ZERO)
        take = min(remaining, left)
        if take > 0:
            by_invoice.setdefault(line.invoice, {})[line.pk] = take
            remaining -= take
            last_line = last_line or line
        if not remaining:
            break
    if remaining > 0:
        raise ValidationError(_("Argent de poche de %(name)s (%(quarter)s) : %(amount)s à rendre mais les "
                                "participations émises du trimestre n'en laissent que %(left)s.") % {
            "name": row.resident_name, "quarter": quarter, "amount": format_euros(row.refund),
            "left": format_euros(row.refund - remaining)})
    credit_notes = [credit_note_create(invoice=invoice, lines=lines, reason=label, issue_date=issue_date, user=user,
                                       line_reason=InvoiceLine.Reason.POCKET_MONEY)
                    for invoice, lines in by_invoice.items()]
    invoice = Invoice.objects.create(
        period=last_line.invoice.period, section=last_line.invoice.section,
        establishment=last_line.invoice.establishment, kind=Invoice.Kind.INVOICE, debtor_kind=Invoice.DebtorKind.PAYER,
        payer=decision.payer, payer_group=decision.group, date_from=start, date_to=end, total=row.refund,
        comment=_("Régularisation d'argent de poche %(quarter)s") % {"quarter": quarter})
    InvoiceLine.objects.create(
        invoice=invoice, resident=decision.stay.resident, stay=decision.stay, product=last_line.product,
        label=(_("Participation rendue à %(name)s : argent de poche du %(quarter)s") % {
            "name": row.resident_name, "quarter": quarter})[:250],
        reason=InvoiceLine.Reason.POCKET_MONEY, date_from=start, date_to=end, quantity=Decimal("1"), unit_price=row.refund,
        amount=row.refund, vat_rate=last_line.vat_rate)
    invoices_issue(invoice_ids=[invoice.pk], user=user, issue_date=issue_date)
    return credit_notes, invoice



def quarter_pocket_money_issue(*, section, quarter: str, user=None, issue_date: date | None = None,
                               progress=None, today: date | None = None) -> dict:
    """Issue the quarter's pocket-money settlements of the section (see the module). Returns the counts
    and the rows listed per payer (``rows``: payer, resident, refund, documents, already settled)."""
    start, end = quarter_bounds(quarter)
    quarter = quarter_label(quarter)
    today = today or timezone.localdate()
    if end >= today:
        raise ValidationError(_("Le trimestre %(quarter)s n'est pas terminé (il finit le %(end)s) : sa "
                                "régularisation d'argent de poche se fait après.") % {
            "quarter": quarter, "end": fr_date(end)})
    issue_date = issue_date or today
    rows = pocket_money_rows(section=section, start=start, end=end)
    done = set(PocketMoneySettlement.objects.filter(quarter=quarter, decision__in=[r.decision for r in rows])
               .values_list("decision_id", flat=True))
    result = {"quarter": quarter, "issued": 0, "zero": 0, "already": 0, "total": "0.00", "rows": [],
              "invoice_ids": []}
    total = ZERO
    for index, row in enumerate(rows):
        if progress:
            progress(index, len(rows), row.resident_name)
        entry = {"payer": row.payer_code, "resident": row.resident_name, "refund": str(row.refund), "documents": []}
        if row.decision.pk in done:
            result["already"] += 1
            entry["already"] = True
            result["rows"].append(entry)
            continue
        try:
            with transaction.atomic():
                settlement = PocketMoneySettlement.objects.create(
                    section=section, quarter=quarter, decision=row.decision, payer=row.decision.payer,
                    resident=row.decision.stay.resident, resident_name=row.resident_name[:250], months=row.months,
                    resources=row.resources, contributions=row.contributions, minimum=row.minimum, refund=row.refund,
                    created_by=user if (user and user.is_authenticated) else None)
                if row.refund > 0:
                    credit_notes, invoice = _issue_refund(row=row, quarter=quarter, start=start, end=end, user=user,
                                                          issue_date=issue_date)
                    settlement.credit_notes.set(credit_notes)
                    settlement.payer_invoice = invoice
                    settlement.save(update_fields=["payer_invoice"])
                    entry["documents"] = [cn.number for cn in credit_notes] + [invoice.number]
                    result["invoice_ids"] += [cn.pk for cn in credit_notes] + [invoice.pk]
        except IntegrityError:  # another run settled it meanwhile
            result["already"] += 1
            entry["already"] = True
        else:
            if row.refund > 0:
                result["issued"] += 1
                total += row.refund
            else:
                result["zero"] += 1
        result["rows"].append(entry)
    if progress:
        progress(len(rows), len(rows))
    result["total"] = str(round_money(total))
    result["message"] = _("%(quarter)s : %(issued)s régularisation(s) émise(s) (%(total)s), %(zero)s à zéro, "
                          "%(already)s déjà traitée(s).") % {
        "quarter": quarter, "issued": result["issued"], "total": format_euros(total), "zero": result["zero"],
        "already": result["already"]}
    return result


def pocket_money_job(*, job, progress) -> dict:
    """Job runner: params {"quarter": "AAAA-Tn", "issue_date": "AAAA-MM-JJ" (optional)}."""
    from core.services.jobs import JobError

    if job.section is None:
        raise JobError(_("Section manquante."))
    issue_date = date.fromisoformat(job.params["issue_date"]) if job.params.get("issue_date") else None
    try:
        result = quarter_pocket_money_issue(section=job.section, quarter=job.params.get("quarter", ""),
                                            user=job.created_by, issue_date=issue_date, progress=progress)
    except ValidationError as exc:
        raise JobError(" ".join(exc.messages)) from exc
    if result["invoice_ids"]:  # the PDFs of the credit notes and invoices issued, like any issue
        from .pdf import invoices_render_pdfs_start

        invoices_render_pdfs_start(invoice_ids=result["invoice_ids"], section=job.section, user=job.created_by)
    return result


def pocket_money_job_start(*, section, quarter: str, user=None, issue_date: date | None = None):
    from core.services.jobs import job_create, job_enqueue
    from core.tasks import run_job

    quarter = quarter_label(quarter)
    params = {"quarter": quarter}
    if issue_date:
        params["issue_date"] = issue_date.isoformat()
    job = job_create(kind=JOB_KIND, user=user, section=section, params=params,
                     label=_("Argent de poche %(quarter)s — %(alias)s") % {"quarter": quarter, "alias": section.alias})
    return job_enqueue(job=job, task=run_job)


def previous_quarter(today: date) -> str:
    number = (today.month - 1) // 3  # the quarter before today's (0 → the last one of last year)
    return f"{today.year - 1}-T4" if number == 0 else f"{today.year}-T{number}"


def pocket_money_prepare(*, today: date | None = None) -> list[int]:
    """Beat (daily, idempotent): for each active section with social-aid decisions over the previous
    quarter, start its settlement job once the quarter is billed (periods from its first to its last
    day, no draft left) and no job was started for that quarter yet."""
    from core.models import Job
    from structures.models import Section

    today = today or timezone.localdate()
    quarter = previous_quarter(today)
    start, end = quarter_bounds(quarter)
    started = []
    for section in Section.objects.filter(is_active=True):
        if not SocialAidDecision.objects.filter(stay__section=section, valid_from__lte=end).filter(
                Q(valid_to__isnull=True) | Q(valid_to__gte=start)).exists():
            continue
        if Job.objects.filter(section=section, kind=JOB_KIND, params__quarter=quarter).exists():
            continue
        periods = BillingPeriod.objects.filter(section=section, start__lte=end, end__gte=start)
        if (not periods.filter(end__gte=end).exists()  # the quarter's last days not billed yet
                or not periods.filter(start__lte=start).exists()
                or Invoice.objects.filter(period__in=periods, status=Invoice.Status.DRAFT).exists()):
            continue
        started.append(pocket_money_job_start(section=section, quarter=quarter).pk)
    return started
