from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BillingConfig(AppConfig):
    name = "billing"
    verbose_name = _("Facturation")

    def ready(self):
        from auditlog.registry import auditlog

        from . import jobs  # noqa: F401 - registers the billing job runners
        from .services import statement_documents  # noqa: F401 - registers the statement attachment provider
        from .services.aid_plans import aid_plans_not_validated
        from .services.checks import period_check_register
        from .services.social_aid_checks import social_aid_pending_too_long
        from .services import payer_mails  # noqa: F401 - the payer file's Envois tab (payers.sendings)
        from . import models, signals

        signals.connect()
        period_check_register(aid_plans_not_validated)
        period_check_register(social_aid_pending_too_long)

        for model in (models.Product, models.Tariff, models.Package, models.NationalParameter,
                      models.DepartementParameter, models.StayPackage, models.BillingPeriod, models.Calendar,
                      models.CalendarDay, models.NumberSequence, models.Payment, models.PaymentAllocation):
            auditlog.register(model)
        # Invoices are not registered (regenerating thousands of drafts must stay cheap): their state
        # changes are logged explicitly — in bulk at issue (services.issuing), by Invoice.save otherwise.
