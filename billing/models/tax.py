"""Yearly tax certificate (*attestation fiscale*, billing-rules.md §12): the texts of a section."""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from structures.models import Section

DEFAULT_BODY = (
    "Je soussigné(e), directeur(trice) de {etablissement}, atteste que {resident}, né(e) le {date_naissance}, "
    "a séjourné dans notre établissement ({sejour}).\n\n"
    "Au titre de l'année {annee}, les sommes suivantes ont été acquittées pour son hébergement et sa "
    "dépendance : hébergement {hebergement}, dépendance {dependance}, soit un montant net de {net}, "
    "déduction faite des aides perçues par l'établissement ({aides}).\n\n"
    "Attestation établie pour servir et valoir ce que de droit."
)
DEFAULT_MAIL_SUBJECT = "Attestation fiscale {annee} — {personne}"
DEFAULT_MAIL_BODY = (
    "Bonjour,\n\nVeuillez trouver ci-joint l'attestation des frais de séjour de {annee} de {personne}, à joindre "
    "à votre déclaration de revenus (réduction d'impôt, article 199 quindecies du CGI).\n\n"
    "Cordialement,\n{etablissement}"
)


class TaxCertificateSettings(models.Model):
    """The certificate text and the mail text of a section, editable by its managers (defaults above)."""

    section = models.OneToOneField(Section, verbose_name=_("section"), on_delete=models.CASCADE,
                                   related_name="tax_certificate_settings")
    body = models.TextField(_("texte de l'attestation"), default=DEFAULT_BODY)
    signatory = models.CharField(_("signataire"), max_length=200, blank=True,
                                 help_text=_("Nom et fonction imprimés sous le texte."))
    mail_subject = models.CharField(_("objet du courriel"), max_length=200, default=DEFAULT_MAIL_SUBJECT)
    mail_body = models.TextField(_("texte du courriel"), default=DEFAULT_MAIL_BODY)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, verbose_name=_("modifié par"), null=True, blank=True,
                                   on_delete=models.SET_NULL, related_name="+")
    updated_at = models.DateTimeField(_("modifié le"), auto_now=True)

    class Meta:
        verbose_name = _("modèle d'attestation fiscale")
        verbose_name_plural = _("modèles d'attestation fiscale")

    def __str__(self):
        return f"Attestation fiscale {self.section.alias}"
