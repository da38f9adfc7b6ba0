from django import forms
from django.utils.translation import gettext_lazy as _


class PeriodCreateForm(forms.Form):
    month = forms.CharField(label=_("mois"), required=False, widget=forms.TextInput(attrs={"type": "month"}),
                            help_text=_("Période mensuelle (AAAA-MM)."))
    start = forms.DateField(label=_("du"), required=False, widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}))
    end = forms.DateField(label=_("au"), required=False, widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}),
                          help_text=_("Périodicité libre uniquement."))
    accounting_date = forms.DateField(label=_("date de comptabilisation"), required=False,
                                      widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}),
                                      help_text=_("Par défaut : le dernier jour de la période."))

    def clean(self):
        data = super().clean()
        if not data.get("month") and not data.get("start"):
            raise forms.ValidationError(_("Indiquez le mois, ou les dates de début et de fin."))
        return data


class IssueForm(forms.Form):
    issue_date = forms.DateField(label=_("date d'émission"), widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}))


class CreditNoteForm(forms.Form):
    reason = forms.CharField(label=_("motif"), max_length=200)
    full = forms.BooleanField(label=_("avoir total (annule la facture)"), required=False, initial=True)
