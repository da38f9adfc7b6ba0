from django import forms
from django.utils.translation import gettext_lazy as _

from core.money import to_decimal


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
    """Reason, full or partial; a partial credit reads the amounts typed per invoice line
    (inputs ``credit_<line id>`` in the lines table) into ``cleaned_data["amounts"]``."""

    reason = forms.CharField(label=_("motif"), max_length=200)
    full = forms.BooleanField(label=_("avoir total (annule la facture)"), required=False, initial=True)

    def __init__(self, *args, lines=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.invoice_lines = list(lines)

    def clean(self):
        data = super().clean()
        data["amounts"] = None
        if data.get("full"):
            return data
        amounts = {}
        for line in self.invoice_lines:
            raw = (self.data.get(f"credit_{line.pk}") or "").strip()
            if not raw:
                continue
            try:
                amounts[line.pk] = to_decimal(raw)
            except ValueError:
                self.add_error(None, _("Montant invalide pour « %(label)s » : « %(value)s ».") % {
                    "label": line.label, "value": raw})
        data["amounts"] = amounts
        return data
