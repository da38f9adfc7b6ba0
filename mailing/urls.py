"""Outbox URLs, mounted under /s/<alias>/courriels/ (namespace ``mailing``)."""
from .views import app_name, urlpatterns  # noqa: F401
