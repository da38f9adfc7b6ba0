"""Reads of payers, always through the section of the URL: a payer belongs to an association, and a
user sees the payers of the associations of the sections granted to them (another association's
payer, even with a guessed id, is a 404)."""
from __future__ import annotations

from django.db.models import Count, QuerySet
from django.http import Http404

from .models import Payer, PayerGroup, PayerNote


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
