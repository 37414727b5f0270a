from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs import services
from jobs.exceptions import InvalidInput, TokenAlreadyRevoked, TokenNotFound


class Command(BaseCommand):
    help = "Revoke an application token by its id or prefix (see list_tokens). It is refused from the next request."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("token", help="Token id or prefix.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            token = services.token_revoke(ref=options["token"])
        except (TokenNotFound, TokenAlreadyRevoked) as exc:
            raise CommandError(str(exc)) from exc
        except InvalidInput as exc:
            raise CommandError("; ".join(m for ms in exc.errors.values() for m in ms)) from exc
        self.stdout.write(f"Revoked token {token.id} ({token.prefix}…) of application '{token.app_name}'.")
