"""Indexes for /metrics (raw SQL beside this file; no reverse)."""

from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).parent / "sql" / "0008_metrics_indexes.sql").read_text()


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [("jobs", "0007_monitor_indexes")]

    operations = [migrations.RunSQL(statement.strip() + ";") for statement in SQL.split(";") if statement.strip(" \n")]
