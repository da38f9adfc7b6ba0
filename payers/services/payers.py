"""Payer files: definition, settings, groups and the internal notes thread (billing-rules §4, §8).

Keyword-only functions; every refusal is a ``ValidationError`` in French naming the field.
"""
from __future__ import annotations

from django.core.exceptions import ValidationError
from stdnum.fr import siret as stdnum_siret
from django.db import transaction
from django.db.models import ProtectedError
from django.utils.translation import gettext as _

from ..models import Payer, PayerGroup, PayerNote


def payer_save(*, payer: Payer) -> Payer:
    """Create or change a payer of an association (definition and settings)."""
    errors = {}
    payer.code = payer.code.strip().upper()
    if not payer.code:
        errors["code"] = _("Le code du payeur est obligatoire.")
    elif Payer.objects.filter(organisation_id=payer.organisation_id, code=payer.code).exclude(pk=payer.pk).exists():
        errors["code"] = _("Le code « %(code)s » est déjà celui d'un autre payeur de l'association.") % {
            "code": payer.code}
    payer.siret = "".join(payer.siret.split())
    if payer.siret and (len(payer.siret) != 14 or not payer.siret.isdigit()):
        errors["siret"] = _("Le SIRET « %(value)s » doit compter 14 chiffres.") % {"value": payer.siret}
    payer.chorus_service_code = payer.chorus_service_code.strip()
    payer.chorus_engagement_number = payer.chorus_engagement_number.strip()
    if payer.chorus_pro and "siret" not in errors:
        if not payer.siret:
            errors["chorus_pro"] = _("Chorus Pro : renseignez d'abord le SIRET du payeur (définition), qui adresse "
                                     "ses factures.")
        elif not stdnum_siret.is_valid(payer.siret):
            errors["chorus_pro"] = _("Chorus Pro : le SIRET « %(value)s » du payeur est invalide (clé de Luhn).") % {
                "value": payer.siret}
    if payer.chorus_engagement_required and not payer.chorus_engagement_number:
        errors["chorus_engagement_number"] = _("Le numéro d'engagement est obligatoire pour ce payeur.")
    if payer.departement:
        payer.departement = payer.departement.strip().upper()
    if payer.pocket_money_minimum is not None and payer.pocket_money_minimum < 0:
        errors["pocket_money_minimum"] = _("Le minimum d'argent de poche ne peut pas être négatif.")
    if errors:
        raise ValidationError(errors)
    payer.save()
    return payer


def payer_group_save(*, group: PayerGroup) -> PayerGroup:
    group.code = group.code.strip().upper()
    group.label = group.label.strip()
    errors = {}
    if not group.code:
        errors["code"] = _("Le code du groupe est obligatoire.")
    elif PayerGroup.objects.filter(payer_id=group.payer_id, code=group.code).exclude(pk=group.pk).exists():
        errors["code"] = _("Le groupe « %(code)s » existe déjà pour ce payeur.") % {"code": group.code}
    if not group.label:
        errors["label"] = _("Le libellé du groupe est obligatoire.")
    if errors:
        raise ValidationError(errors)
    group.save()
    return group


def payer_group_delete(*, group: PayerGroup) -> None:
    """A group still named by coverage rules, social-aid decisions or invoices is kept (French refusal)."""
    try:
        with transaction.atomic():
            group.delete()
    except ProtectedError as exc:
        raise ValidationError(
            _("Le groupe « %(code)s » est utilisé (%(count)s règle(s) de prise en charge, décision(s) ou facture(s)) : "
              "il ne peut pas être supprimé.") % {"code": group.code, "count": len(exc.protected_objects)}) from exc


def payer_note_add(*, payer: Payer, text: str, author=None) -> PayerNote:
    text = (text or "").strip()
    if not text:
        raise ValidationError({"text": _("La note est vide.")})
    return PayerNote.objects.create(payer=payer, text=text, author=author)
