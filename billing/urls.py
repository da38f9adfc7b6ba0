"""Billing URLs, mounted under /s/<alias>/facturation/. Each views module owns its patterns."""
from .views import (accounting, account_statements, balances, catalog, journal, mailing, payer_payments, payments,
                     pdfs, periods, pes, rappels, refunds, social_aid, statements, stays, tax_certificates)

app_name = "billing"
urlpatterns = (periods.urlpatterns + catalog.urlpatterns + journal.urlpatterns + pdfs.urlpatterns + rappels.urlpatterns
               + stays.urlpatterns + mailing.urlpatterns + payments.urlpatterns
               + balances.urlpatterns + payer_payments.urlpatterns + statements.urlpatterns
               + accounting.urlpatterns + tax_certificates.urlpatterns + account_statements.urlpatterns
               + refunds.urlpatterns + pes.urlpatterns + social_aid.urlpatterns)
