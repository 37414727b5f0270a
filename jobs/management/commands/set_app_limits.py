from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs import services
from jobs.conf import settings
from jobs.exceptions import AppNotFound, InvalidInput


class Command(BaseCommand):
    help = (
        "Set an application's cap on running jobs, so its backlog cannot hold every worker "
        "(overrides JOBS_MAX_RUNNING_PER_APP for it)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="Application name (see list_tokens).")
        parser.add_argument(
            "--max-running",
            required=True,
            help="Most jobs it may run at once; 0 for no cap, 'default' to follow JOBS_MAX_RUNNING_PER_APP.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        raw = options["max_running"]
        try:
            value = None if raw == "default" else int(raw)
        except ValueError:
            raise CommandError("--max-running takes a whole number or 'default'") from None
        try:
            row = services.app_set_max_running(app_name=options["name"], max_running=value)
        except AppNotFound as exc:
            raise CommandError(str(exc)) from exc
        except InvalidInput as exc:
            raise CommandError("; ".join(m for ms in exc.errors.values() for m in ms)) from exc
        cap = row["max_running"]
        if cap is None:
            shown = f"the default (JOBS_MAX_RUNNING_PER_APP = {settings.MAX_RUNNING_PER_APP or 'no cap'})"
        else:
            shown = str(cap) if cap else "no cap"
        self.stdout.write(f"Application '{row['name']}' may run at once: {shown}.")
