"""Batches: their table and history, a job's batch, batch callbacks in the outbox (raw SQL
beside this file; no reverse)."""

from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).parent / "sql" / "0018_batches.sql").read_text()


class Migration(migrations.Migration):
    # One transaction: all of it or none, the outbox's one-callback-per-batch index
    # included (every terminal transition's statement names it, so it must exist whenever
    # the batch columns do). The jobs table's index and constraint checks are in 0020.
    dependencies = [("jobs", "0017_schedules")]

    operations = [migrations.RunSQL(SQL)]
