"""A month for many sections at once: one job per section, run by the workers in parallel and
followed on one page (a group job, ``core.services.jobs.job_group_create``); the same per-section
step serves ``generate_period --all-sections``."""
from __future__ import annotations

from datetime import date

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from structures.models import Section

from ..models import Invoice
from . import checks as check_services
from . import issuing, periods
from .generation import period_generate, period_lock
from .period_data import PeriodData

JOB_KIND = "billing.section_month"
GENERATE, ISSUE = "generate", "issue"


def section_month_generate(*, section: Section, year: int, month: int) -> dict:
    """Open the month if needed, refuse on a blocking pre-flight check (nothing left behind), generate.

    Returns ``{"period_id", "created", "warnings": [check messages], **period_generate result}``."""
    with transaction.atomic():  # one commit for the opening, the checks and the drafts
        period = periods.period_for_month(section=section, year=year, month=month)
        created = period is None
        if created:
            period = periods.period_create(section=section, start=date(year, month, 1))
        period = period_lock(period)  # before reading: the checks and the drafts see the same rows
        data = PeriodData(section=period.section, start=period.start, end=period.end)  # read once, for both
        checks = check_services.period_checks(period=period, data=data)
        if check_services.period_blocking(checks):
            raise ValidationError([c.message for c in checks if c.level == "error"])
        result = period_generate(period=period, data=data)
    result.update(period_id=period.pk, created=created,
                  checks=[c.message for c in checks if c.level != "error"])
    return result


def section_month_issue(*, section: Section, year: int, month: int, user=None,
                        issue_date: date | None = None, render_pdfs: bool = True) -> dict:
    """Issue the month's drafts of a section and start its PDF job (``render_pdfs``)."""
    from .pdf import period_render_pdfs_start

    period = periods.period_for_month(section=section, year=year, month=month)
    if period is None:
        raise ValidationError(_("Aucune période pour %(month)02d/%(year)s dans la section %(alias)s.") % {
            "month": month, "year": year, "alias": section.alias})
    issued = issuing.period_issue(period=period, user=user, issue_date=issue_date)
    if issued and render_pdfs:
        period_render_pdfs_start(period, user)
    numbers = sorted(i.number for i in issued)
    return {"period_id": period.pk, "issued": len(issued), "first": numbers[0] if numbers else "",
            "last": numbers[-1] if numbers else ""}


def section_month_job(*, job, progress) -> dict:
    """Job runner: params {"section_id", "year", "month", "action": "generate"|"issue", "issue_date"?}."""
    from core.services.jobs import JobError

    params = job.params
    section = Section.objects.select_related("establishment").filter(pk=params.get("section_id")).first()
    if section is None:
        raise JobError(_("Section introuvable."))
    progress(0, 1, _("Section %(alias)s") % {"alias": section.alias})
    try:
        if params.get("action") == ISSUE:
            user = get_user_model().objects.filter(pk=job.created_by_id).first()
            issue_date = date.fromisoformat(params["issue_date"]) if params.get("issue_date") else None
            result = section_month_issue(section=section, year=params["year"], month=params["month"], user=user,
                                         issue_date=issue_date)
            message = _("%(n)s facture(s) émise(s)") % {"n": result["issued"]}
        else:
            result = section_month_generate(section=section, year=params["year"], month=params["month"])
            message = _("%(n)s facture(s) brouillon") % {"n": result["drafts"]}
    except ValidationError as exc:
        raise JobError(" ".join(exc.messages)) from exc
    progress(1, 1, message)
    return {**result, "message": message}


def sections_month_start(*, sections, year: int, month: int, action: str, user=None,
                         issue_date: date | None = None):
    """One job per section in a group job, enqueued after commit; returns the group job."""
    from core.services.jobs import job_group_create, job_group_enqueue
    from core.tasks import run_job

    verb = _("Émission") if action == ISSUE else _("Génération")
    children = [{"kind": JOB_KIND, "section": section,
                 "label": _("%(verb)s %(alias)s %(month)02d/%(year)s") % {
                     "verb": verb, "alias": section.alias, "month": month, "year": year},
                 "params": {"section_id": section.pk, "year": year, "month": month, "action": action,
                            "issue_date": issue_date.isoformat() if issue_date else ""}}
                for section in sections]
    if not children:
        raise ValidationError(_("Aucune section à traiter."))
    parent = job_group_create(
        label=_("%(verb)s de toutes les sections — %(month)02d/%(year)s (%(n)s)") % {
            "verb": verb, "month": month, "year": year, "n": len(children)},
        children=children, user=user, params={"year": year, "month": month, "action": action})
    return job_group_enqueue(parent=parent, task=run_job)


def sections_with_drafts(*, sections, year: int, month: int) -> list[Section]:
    """The sections (of ``sections``) that have draft invoices in the month's period."""
    start = date(year, month, 1)
    ids = set(Invoice.objects.filter(section__in=sections, status=Invoice.Status.DRAFT,
                                     period__start__lte=start, period__end__gte=start)
              .values_list("section_id", flat=True))
    return [s for s in sections if s.pk in ids]

