from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class StructuresConfig(AppConfig):
    name = "structures"
    verbose_name = _("Structures")

    def ready(self):
        from auditlog.registry import auditlog
        from django.utils.module_loading import autodiscover_modules

        from . import models

        auditlog.register(models.Organisation, exclude_fields=["smtp_password_encrypted",
                                                             "smtp_oauth_client_secret_encrypted"])
        auditlog.register(models.OrganisationAdministrator)
        auditlog.register(models.Establishment)
        auditlog.register(models.Section)
        auditlog.register(models.SectionAccess)
        # The apps above plug into the tableau de bord from their ``services/dashboard.py``
        # (facts, charts, to-dos, actions; see structures/dashboard.py).
        autodiscover_modules("services.dashboard")
