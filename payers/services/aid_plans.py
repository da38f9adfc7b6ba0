"""Aid plans (plans d'aide, billing-rules §4): a payer's coverage decision for one beneficiary (the
resident of a stay) and one product, pre-filled from the payer's default values per product, *saisi*
then *validé*. Only validated plans are applied by generation (``billing.services.engine``).

Keyword-only functions; every refusal is a ``ValidationError`` in French naming the field and value.
"""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.formats import fr_date

from ..models import AidPlan, AidPlanDefault, AidPlanValues, Payer

HUNDRED = Decimal("100")


def aid_plan_initial(*, payer: Payer, product) -> dict:
    """The values a new plan of ``payer`` for ``product`` starts with: the payer's defaults (« Paramétrage »)."""
    default = AidPlanDefault.objects.filter(payer=payer, product=product).first()
    return default.values() if default else {}


def _value_errors(values: AidPlanValues) -> dict:
    errors = {}
    for name in ("rate", "holiday_rate"):
        value = getattr(values, name)
        if value is not None and value < 0:
            errors[name] = _("Le tarif ne peut pas être négatif (saisi : %(v)s).") % {"v": value}
    for name in ("coverage_percent", "holiday_coverage_percent"):
        value = getattr(values, name)
        if value is not None and not (0 <= value <= HUNDRED):
            errors[name] = _("Le taux doit être compris entre 0 et 100 (saisi : %(v)s).") % {"v": value}
    for name in ("monthly_cap_units", "holiday_cap_units"):
        value = getattr(values, name)
        if value is not None and value < 0:
            errors[name] = _("Le plafond ne peut pas être négatif (saisi : %(v)s).") % {"v": value}
    return errors


def _product_errors(*, product, establishment_id) -> dict:
    if product is None:
        return {}
    if product.establishment_id != establishment_id:
        return {"product": _("Le produit %(code)s n'appartient pas à l'établissement.") % {"code": product.code}}
    if product.unit == product.Unit.UNIT:
        return {"product": _("Le produit %(code)s est facturé à l'unité, à la main : un plan d'aide ne s'y applique "
                             "pas.") % {"code": product.code}}
    return {}


def aid_plan_default_save(*, default: AidPlanDefault, establishment) -> AidPlanDefault:
    """Create or change a payer's default values for a product of ``establishment``."""
    errors = _value_errors(default)
    errors.update(_product_errors(product=default.product if default.product_id else None,
                                  establishment_id=establishment.pk))
    if default.product_id and default.payer.organisation_id != establishment.organisation_id:
        errors["payer"] = _("Le payeur %(payer)s appartient à une autre association.") % {"payer": default.payer}
    if default.product_id and AidPlanDefault.objects.filter(payer_id=default.payer_id, product_id=default.product_id) \
            .exclude(pk=default.pk).exists():
        errors["product"] = _("Le produit %(code)s a déjà ses valeurs par défaut pour ce payeur.") % {
            "code": default.product.code}
    if errors:
        raise ValidationError(errors)
    default.save()
    return default


@transaction.atomic
def aid_plan_save(*, plan: AidPlan) -> AidPlan:
    """Create or change a plan. A change of a validated plan brings it back to *saisi*: it is applied again
    only once validated again."""
    stay = plan.stay
    establishment = stay.section.establishment
    errors = _value_errors(plan)
    if plan.payer_id and plan.payer.organisation_id != establishment.organisation_id:
        errors["payer"] = _("Le payeur %(payer)s appartient à une autre association.") % {"payer": plan.payer}
    if plan.group_id and plan.group.payer_id != plan.payer_id:
        errors["group"] = _("Le groupe %(group)s n'appartient pas au payeur %(payer)s.") % {
            "group": plan.group, "payer": plan.payer}
    errors.update(_product_errors(product=plan.product if plan.product_id else None,
                                  establishment_id=establishment.pk))
    if plan.valid_to and plan.valid_to < plan.valid_from:
        errors["valid_to"] = _("La fin de validité (%(end)s) précède le début (%(start)s).") % {
            "end": fr_date(plan.valid_to), "start": fr_date(plan.valid_from)}
    elif plan.valid_from < stay.entry_date or (stay.end_date and plan.valid_from > stay.end_date):
        errors["valid_from"] = _("Le début de validité %(day)s est hors du séjour (entrée le %(entry)s).") % {
            "day": fr_date(plan.valid_from), "entry": fr_date(stay.entry_date)}
    if plan.product_id and "valid_to" not in errors:
        overlap = (AidPlan.objects.filter(stay=stay, product_id=plan.product_id,
                                          valid_from__lte=plan.valid_to or date.max)
                   .exclude(valid_to__lt=plan.valid_from).exclude(pk=plan.pk).select_related("payer").first())
        if overlap:
            errors["valid_from"] = _("Ce plan chevauche le plan %(payer)s du %(start)s pour le produit %(code)s : "
                                     "fermez d'abord celui-ci.") % {
                "payer": overlap.payer.code, "start": fr_date(overlap.valid_from), "code": plan.product.code}
    if errors:
        raise ValidationError(errors)
    plan.status = AidPlan.Status.ENTERED
    plan.validated_at = plan.validated_by = None
    plan.save()
    return plan


def aid_plan_validate(*, plan: AidPlan, user) -> AidPlan:
    """*saisi* → **validé**: from now on generation applies it."""
    if plan.is_validated:
        raise ValidationError(_("Ce plan d'aide est déjà validé."))
    plan.status = AidPlan.Status.VALIDATED
    plan.validated_at = timezone.now()
    plan.validated_by = user
    plan.save(update_fields=["status", "validated_at", "validated_by"])
    return plan
