"""Indexes for the operator's view (raw SQL beside this file), built without blocking writes."""

from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).parent / "sql" / "0007_monitor_indexes.sql").read_text()
# CREATE INDEX CONCURRENTLY refuses to run inside a transaction block, and a string of
# several statements runs as one implicit transaction: hand Django one statement each.
STATEMENTS = [
    statement.strip()
    for statement in "\n".join(line for line in SQL.splitlines() if not line.startswith("--")).split(";")
    if statement.strip()
]


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("jobs", "0006_cache_table")]

    operations = [
        migrations.RunSQL(
            STATEMENTS,
            reverse_sql=[
                "DROP INDEX CONCURRENTLY IF EXISTS jobs_job_finished",
                "DROP INDEX CONCURRENTLY IF EXISTS jobs_job_failed",
            ],
        )
    ]
