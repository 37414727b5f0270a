"""Schedules, their history, and the jobs they create (raw SQL beside this file; no
reverse: schedules are never deleted)."""

from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).parent / "sql" / "0017_schedules.sql").read_text()


class Migration(migrations.Migration):
    # One transaction: all of it or none. The unique index on the jobs a schedule creates
    # is built (CONCURRENTLY) and the jobs table's new constraints checked by 0020.
    dependencies = [("jobs", "0013_event_kinds")]

    operations = [migrations.RunSQL(SQL)]
