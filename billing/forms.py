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
    """Reason, then either amounts typed per invoice line (inputs ``credit_<line id>`` in the lines table,
    read into ``cleaned_data["amounts"]``) or the full credit, which is never pre-selected and is
    confirmed on a second page showing its total (``confirm``)."""

    reason = forms.CharField(label=_("motif"), max_length=200)
    full = forms.BooleanField(label=_("avoir total (annule la facture)"), required=False, initial=False,
                              help_text=_("Une page de confirmation montre le montant total avant l'émission."))
    confirm = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args, lines=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.invoice_lines = list(lines)

    def typed(self) -> dict[int, str]:
        """The raw values typed per line, shown again in the table after an error."""
        return {line.pk: (self.data.get(f"credit_{line.pk}") or "").strip() for line in self.invoice_lines}

    def clean(self):
        data = super().clean()
        data["amounts"] = None
        typed = {pk: raw for pk, raw in self.typed().items() if raw}
        if data.get("full"):
            if typed:
                raise forms.ValidationError(_(
                    "Cochez « avoir total » ou saisissez des montants par ligne, pas les deux."))
            return data
        amounts = {}
        labels = {line.pk: line.label for line in self.invoice_lines}
        for pk, raw in typed.items():
            try:
                value = to_decimal(raw.replace("€", ""))
            except ValueError:
                value = None
            if value is None or not value.is_finite() or value.as_tuple().exponent < -2:
                self.add_error(None, _("Montant invalide pour « %(label)s » : « %(value)s ».") % {
                    "label": labels[pk], "value": raw})
                continue
            amounts[pk] = value
        if not typed:
            raise forms.ValidationError(_(
                "Saisissez le montant à créditer sur au moins une ligne, ou cochez « avoir total »."))
        data["amounts"] = amounts
        return data
