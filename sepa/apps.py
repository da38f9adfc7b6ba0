from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SepaConfig(AppConfig):
    name = "sepa"
    verbose_name = _("Prélèvements SEPA")

    def ready(self):
        from auditlog.registry import auditlog

        from . import models

        auditlog.register(models.Mandate)
