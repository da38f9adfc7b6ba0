from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PayersConfig(AppConfig):
    name = "payers"
    verbose_name = _("Payeurs")

    def ready(self):
        from auditlog.registry import auditlog

        from . import models

        for model in (models.Payer, models.PayerGroup, models.CoverageRule, models.SocialAidDecision,
                      models.SocialAidApplication, models.AidPlanDefault, models.AidPlan):
            auditlog.register(model)
