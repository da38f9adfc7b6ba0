"""Forms of the payer file. They clean fields only; ``payers.services.payers`` owns the rules."""
from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from residents.forms import ServiceModelForm

from .models import Payer, PayerGroup

DEFINITION_FIELDS = ["code", "name", "kind", "departement", "siret", "address", "postal_code", "city", "email",
                     "accounting_account"]
SETTINGS_FIELDS = ["statement_mode", "paid_to_beneficiary", "apa_dotation_globale", "pocket_money_minimum",
                   "chorus_pro", "chorus_service_code", "chorus_engagement_number", "chorus_engagement_required",
                   "facturx_profile"]


class PayerDefinitionForm(ServiceModelForm):
    siret = forms.CharField(label=_("SIRET"), max_length=20, required=False,
                            help_text=_("14 chiffres ; les espaces sont ignorés."))

    def clean_siret(self):
        return "".join(self.cleaned_data["siret"].split())

    class Meta:
        model = Payer
        fields = DEFINITION_FIELDS


class PayerSettingsForm(ServiceModelForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["facturx_profile"].required = False  # absent: the recommended EN 16931

    def clean_facturx_profile(self):
        return self.cleaned_data.get("facturx_profile") or Payer.FacturxProfile.EN16931

    class Meta:
        model = Payer
        fields = SETTINGS_FIELDS
        widgets = {"statement_mode": forms.RadioSelect}


class PayerGroupForm(ServiceModelForm):
    class Meta:
        model = PayerGroup
        fields = ["code", "label"]


class NoteForm(forms.Form):
    text = forms.CharField(label="note", widget=forms.Textarea(attrs={"rows": 3}), max_length=5000)
