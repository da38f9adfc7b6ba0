"""Social-aid (ASH) applications (billing-rules §8, §10): filed with the département, *en attente*
for months, then *accordée* (the decision is entered as today, ``SocialAidDecision``, and linked) or
*refusée*. While an application is pending the resident's invoices are not reminded.

Keyword-only functions; every refusal is a ``ValidationError`` in French naming the field and value.
"""
from __future__ import annotations

from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.formats import fr_date

from ..models import Payer, SocialAidApplication, SocialAidDecision


def _errors(application: SocialAidApplication) -> dict:
    errors = {}
    stay, payer = application.stay, application.payer
    if payer is not None:
        if payer.organisation_id != stay.section.establishment.organisation_id:
            errors["payer"] = _("Le payeur %(payer)s n'appartient pas à l'association du séjour.") % {"payer": payer}
        elif payer.kind != Payer.Kind.DEPARTEMENT:
            errors["payer"] = _("L'aide sociale est demandée à un département : %(payer)s est un payeur de nature "
                                "« %(kind)s ».") % {"payer": payer, "kind": payer.get_kind_display()}
    filed, decided = application.filed_on, application.decided_on
    today = timezone.localdate()
    if filed and filed > today:
        errors["filed_on"] = _("Le dépôt du dossier (%(day)s) ne peut pas être postérieur à aujourd'hui.") % {
            "day": fr_date(filed)}
    if decided and decided > today:
        errors["decided_on"] = _("La date de la décision (%(day)s) ne peut pas être postérieure à aujourd'hui.") % {
            "day": fr_date(decided)}
    if application.status == SocialAidApplication.Status.PENDING:
        if decided:
            errors["decided_on"] = _("Une demande en attente n'a pas de date de décision (saisi : %(day)s) : "
                                     "choisissez « Accordée » ou « Refusée ».") % {"day": fr_date(decided)}
        if application.decision_id:
            errors["decision"] = _("Une demande en attente n'est liée à aucune décision.")
        other = (SocialAidApplication.objects.filter(stay=stay, status=SocialAidApplication.Status.PENDING)
                 .exclude(pk=application.pk).first())
        if other:
            errors["status"] = _("Une autre demande est déjà en attente pour ce séjour (déposée le %(day)s).") % {
                "day": fr_date(other.filed_on)}
    else:
        if not decided:
            errors["decided_on"] = _("Indiquez la date de la décision (demande « %(status)s »).") % {
                "status": application.get_status_display()}
        elif filed and decided < filed:
            errors["decided_on"] = _("La décision du %(decided)s précède le dépôt du dossier du %(filed)s.") % {
                "decided": fr_date(decided), "filed": fr_date(filed)}
    decision = application.decision
    if decision is not None:
        if application.status != SocialAidApplication.Status.GRANTED:
            errors["decision"] = _("Seule une demande accordée est liée à une décision.")
        elif decision.stay_id != stay.pk:
            errors["decision"] = _("La décision %(decision)s n'est pas celle de ce séjour.") % {"decision": decision}
        elif SocialAidApplication.objects.filter(decision=decision).exclude(pk=application.pk).exists():
            errors["decision"] = _("La décision %(decision)s est déjà liée à une autre demande.") % {
                "decision": decision}
    return errors


@transaction.atomic
def application_save(*, application: SocialAidApplication, user=None) -> SocialAidApplication:
    """Create or change an application (its stay set by the caller, already scoped to the section). A
    granted application without a decision is linked to the stay's decision from the same département
    when there is exactly one not linked yet (entered as today on the stay's billing screen)."""
    if application.status == SocialAidApplication.Status.GRANTED and application.decision_id is None:
        free = list(SocialAidDecision.objects.filter(stay=application.stay, payer=application.payer,
                                                     application__isnull=True)[:2])
        if len(free) == 1:
            application.decision = free[0]
    errors = _errors(application)
    if errors:
        raise ValidationError(errors)
    application.note = (application.note or "").strip()
    application.updated_by = user if (user is not None and user.is_authenticated) else None
    application.full_clean(exclude=["stay", "payer", "decision", "updated_by"])
    application.save()
    return application
