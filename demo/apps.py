from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "demo"
    verbose_name = "Démonstration"

    def ready(self):
        from . import checks  # noqa: F401  (registers the deploy check)
