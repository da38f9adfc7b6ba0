"""Billing URLs, mounted under /s/<alias>/facturation/. Each views module owns its patterns."""
from .views import balances, catalog, journal, mailing, payments, pdfs, periods, rappels, refunds, statements, stays, tax_certificates

app_name = "billing"
urlpatterns = (periods.urlpatterns + catalog.urlpatterns + journal.urlpatterns + pdfs.urlpatterns + rappels.urlpatterns
               + stays.urlpatterns + mailing.urlpatterns + payments.urlpatterns
               + balances.urlpatterns + tax_certificates.urlpatterns
               + statements.urlpatterns + refunds.urlpatterns)
