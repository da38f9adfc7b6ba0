from .installment_views import urlpatterns as installment_urlpatterns
from .views import app_name, urlpatterns as batch_urlpatterns  # noqa: F401

urlpatterns = batch_urlpatterns + installment_urlpatterns
