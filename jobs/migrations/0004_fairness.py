"""Per-application caps on unfinished and running jobs (raw SQL beside this file; no reverse)."""

from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).parent / "sql" / "0004_fairness.sql").read_text()
INDEX = (Path(__file__).parent / "sql" / "0004_fairness_index.sql").read_text()


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [("jobs", "0003_job_queue")]

    operations = [migrations.RunSQL(SQL), migrations.RunSQL(INDEX)]
