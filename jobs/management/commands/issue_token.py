from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs import services
from jobs.domain import Scope
from jobs.exceptions import InvalidInput


class Command(BaseCommand):
    help = "Issue a new application token (printed once; only its hash is stored)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="Application name; created if new. Its jobs are visible to all its tokens.")
        parser.add_argument(
            "--scope",
            action="append",
            dest="scopes",
            metavar="SCOPE",
            choices=[scope.value for scope in Scope],
            help="What the token may do: jobs:read, jobs:write (both by default), admin (read every "
            "application's jobs). Repeat for several.",
        )
        parser.add_argument("--quiet", action="store_true", help="Print only the token.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            token, record = services.token_issue(app_name=options["name"], scopes=options["scopes"])
        except InvalidInput as exc:
            raise CommandError("; ".join(m for ms in exc.errors.values() for m in ms)) from exc
        if options["quiet"]:
            self.stdout.write(token)
            return
        self.stdout.write(
            f"Token for application '{record.app_name}' (id {record.id}), scopes {' '.join(record.scopes)}:"
        )
        self.stdout.write("")
        self.stdout.write(f"    {token}")
        self.stdout.write("")
        self.stdout.write("It is shown only now; store it safely. Use it as:  Authorization: Token <token>")
