from django.apps import AppConfig


class AdminScopeDouble(AppConfig):
    name = "tests.admin_scope"
    label = "admin_scope_double"

    def ready(self) -> None:
        from jobs import selectors

        from . import scoped

        if not getattr(selectors.app_for_token_id, "scoped_double", False):
            selectors.app_for_token_id = scoped(selectors.app_for_token_id)
