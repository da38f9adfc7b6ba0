"""Billing set-up of a stay: dated package assignment and coverage rules (payers' shares)."""
from __future__ import annotations

from datetime import date

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from payers.models import CoverageRule, SocialAidDecision

from ..models import Package, StayPackage


@transaction.atomic
def stay_package_set(*, stay, package: Package, valid_from) -> StayPackage:
    if package.section_id != stay.section_id:
        raise ValidationError({"package": _("Le forfait %(code)s n'appartient pas à la section %(alias)s.") % {
            "code": package.code, "alias": stay.section.alias}})
    if valid_from < stay.entry_date or (stay.end_date and valid_from > stay.end_date):
        raise ValidationError({"valid_from": _("La date %(day)s est hors du séjour.") % {
            "day": valid_from.strftime("%d/%m/%Y")}})
    assignment, _created = StayPackage.objects.update_or_create(stay=stay, valid_from=valid_from,
                                                                 defaults={"package": package})
    return assignment


def _foreign_payer_errors(item) -> dict:
    """A payer (or group) of another association than the stay's: refused, whatever the form let through."""
    organisation_id = item.stay.section.establishment.organisation_id
    if item.payer_id and item.payer.organisation_id != organisation_id:
        return {"payer": _("Le payeur %(payer)s appartient à une autre association.") % {"payer": item.payer}}
    return {}


@transaction.atomic
def coverage_rule_add(*, rule: CoverageRule, products=None) -> CoverageRule:
    errors = _foreign_payer_errors(rule)
    foreign = [p for p in (products or []) if p.establishment_id != rule.stay.section.establishment_id]
    if foreign:
        errors["products"] = _("Le produit %(code)s n'appartient pas à l'établissement du séjour.") % {
            "code": foreign[0].code}
    if rule.group and rule.group.payer_id != rule.payer_id:
        errors["group"] = _("Le groupe %(group)s n'appartient pas au payeur %(payer)s.") % {
            "group": rule.group, "payer": rule.payer}
    if rule.mode == CoverageRule.Mode.PERCENT and not (0 < rule.value <= 100):
        errors["value"] = _("Le pourcentage doit être compris entre 0 et 100 (saisi : %(v)s).") % {"v": rule.value}
    if rule.mode in (CoverageRule.Mode.AMOUNT_PER_UNIT, CoverageRule.Mode.ABOVE_RESIDENT_SHARE) and rule.value < 0:
        errors["value"] = _("Le montant doit être positif (saisi : %(v)s).") % {"v": rule.value}
    if rule.scope == CoverageRule.Scope.PRODUCTS and not products:
        errors["products"] = _("Choisissez au moins un produit couvert.")
    if rule.valid_to and rule.valid_to < rule.valid_from:
        errors["valid_to"] = _("La fin de prise en charge précède son début.")
    if errors:
        raise ValidationError(errors)
    rule.full_clean()
    rule.save()
    if products:
        rule.products.set(products)
    return rule


@transaction.atomic
def social_aid_decision_add(*, decision: SocialAidDecision) -> SocialAidDecision:
    errors = _foreign_payer_errors(decision)
    if decision.group and decision.group.payer_id != decision.payer_id:
        errors["group"] = _("Le groupe %(group)s n'appartient pas au payeur %(payer)s.") % {
            "group": decision.group, "payer": decision.payer}
    if decision.monthly_resources is not None and decision.monthly_resources < 0:
        errors["monthly_resources"] = _("Les ressources ne peuvent pas être négatives (saisi : %(v)s).") % {
            "v": decision.monthly_resources}
    if decision.valid_to and decision.valid_to < decision.valid_from:
        errors["valid_to"] = _("La fin de la décision précède son début.")
    overlap = SocialAidDecision.objects.filter(stay=decision.stay, valid_from__lte=decision.valid_to or date.max) \
        .exclude(valid_to__lt=decision.valid_from).exclude(pk=decision.pk).first()
    if overlap:
        errors["valid_from"] = _("Cette décision chevauche la décision %(other)s.") % {"other": overlap}
    if errors:
        raise ValidationError(errors)
    decision.full_clean()
    decision.save()
    return decision
