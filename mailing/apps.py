from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MailingConfig(AppConfig):
    name = "mailing"
    verbose_name = _("Envoi de courriels")

    def ready(self):
        from django.utils.module_loading import autodiscover_modules

        from core.services.jobs import register_job_runner

        from .services import campaigns

        register_job_runner(campaigns.JOB_KIND, campaigns.campaign_send_job)
        # The apps above plug into the outbox (document providers, placeholders, signal receivers)
        # from their ``services/mailing.py``, imported here in every process like admin.py modules —
        # mailing itself never imports them.
        autodiscover_modules("services.mailing")
