"""Mandate life cycle (billing-rules.md §11): create, sign, change of account (amendment), revoke,
lapse. The mandate's status, its next sequence type and the debit batches are three separate things."""
from __future__ import annotations

from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.utils.translation import gettext as _
from django.utils import timezone

from ..models import RUM_VALIDATOR, Mandate, MandateAccount
from core.bank import validate_bic, validate_iban
from core.dates import add_months


LAPSE_MONTHS = 36


def mandate_usable(found: list[Mandate]) -> tuple[Mandate | None, str]:
    """The active mandate among a debtor's ``found`` (newest first), or why none can be debited."""
    active = [m for m in found if m.status == Mandate.Status.ACTIVE]
    if active:
        return active[0], ""
    if any(m.status == Mandate.Status.REVOKED for m in found):
        return None, _("Mandat révoqué.")
    if any(m.status == Mandate.Status.EXPIRED for m in found):
        return None, _("Mandat caduc (36 mois sans prélèvement).")
    if any(m.status == Mandate.Status.SUSPENDED for m in found):
        return None, _("Mandat suspendu après un rejet (à revoir).")
    return None, _("Mandat non signé.") if found else _("Aucun mandat.")


def mandate_rum_generate(*, establishment, resident, relative=None) -> str:
    """``<ESTABLISHMENT>-<resident id>[-P<relative id>]`` and a counter if already taken."""
    base = f"{establishment.code}-{resident.pk}" + (f"-P{relative.pk}" if relative else "")
    rum, n = base, 1
    while Mandate.objects.filter(establishment=establishment, rum__iexact=rum).exists():
        n += 1
        rum = f"{base}-{n}"
    return rum


@transaction.atomic
def mandate_create(*, establishment, resident, iban: str, account_holder: str, bic: str = "", relative=None,
                   rum: str = "", signature_date: date | None = None, last_collection_date: date | None = None,
                   on: date | None = None) -> Mandate:
    """A mandate to sign (RUM generated) or, with its RUM typed, one taken over from another system:
    with a last collection date it starts at RCUR."""
    iban = validate_iban(iban)
    bic = validate_bic(bic)
    if not account_holder.strip():
        raise ValidationError({"account_holder": _("Indiquez le titulaire du compte.")})
    if relative is not None and relative.resident_id != resident.pk:
        raise ValidationError({"relative": _("Ce proche n'est pas rattaché à ce résident.")})
    if rum:
        rum = rum.strip()
        RUM_VALIDATOR(rum)
        if Mandate.objects.filter(establishment=establishment, rum__iexact=rum).exists():
            raise ValidationError({"rum": _("La RUM %(rum)s existe déjà pour ce créancier.") % {"rum": rum}})
    else:
        rum = mandate_rum_generate(establishment=establishment, resident=resident, relative=relative)
    mandate = Mandate.objects.create(
        establishment=establishment, resident=resident, relative=relative, rum=rum, iban=iban, bic=bic,
        account_holder=account_holder.strip()[:140], last_collection_date=last_collection_date,
        next_sequence_type=Mandate.SequenceType.RCUR if last_collection_date else Mandate.SequenceType.FRST)
    MandateAccount.objects.create(mandate=mandate, iban=iban, bic=bic, account_holder=mandate.account_holder,
                                  valid_from=signature_date or on or timezone.localdate())
    if signature_date:
        mandate_sign(mandate=mandate, signature_date=signature_date)
    return mandate


def mandate_sign(*, mandate: Mandate, signature_date: date) -> Mandate:
    """Record the signature date: the mandate becomes active."""
    if mandate.status != Mandate.Status.PENDING:
        raise ValidationError(_("Seul un mandat à signer peut être signé (mandat %(rum)s : %(status)s).") % {
            "rum": mandate.rum, "status": mandate.get_status_display()})
    if signature_date > timezone.localdate():
        raise ValidationError({"signature_date": _("La date de signature ne peut pas être future.")})
    mandate.signature_date = signature_date
    mandate.status = Mandate.Status.ACTIVE
    mandate.save(update_fields=["signature_date", "status"])
    return mandate


@transaction.atomic
def mandate_change_account(*, mandate: Mandate, iban: str, account_holder: str = "", bic: str = "",
                           on: date | None = None) -> Mandate:
    """A new debtor account on the same mandate: the RUM is kept, the old account stays in the history
    and the next collection carries the amendment (``original_iban``; SMNDA when the bank changes)."""
    mandate = Mandate.objects.select_for_update().get(pk=mandate.pk)
    if mandate.status in (Mandate.Status.REVOKED, Mandate.Status.EXPIRED):
        raise ValidationError(_("Le mandat %(rum)s n'est plus utilisable : créez-en un nouveau.") % {"rum": mandate.rum})
    iban = validate_iban(iban)
    bic = validate_bic(bic)
    if iban == mandate.iban:
        raise ValidationError({"iban": _("C'est déjà l'IBAN du mandat.")})
    if not mandate.original_iban:  # several changes before a collection: the original is the first
        mandate.original_iban = mandate.iban
    mandate.iban, mandate.bic = iban, bic
    if account_holder.strip():
        mandate.account_holder = account_holder.strip()[:140]
    mandate.save(update_fields=["iban", "bic", "account_holder", "original_iban"])
    MandateAccount.objects.create(mandate=mandate, iban=iban, bic=bic, account_holder=mandate.account_holder,
                                  valid_from=on or timezone.localdate())
    return mandate


def mandate_revoke(*, mandate: Mandate, on: date, reason: str) -> Mandate:
    if not reason.strip():
        raise ValidationError({"revoke_reason": _("Indiquez le motif de la révocation.")})
    if mandate.status in (Mandate.Status.REVOKED, Mandate.Status.EXPIRED):
        raise ValidationError(_("Le mandat %(rum)s est déjà %(status)s.") % {
            "rum": mandate.rum, "status": mandate.get_status_display().lower()})
    mandate.status, mandate.revoked_on, mandate.revoke_reason = Mandate.Status.REVOKED, on, reason.strip()[:250]
    mandate.save(update_fields=["status", "revoked_on", "revoke_reason"])
    return mandate


def mandate_lapse_date(mandate: Mandate) -> date | None:
    """36 months after the due date of the last collection (rejected or not), or after the signature
    for a mandate never used."""
    return _lapse_date(mandate.last_collection_date, mandate.signature_date)


def _lapse_date(last_collection_date: date | None, signature_date: date | None) -> date | None:
    start = last_collection_date or signature_date
    return add_months(start, LAPSE_MONTHS) if start else None


def _unused_since(limit: date) -> Q:
    """The coarse filter of the mandates whose lapse date may be on or before ``limit`` + 36 months
    (the exact date, clamped at month ends, is checked in Python)."""
    return Q(last_collection_date__lte=limit) | Q(last_collection_date__isnull=True, signature_date__lte=limit)


@transaction.atomic
def mandates_lapse(*, today: date | None = None) -> list[Mandate]:
    """Mark lapsed (*caducs*) the active and pending-signed mandates whose lapse date has passed."""
    today = today or timezone.localdate()
    limit = add_months(today, -LAPSE_MONTHS)
    candidates = Mandate.objects.select_for_update().filter(status=Mandate.Status.ACTIVE).filter(_unused_since(limit))
    lapsed = []
    for mandate in candidates:
        if mandate_lapse_date(mandate) > today:  # month-end clamping of the coarse filter
            continue
        mandate.status, mandate.lapsed_on = Mandate.Status.EXPIRED, mandate_lapse_date(mandate)
        mandate.save(update_fields=["status", "lapsed_on"])
        lapsed.append(mandate)
    return lapsed


LAPSE_WARNING_DAYS = 60


def mandates_lapse_list(*, section, today: date | None = None, within_days: int = LAPSE_WARNING_DAYS):
    """For the clerk: the mandates of the section's residents already *caducs* (with their lapse date),
    and the active ones lapsing within ``within_days`` (never used for 36 months: a debit keeps them
    alive). Returns ``(lapsed, lapsing)``, each a list of ``(mandate, lapse date)``."""
    from datetime import timedelta

    today = today or timezone.localdate()
    horizon = today + timedelta(days=within_days)
    limit = add_months(horizon, -LAPSE_MONTHS)
    mandates = (Mandate.objects.filter(establishment_id=section.establishment_id,
                                       resident__stays__section=section).distinct()
                .select_related("resident", "relative").order_by("resident__last_name", "resident__first_name", "rum"))
    lapsed = [(m, m.lapsed_on or mandate_lapse_date(m)) for m in mandates.filter(status=Mandate.Status.EXPIRED)]
    lapsing = []
    for mandate in mandates.filter(status=Mandate.Status.ACTIVE).filter(_unused_since(limit)):
        lapse = mandate_lapse_date(mandate)
        if lapse and lapse <= horizon:
            lapsing.append((mandate, lapse))
    lapsed.sort(key=lambda pair: pair[1], reverse=True)
    lapsing.sort(key=lambda pair: pair[1])
    return lapsed, lapsing


def mandates_lapse_todo(sections, *, today: date | None = None,
                        within_days: int = LAPSE_WARNING_DAYS) -> dict[int, tuple[int, int]]:
    """``{section id: (lapsed count, lapsing count)}`` for the tableau de bord, counted as
    ``mandates_lapse_list`` lists them, in one query for all ``sections``: the mandates *caducs* or
    possibly lapsing of the residents staying in each section, whose creditor is that section's
    establishment."""
    from datetime import timedelta

    section_ids = [section.pk for section in sections]
    if not section_ids:
        return {}
    today = today or timezone.localdate()
    horizon = today + timedelta(days=within_days)
    rows = (Mandate.objects.filter(resident__stays__section_id__in=section_ids,
                                   resident__stays__section__establishment_id=F("establishment_id"))
            .filter(Q(status=Mandate.Status.EXPIRED)
                    | Q(status=Mandate.Status.ACTIVE) & _unused_since(add_months(horizon, -LAPSE_MONTHS)))
            .order_by().values_list("resident__stays__section_id", "pk", "status", "last_collection_date",
                                    "signature_date").distinct())
    lapsed: dict[int, set[int]] = {}
    lapsing: dict[int, set[int]] = {}
    for section_id, pk, status, last_collection_date, signature_date in rows:
        if status == Mandate.Status.EXPIRED:
            lapsed.setdefault(section_id, set()).add(pk)
        elif (lapse := _lapse_date(last_collection_date, signature_date)) and lapse <= horizon:
            lapsing.setdefault(section_id, set()).add(pk)
    return {section_id: (len(lapsed.get(section_id, ())), len(lapsing.get(section_id, ())))
            for section_id in section_ids if section_id in lapsed or section_id in lapsing}


# ------------------------------------------------------------------ texts of the mandate form

def _placeholders_check(text: str, field: str) -> None:
    import string

    from ..models import MANDATE_TEXT_PLACEHOLDERS

    try:
        names = {name for _lit, name, _spec, _conv in string.Formatter().parse(text) if name is not None}
    except ValueError:
        raise ValidationError({field: _("Accolade non fermée : écrivez les champs sous la forme {creancier}, "
                                        "{delai} ou {ics}.")}) from None
    unknown = sorted(names - set(MANDATE_TEXT_PLACEHOLDERS))
    if unknown:
        raise ValidationError({field: _("Champ inconnu : {%(name)s}. Champs possibles : {creancier}, {delai}, {ics}.")
                               % {"name": unknown[0]}})


def mandate_texts_save(*, establishment, authorisation: str, notice: str):
    """Save the establishment's texts (empty → the French default again)."""
    from ..models import DEFAULT_MANDATE_AUTHORISATION, DEFAULT_MANDATE_NOTICE, MandateText

    authorisation = authorisation.strip() or DEFAULT_MANDATE_AUTHORISATION
    notice = notice.strip() or DEFAULT_MANDATE_NOTICE
    _placeholders_check(authorisation, "authorisation")
    _placeholders_check(notice, "notice")
    texts, _created = MandateText.objects.update_or_create(
        establishment=establishment, defaults={"authorisation": authorisation, "notice": notice})
    return texts


def mandate_texts(establishment) -> dict[str, str]:
    """The texts to print for ``establishment`` (its own, or the French defaults), fields filled in."""
    from ..models import DEFAULT_MANDATE_AUTHORISATION, DEFAULT_MANDATE_NOTICE, MandateText

    saved = MandateText.objects.filter(establishment=establishment).first()
    values = {"creancier": establishment.sepa_name, "delai": establishment.sepa_prenotification_days,
              "ics": establishment.creditor_id or "—"}
    return {"authorisation": (saved.authorisation if saved else DEFAULT_MANDATE_AUTHORISATION).format(**values),
            "notice": (saved.notice if saved else DEFAULT_MANDATE_NOTICE).format(**values)}
