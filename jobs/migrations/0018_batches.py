"""Batches: their table and history, a job's batch, batch callbacks in the outbox (raw SQL
beside this file; no reverse)."""

from pathlib import Path

from django.db import migrations

SQL_DIR = Path(__file__).parent / "sql"
SQL = (SQL_DIR / "0018_batches.sql").read_text()
VALIDATE = (SQL_DIR / "0018_batches_validate.sql").read_text()
# GET /jobs?batch= and a batch's counts walk a batch's jobs newest first; jobs outside a
# batch stay out of the index. CONCURRENTLY: creating jobs is not blocked meanwhile.
JOB_INDEX = (
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS jobs_job_batch ON jobs_job (batch_id, created_at DESC, id DESC) "
    "WHERE batch_id IS NOT NULL;"
)
# At most one callback per batch, enforced by the database itself.
CALLBACK_INDEX = (
    "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS jobs_callback_batch_once ON jobs_callback (batch_id) "
    "WHERE batch_id IS NOT NULL;"
)


class Migration(migrations.Migration):
    # CREATE INDEX CONCURRENTLY cannot run inside a transaction.
    atomic = False

    dependencies = [("jobs", "0017_schedules")]

    operations = [
        migrations.RunSQL(SQL),
        migrations.RunSQL(VALIDATE),
        migrations.RunSQL(JOB_INDEX),
        migrations.RunSQL(CALLBACK_INDEX),
    ]
