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
        # A command run against a database that was never migrated (often another terminal
        # without the DATABASE_URL scripts/start was given): say so, not a traceback.
        from psycopg2 import errors

        if not isinstance(exc.__cause__, errors.UndefinedTable):
            raise
        from django.db import connection

        unset = "" if os.environ.get("DATABASE_URL") else " (DATABASE_URL is not set: that is the embedded PostgreSQL)"
        sys.exit(
            f"{' '.join(sys.argv[1:2]) or 'manage.py'}: the database {connection.settings_dict['NAME']!r}{unset} "
            f"has no platform tables ({exc.__cause__.diag.message_primary}). Run `python manage.py migrate` "
            "first, or set DATABASE_URL to the database the platform uses."
        )


if __name__ == "__main__":
    main()
