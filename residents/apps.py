from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ResidentsConfig(AppConfig):
    name = "residents"
    verbose_name = _("Résidents")

    def ready(self):
        from auditlog.registry import auditlog

        from . import models

        for model in (models.Resident, models.Relative, models.Stay, models.GirAssessment, models.Absence,
                      models.AbsenceReason):
            auditlog.register(model)
