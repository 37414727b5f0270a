from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from jobs import selectors


class Command(BaseCommand):
    help = "List application tokens (id, prefix, application, created, status, scopes). Secrets are never shown."

    def handle(self, *args: Any, **options: Any) -> None:
        tokens = selectors.token_list()
        if not tokens:
            self.stdout.write("No tokens. Issue one with: python manage.py issue_token NAME")
            return
        self.stdout.write(f"{'ID':36}  {'PREFIX':10}  {'APPLICATION':20}  {'CREATED':20}  {'STATUS':27}  SCOPES")
        for t in tokens:
            status = f"revoked {t.revoked_at:%Y-%m-%d %H:%M:%S}" if t.revoked_at else "active"
            self.stdout.write(
                f"{t.id!s:36}  {t.prefix:10}  {t.app_name[:20]:20}  {t.created_at:%Y-%m-%d %H:%M:%S}  "
                f"{status:27}  {' '.join(t.scopes)}"
            )
