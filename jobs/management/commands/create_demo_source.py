"""``create_demo_source``: a table of fake customers in the platform's own database, for
``migrate_rows`` to read in the README's walkthrough (``scripts/start`` configures that
database as the source ``demo``) and in the tests. Made in one ``INSERT … SELECT
generate_series``: 100,000 rows take about a second.

The SQL is here, not in ``jobs/sql/``: like a migration's, it builds a table (a demo's,
not the platform's), and its name is the command's argument, quoted as an identifier; it
runs through ``jobs.db.fetch_all_on`` on a connection of its own."""

from __future__ import annotations

from typing import Any

import psycopg2
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from psycopg2 import sql

from jobs import db

TABLE = sql.SQL(
    """
CREATE TABLE {table} (
    id bigint PRIMARY KEY,
    email text NOT NULL,
    full_name text NOT NULL,
    region text NOT NULL,
    balance numeric(12, 2) NOT NULL,
    active boolean NOT NULL,
    signed_up_at timestamptz NOT NULL
)"""
)
ROWS = sql.SQL(
    """
INSERT INTO {table}
SELECT n,
       'Customer.' || n || '@Example.COM',
       'Customer ' || n,
       (ARRAY['eu', 'us', 'apac', 'latam'])[n %% 4 + 1],
       (n * 7919 %% 1000000) / 100.0,
       n %% 10 <> 0,
       timestamptz '2019-01-01 00:00:00+00' + n * interval '1 minute'
FROM generate_series(1, %(rows)s) AS n"""  # %% is a literal %: the statement has a parameter
)


class Command(BaseCommand):
    help = (
        "Create a demo table of fake customers (id, email, full_name, region, balance, active, signed_up_at) "
        "in the platform's own database, for migrate_rows to read."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--rows", type=int, default=100_000, help="How many rows (default 100000).")
        parser.add_argument("--table", default="demo_customers", help="Its name (default demo_customers).")
        parser.add_argument("--replace", action="store_true", help="Drop a table of that name first.")

    def handle(self, *args: Any, **options: Any) -> None:
        rows, name = options["rows"], options["table"]
        if not 1 <= rows <= 100_000_000:
            raise CommandError("--rows must be between 1 and 100000000")
        if name.startswith(("jobs_", "django_")) or not name or len(name) > 63:
            raise CommandError("--table needs 1 to 63 characters and may not start with jobs_ or django_")
        table = sql.Identifier(name)
        # A connection of its own to the platform's database (what Django's settings name),
        # committed once the table is full.
        raw = psycopg2.connect(**connection.get_connection_params())
        try:
            quoted = {"name": table.as_string(raw)}
            [(exists,)] = db.fetch_all_on(raw, "SELECT to_regclass(%(name)s) IS NOT NULL", quoted)
            if exists and not options["replace"]:
                raise CommandError(f"table {name} exists; --replace drops it first")
            if exists:
                db.fetch_all_on(raw, sql.SQL("DROP TABLE {table}").format(table=table))
            db.fetch_all_on(raw, TABLE.format(table=table))
            db.fetch_all_on(raw, ROWS.format(table=table), {"rows": rows})
            raw.commit()
            raw.autocommit = True
            db.fetch_all_on(raw, sql.SQL("ANALYZE {table}").format(table=table))
        finally:
            raw.close()
        self.stdout.write(f"table {name}: {rows} rows (key: id, 1 to {rows})")
