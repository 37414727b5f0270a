from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Jobs"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (system checks)
        from .registry import registry
        from .runtime import signals  # noqa: F401  (cluster hooks)

        registry.autodiscover()
