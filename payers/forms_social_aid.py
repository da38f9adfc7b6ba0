"""The form of a social-aid (ASH) application on the resident's file. Its choices are scoped in
``__init__`` to the resident's stays of the section, the association's départements and the decisions of
those stays (a posted id outside is refused by the field); ``payers.services.social_aid`` checks the rules."""
from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from residents.forms import ServiceModelForm
from residents.models import Stay

from .models import Payer, SocialAidApplication, SocialAidDecision

DATE = {"type": "date"}


class ApplicationStayField(forms.ModelChoiceField):
    def label_from_instance(self, stay):
        end = f" au {stay.end_date:%d/%m/%Y}" if stay.end_date else ""
        return f"{stay.section.alias} : séjour du {stay.entry_date:%d/%m/%Y}{end}"


class DecisionField(forms.ModelChoiceField):
    def label_from_instance(self, decision):
        reference = decision.decision_reference or "sans n°"
        return f"{decision.payer.code} {reference} à partir du {decision.valid_from:%d/%m/%Y}"


class SocialAidApplicationForm(ServiceModelForm):
    stay = ApplicationStayField(label=_("séjour"), queryset=Stay.objects.none())
    decision = DecisionField(label=_("décision d'aide sociale"), queryset=SocialAidDecision.objects.none(),
                             required=False,
                             help_text=_("Demande accordée : la décision saisie sur la facturation du séjour."))

    class Meta:
        model = SocialAidApplication
        fields = ["stay", "payer", "filed_on", "status", "decided_on", "decision", "note"]
        widgets = {"filed_on": forms.DateInput(format="%Y-%m-%d", attrs=DATE),
                   "decided_on": forms.DateInput(format="%Y-%m-%d", attrs=DATE),
                   "note": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, section, resident, **kwargs):
        super().__init__(*args, **kwargs)
        stays = Stay.objects.filter(section=section, resident=resident).select_related("section")
        self.fields["stay"].queryset = stays.order_by("-entry_date")
        self.fields["payer"].queryset = Payer.objects.filter(organisation_id=section.establishment.organisation_id,
                                                             kind=Payer.Kind.DEPARTEMENT).order_by("code")
        self.fields["decision"].queryset = (SocialAidDecision.objects.filter(stay__in=stays).select_related("payer")
                                            .order_by("-valid_from"))
        self.fields["decided_on"].help_text = _("Obligatoire pour une demande accordée ou refusée.")
