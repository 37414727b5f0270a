"""Schedules, their history, and the jobs they create (raw SQL beside this file; no
reverse: schedules are never deleted)."""

from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).parent / "sql" / "0017_schedules.sql").read_text()
INDEX = (Path(__file__).parent / "sql" / "0017_schedules_index.sql").read_text()


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [("jobs", "0013_event_kinds")]

    operations = [migrations.RunSQL(SQL), migrations.RunSQL(INDEX)]
