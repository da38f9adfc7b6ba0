"""Import URLs, mounted under /s/<alias>/imports/. Each views module owns its patterns."""
from .views import absences_import, bank_statement, payments_import, residents_import

app_name = "imports"
urlpatterns = (residents_import.urlpatterns + absences_import.urlpatterns + payments_import.urlpatterns
               + bank_statement.urlpatterns)
