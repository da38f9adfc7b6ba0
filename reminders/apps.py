from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RemindersConfig(AppConfig):
    name = "reminders"
    verbose_name = _("Relances")

    def ready(self):
        from auditlog.registry import auditlog

        from billing.services.panels import panel_register
        from core.services.jobs import register_job_runner
        from payers.sendings import payer_sendings_register

        from . import models
        from .services import runs
        from .services.invoice_panel import invoice_reminders_panel, resident_reminders_link
        from .services.payer_sendings import payer_reminder_sendings

        for model in (models.ReminderText, models.ReminderDelays, models.InvoiceDispute, models.Reminder):
            auditlog.register(model)
        register_job_runner(runs.VALIDATE_JOB_KIND, runs.run_validate_job)
        panel_register("invoice", invoice_reminders_panel, order=50)
        panel_register("resident_account", resident_reminders_link, order=10)
        payer_sendings_register(payer_reminder_sendings)
