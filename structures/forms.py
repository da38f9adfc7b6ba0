from django import forms
from django.utils.translation import gettext_lazy as _

from .models import Establishment, Organisation, Section


class OrganisationForm(forms.ModelForm):
    smtp_password = forms.CharField(
        label=_("mot de passe SMTP"), required=False, widget=forms.PasswordInput(render_value=False),
        help_text=_("Laissez vide pour conserver le mot de passe enregistré. Il est stocké chiffré."),
    )

    class Meta:
        model = Organisation
        fields = ["name", "siret", "address", "postal_code", "city", "phone", "email", "smtp_host", "smtp_port",
                  "smtp_security", "smtp_username", "mail_delay_seconds", "mail_pause_every", "mail_pause_seconds"]

    def save(self, commit=True):
        organisation = super().save(commit=False)
        if self.cleaned_data.get("smtp_password"):
            organisation.smtp_password = self.cleaned_data["smtp_password"]
        if commit:
            organisation.save()
        return organisation


class EstablishmentForm(forms.ModelForm):
    class Meta:
        model = Establishment
        fields = ["name", "finess", "siret", "address", "postal_code", "city", "departement", "legal_status",
                  "phone", "sender_name", "sender_email", "logo", "creditor_id", "iban", "bic"]


class SectionForm(forms.ModelForm):
    class Meta:
        model = Section
        fields = ["name", "kind", "periodicity", "payment_due_days", "places", "is_active"]
