#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "jobplatform.settings.dev")
    from django.core.management import execute_from_command_line
    from django.db import ProgrammingError

    try:
        execute_from_command_line(sys.argv)
    except ProgrammingError as exc:
        message = _unmigrated(exc)
        if message is None:
            raise
        sys.exit(message)


def _unmigrated(exc: Exception) -> str | None:
    """What to say instead of a traceback when a command met a missing table because the
    database has migrations to apply (often another terminal without the DATABASE_URL
    scripts/start was given); None for anything else (``migrate`` itself, ``--traceback``,
    a migrated database: a missing table there is a bug to see in full)."""
    from psycopg2 import errors

    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if not isinstance(exc.__cause__, errors.UndefinedTable) or command == "migrate" or "--traceback" in sys.argv:
        return None
    try:
        from django.db import connection
        from django.db.migrations.executor import MigrationExecutor

        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except Exception:
        return None
    if not plan:
        return None
    unset = "" if os.environ.get("DATABASE_URL") else " (DATABASE_URL is not set: that is the embedded PostgreSQL)"
    return (
        f"{command}: the database {connection.settings_dict['NAME']!r}{unset} has {len(plan)} migrations to apply "
        f"({exc.__cause__.diag.message_primary}). Run `python manage.py migrate` first, or set DATABASE_URL to "
        "the database the platform uses."
    )


if __name__ == "__main__":
    main()
