from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RemindersConfig(AppConfig):
    name = "reminders"
    verbose_name = _("Relances")

    def ready(self):
        from auditlog.registry import auditlog

        from billing.services.invoice_panels import invoice_panel_register
        from core.services.jobs import register_job_runner

        from . import models
        from .services import runs
        from .services.invoice_panel import invoice_reminders_panel

        for model in (models.ReminderText, models.ReminderDelays, models.InvoiceDispute, models.Reminder):
            auditlog.register(model)
        register_job_runner(runs.VALIDATE_JOB_KIND, runs.run_validate_job)
        invoice_panel_register(invoice_reminders_panel, order=50)
