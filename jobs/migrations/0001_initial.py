"""Project tables, indexes and guard triggers, created by raw SQL (no ORM models).

The SQL sits beside this file, frozen with the migration. It has no reverse: undoing
it would delete jobs, and jobs are never deleted.
"""

from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).parent / "sql" / "0001_initial.sql").read_text()


class Migration(migrations.Migration):
    initial = True
    dependencies: list = []

    operations = [migrations.RunSQL(SQL)]
