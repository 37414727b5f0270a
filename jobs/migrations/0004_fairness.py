"""Per-application caps on unfinished and running jobs (raw SQL beside this file; no reverse)."""

from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).parent / "sql" / "0004_fairness.sql").read_text()


class Migration(migrations.Migration):
    dependencies = [("jobs", "0003_job_queue")]

    operations = [migrations.RunSQL(SQL)]
