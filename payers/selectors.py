"""Reads of payers, always through the section of the URL: a payer belongs to an association, and a
user sees the payers of the associations of the sections granted to them (another association's
payer, even with a guessed id, is a 404)."""
from __future__ import annotations

from datetime import date

from django.db.models import Count, QuerySet
from django.http import Http404

from core.dates import add_months

from .models import Payer, PayerGroup, PayerNote, SocialAidApplication


def payer_list(*, section, query: str = "") -> QuerySet[Payer]:
    qs = (Payer.objects.filter(organisation_id=section.establishment.organisation_id)
          .annotate(group_count=Count("groups", distinct=True)).order_by("code"))
    if query:
        from django.db.models import Q

        qs = qs.filter(Q(code__icontains=query) | Q(name__icontains=query))
    return qs


def payer_get(*, section, pk: int) -> Payer:
    try:
        return Payer.objects.get(pk=pk, organisation_id=section.establishment.organisation_id)
    except Payer.DoesNotExist as exc:
        raise Http404("Payeur inconnu dans cette association.") from exc


def payer_group_get(*, payer: Payer, pk: int) -> PayerGroup:
    try:
        return payer.groups.get(pk=pk)
    except PayerGroup.DoesNotExist as exc:
        raise Http404("Groupe inconnu pour ce payeur.") from exc


def payer_notes(*, payer: Payer) -> QuerySet[PayerNote]:
    return payer.notes.select_related("author").order_by("-created_at", "-pk")


def payer_mails(*, payer: Payer, section):
    """Every outbox message of the section sent about one of the payer's documents (statements,
    invoices, letters… — see ``payers.sendings``), newest first."""
    from mailing.models import OutgoingMessage

    from .sendings import payer_mail_keys

    keys = payer_mail_keys(payer=payer, section=section)
    return (OutgoingMessage.objects.filter(organisation_id=payer.organisation_id, section=section,
                                           related_key__in=keys)
            .select_related("campaign").order_by("-created_at", "-pk"))


# --- Social-aid (ASH) applications ---------------------------------------------------------------

def resident_applications(*, section, resident) -> QuerySet[SocialAidApplication]:
    """The resident's social-aid applications on stays of ``section`` (newest filing first)."""
    return (SocialAidApplication.objects.filter(stay__section=section, stay__resident=resident)
            .select_related("stay", "payer", "decision", "updated_by").order_by("-filed_on", "-pk"))


def application_get(*, section, resident, pk: int) -> SocialAidApplication:
    try:
        return resident_applications(section=section, resident=resident).get(pk=pk)
    except SocialAidApplication.DoesNotExist as exc:
        raise Http404("Demande d'aide sociale inconnue pour ce résident dans cette section.") from exc


def pending_resident_ids() -> QuerySet:
    """The residents with a pending application, as a subquery (``resident_id__in=…``): not correlated,
    so a database evaluates it once (a hashed sub-plan on PostgreSQL) whatever the number of rows."""
    return (SocialAidApplication.objects.filter(status=SocialAidApplication.Status.PENDING)
            .values("stay__resident_id"))


def pending_filings(resident_ids) -> dict[int, SocialAidApplication]:
    """``{resident id: its oldest pending application}`` (payer loaded) for ``resident_ids`` (ids or an
    id subquery), in one query."""
    found: dict[int, SocialAidApplication] = {}
    for application in (SocialAidApplication.objects.filter(status=SocialAidApplication.Status.PENDING,
                                                            stay__resident_id__in=resident_ids)
                        .select_related("payer", "stay").order_by("filed_on", "pk")):
        found.setdefault(application.stay.resident_id, application)
    return found


def stale_pending_applications(*, stay_ids, on: date, months: int) -> QuerySet[SocialAidApplication]:
    """Applications of ``stay_ids`` still pending on ``on`` and filed more than ``months`` months before."""
    return (SocialAidApplication.objects.filter(stay_id__in=stay_ids, status=SocialAidApplication.Status.PENDING,
                                                filed_on__lt=add_months(on, -months))
            .select_related("stay__resident", "payer").order_by("filed_on", "pk"))


def stale_pending_counts(*, sections, on: date, months: int) -> dict[int, int]:
    """``{section id: applications of its stays pending on ``on`` and filed more than ``months`` months
    before}`` (one grouped query)."""
    return dict(SocialAidApplication.objects.filter(stay__section__in=sections,
                                                    status=SocialAidApplication.Status.PENDING,
                                                    filed_on__lt=add_months(on, -months))
                .values("stay__section_id").annotate(n=Count("pk")).order_by()
                .values_list("stay__section_id", "n"))
