"""``create_demo_source``: a table of fake customers for ``migrate_rows`` to read in the
README's walkthrough and in the tests, in a database of its own beside the platform's
(``jobplatform_demo`` beside the embedded ``jobplatform``), readable by a role that may
read nothing else; ``scripts/start`` configures that database and role as the source
``demo`` (``--print-source-url``). Never the platform's own database: see
``jobs.services.demo_source``."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs.exceptions import InvalidInput
from jobs.services import demo_source


class Command(BaseCommand):
    help = (
        "Create a demo table of fake customers (id, email, full_name, region, balance, active, signed_up_at) "
        "for migrate_rows to read, in a database of its own beside the platform's (<its name>_demo), readable "
        "only by the role <that>_reader."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rows", type=int, default=100_000, help="How many rows (default 100000).")
        parser.add_argument("--table", default="demo_customers", help="Its name (default demo_customers).")
        parser.add_argument("--replace", action="store_true", help="Drop a table of that name first.")
        parser.add_argument(
            "--print-source-url",
            action="store_true",
            help="Make only the demo database and its reader role (no table) and print the source's URL for "
            "JOBS_SOURCES (scripts/start does this).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["print_source_url"]:
            self.stdout.write(demo_source.demo_source_url())
            return
        rows, name = options["rows"], options["table"]
        try:
            source = demo_source.demo_table_create(table=name, rows=rows, replace=options["replace"])
        except InvalidInput as exc:
            raise CommandError("; ".join(m for ms in exc.errors.values() for m in ms)) from exc
        self.stdout.write(
            f"table {name}: {rows} rows (key: id, 1 to {rows}) in the database {source.database}, "
            f"readable by the role {source.role} (the source demo of scripts/start)"
        )
