from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs import services
from jobs.exceptions import AppNotFound


class Command(BaseCommand):
    help = "Give an application a new secret for signing its completion callbacks (printed once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="Application name (see list_tokens).")
        parser.add_argument("--quiet", action="store_true", help="Print only the secret.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            secret = services.app_rotate_callback_secret(app_name=options["name"])
        except AppNotFound as exc:
            raise CommandError(str(exc)) from exc
        if options["quiet"]:
            self.stdout.write(secret)
            return
        self.stdout.write(f"New callback secret for application '{options['name']}' (the old one stops now):")
        self.stdout.write("")
        self.stdout.write(f"    {secret}")
        self.stdout.write("")
        self.stdout.write(
            "Receivers verify the Jobplatform-Signature header with it (docs/api.md, Completion callbacks)."
        )
