from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "jobs"
    verbose_name = "Jobs"

    def ready(self) -> None:
        from . import checks, signals  # noqa: F401  (system checks, cluster hooks)
        from .registry import registry

        registry.autodiscover()
