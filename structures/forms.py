from django import forms
from django.utils.translation import gettext_lazy as _

from .models import Establishment, Organisation, Section


class OrganisationForm(forms.ModelForm):
    smtp_password = forms.CharField(
        label=_("mot de passe SMTP"), required=False, widget=forms.PasswordInput(render_value=False),
        help_text=_("Laissez vide pour conserver le mot de passe enregistré (stocké chiffré). Changer le serveur, le "
                    "port, la sécurité ou la méthode d'identification l'efface : il faut alors le retaper."),
    )
    smtp_oauth_client_secret = forms.CharField(
        label=_("secret client OAuth2"), required=False, widget=forms.PasswordInput(render_value=False),
        help_text=_("Valeur du secret créé dans Entra ID. Laissez vide pour conserver celui enregistré (stocké "
                    "chiffré) ; effacé comme le mot de passe si le serveur ou la méthode change."),
    )

    class Meta:
        model = Organisation
        fields = ["name", "siret", "address", "postal_code", "city", "phone", "email", "smtp_host", "smtp_port",
                  "smtp_security", "smtp_auth_method", "smtp_username", "smtp_oauth_tenant_id",
                  "smtp_oauth_client_id", "mail_delay_seconds", "mail_pause_every", "mail_pause_seconds"]

    def clean(self):
        cleaned = super().clean()
        probe = Organisation(smtp_host=cleaned.get("smtp_host") or "", smtp_security=cleaned.get("smtp_security"),
                             smtp_username=cleaned.get("smtp_username") or "")
        if probe.smtp_plain_login_refused:
            self.add_error("smtp_security", _(
                "Sans chiffrement, l'identifiant et le mot de passe circuleraient en clair vers « %(host)s » : "
                "choisissez STARTTLS (port 587) ou SSL/TLS (port 465). L'envoi sans chiffrement avec identification "
                "n'est permis que vers un serveur local (localhost, 127.0.0.1).") % {"host": probe.smtp_host})
        if cleaned.get("smtp_auth_method") == Organisation.SmtpAuthMethod.OAUTH2:
            for name in ("smtp_oauth_tenant_id", "smtp_oauth_client_id", "smtp_username"):
                if not cleaned.get(name):
                    self.add_error(name, _("Obligatoire avec OAuth2 (Office 365)."))
        return cleaned

    def save(self, commit=True):
        organisation = super().save(commit=False)
        if self.cleaned_data.get("smtp_password"):
            organisation.smtp_password = self.cleaned_data["smtp_password"]
        if self.cleaned_data.get("smtp_oauth_client_secret"):
            organisation.smtp_oauth_client_secret = self.cleaned_data["smtp_oauth_client_secret"]
        if commit:
            organisation.save()
        return organisation


class EstablishmentForm(forms.ModelForm):
    class Meta:
        model = Establishment
        fields = ["name", "finess", "siret", "address", "postal_code", "city", "departement", "legal_status",
                  "phone", "sender_name", "sender_email", "logo", "creditor_id", "iban", "bic",
                  "sepa_creditor_name", "sepa_prenotification_days", "sepa_version", "sepa_frst_after_amendment"]


class SectionForm(forms.ModelForm):
    class Meta:
        model = Section
        fields = ["name", "kind", "periodicity", "payment_due_days", "places", "is_active"]
