"""Forms of aid plans and of a payer's default aid-plan values. Every choice is scoped in ``__init__`` to
the section of the URL (its stays, its establishment's products, its association's payers): a posted id
outside is refused by the field itself; ``payers.services.aid_plans`` checks the rules again on save."""
from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from billing.models.catalog import Product
from residents.forms import ServiceModelForm
from residents.models import Stay

from .models import AidPlan, AidPlanDefault, AidPlanValues, Payer, PayerGroup

DATE = {"type": "date"}


def plan_products(establishment):
    """Products a plan may finance: those the engine bills by day, half-day or month."""
    return Product.objects.filter(establishment=establishment).exclude(unit=Product.Unit.UNIT).order_by("code")


class StayChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, stay):
        end = f" au {stay.end_date:%d/%m/%Y}" if stay.end_date else ""
        return f"{stay.resident.full_name} (séjour du {stay.entry_date:%d/%m/%Y}{end})"


class AidPlanDefaultForm(ServiceModelForm):
    class Meta:
        model = AidPlanDefault
        fields = ["product", *AidPlanValues.VALUE_FIELDS]

    def __init__(self, *args, establishment, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["product"].queryset = plan_products(establishment)


class AidPlanStartForm(forms.Form):
    """Step 1 (« Création d'un nouveau plan d'aide »): beneficiary, payer, product."""

    stay = StayChoiceField(label=_("bénéficiaire"), queryset=Stay.objects.none())
    payer = forms.ModelChoiceField(label=_("payeur"), queryset=Payer.objects.none())
    product = forms.ModelChoiceField(label=_("produit"), queryset=Product.objects.none())

    def __init__(self, *args, section, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["stay"].queryset = (Stay.objects.filter(section=section).select_related("resident")
                                        .order_by("resident__last_name", "resident__first_name", "-entry_date"))
        self.fields["payer"].queryset = Payer.objects.filter(organisation_id=section.establishment.organisation_id)
        self.fields["product"].queryset = plan_products(section.establishment)


class AidPlanForm(ServiceModelForm):
    class Meta:
        model = AidPlan
        fields = ["group", "decision_reference", "valid_from", "valid_to", *AidPlanValues.VALUE_FIELDS]
        widgets = {"valid_from": forms.DateInput(format="%Y-%m-%d", attrs=DATE),
                   "valid_to": forms.DateInput(format="%Y-%m-%d", attrs=DATE),
                   "billing_mode": forms.RadioSelect}

    def __init__(self, *args, payer, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["group"].queryset = PayerGroup.objects.filter(payer=payer)
