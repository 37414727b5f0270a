"""An index for the dashboard's all-applications job list (raw SQL beside this file)."""

from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).parent / "sql" / "0011_dashboard_created_index.sql").read_text()


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [("jobs", "0010_sessions")]

    operations = [migrations.RunSQL(SQL, reverse_sql="DROP INDEX CONCURRENTLY IF EXISTS jobs_job_created;")]
