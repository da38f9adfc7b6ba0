from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SepaConfig(AppConfig):
    name = "sepa"
    verbose_name = _("Prélèvements SEPA")

    def ready(self):
        from auditlog.registry import auditlog

        from billing.services.panels import panel_register
        from billing.services.checks import period_check_register
        from billing.services.pes import register_sepa_provider

        from . import models
        from .checks import direct_debit_without_mandate
        from .pes import pes_sepa_info
        from .services.installments import resident_account_panel

        auditlog.register(models.Mandate)
        auditlog.register(models.MandateAccount)
        auditlog.register(models.DebitBatch)
        auditlog.register(models.InstallmentPlan)
        auditlog.register(models.Installment)
        auditlog.register(models.MandateText)
        period_check_register(direct_debit_without_mandate)
        register_sepa_provider(pes_sepa_info)
        panel_register("resident_account", resident_account_panel, order=50)
