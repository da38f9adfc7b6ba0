from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SepaConfig(AppConfig):
    name = "sepa"
    verbose_name = _("Prélèvements SEPA")

    def ready(self):
        from auditlog.registry import auditlog

        from billing.services.checks import period_check_register

        from . import models
        from .checks import direct_debit_without_mandate

        auditlog.register(models.Mandate)
        auditlog.register(models.MandateAccount)
        auditlog.register(models.DebitBatch)
        auditlog.register(models.MandateText)
        period_check_register(direct_debit_without_mandate)
