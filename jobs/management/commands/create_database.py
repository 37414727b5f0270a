"""``create_database``: create the platform's database (the one ``DATABASE_URL`` names) on
its server when the server does not have it yet; ``scripts/start`` runs it before
``migrate``. See ``jobs.services.database``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from jobs.exceptions import DatabaseNotCreated
from jobs.services.database import database_create_if_missing


class Command(BaseCommand):
    help = (
        "Create the platform's database (DATABASE_URL) on its server when it does not exist yet (scripts/start "
        "runs it before migrate); an existing one is left as it is."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            created = database_create_if_missing()
        except DatabaseNotCreated as exc:
            raise CommandError(str(exc)) from None
        if created is not None:
            self.stdout.write(f"==> the database {created!r} did not exist on its server: created it")
