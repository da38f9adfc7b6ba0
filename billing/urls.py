"""Billing URLs, mounted under /s/<alias>/facturation/. Each views module owns its patterns."""
from .views import (accounting, balances, catalog, journal, mailing, payer_payments, payments, pdfs, periods,
                     rappels, statements, stays)

app_name = "billing"
urlpatterns = (periods.urlpatterns + catalog.urlpatterns + journal.urlpatterns + pdfs.urlpatterns + rappels.urlpatterns
               + stays.urlpatterns + mailing.urlpatterns + payments.urlpatterns
               + balances.urlpatterns + payer_payments.urlpatterns + statements.urlpatterns
               + accounting.urlpatterns)
