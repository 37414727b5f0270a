"""The slow part of 0017 to 0019, done without blocking the platform: the jobs table's new
indexes built CONCURRENTLY, and the constraints those migrations (and 0013) added NOT
VALID checked against the existing rows (VALIDATE takes a lock that lets jobs be written
meanwhile). Not atomic: CONCURRENTLY cannot run in a transaction.

Every statement can run again: a run that failed half-way is simply run again, and an
index a failed CONCURRENTLY build left INVALID (unusable, and kept by IF NOT EXISTS) is
dropped and built anew. Each statement is its own operation (Django's statement splitter
would join a DO block to the statement after it)."""

from django.db import migrations


def rebuild_if_invalid(index: str) -> str:
    return f"""DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
               WHERE c.relname = '{index}' AND NOT i.indisvalid) THEN
        DROP INDEX {index};
    END IF;
END
$$"""


STATEMENTS = (
    rebuild_if_invalid("jobs_job_schedule_fire"),
    # Exactly one job per (schedule, fire time), whatever the number of clusters, their
    # crashes or their clocks: the database refuses a second one. Partial: only the jobs
    # a schedule created are in it.
    "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS jobs_job_schedule_fire "
    "ON jobs_job (schedule_id, fire_time) WHERE schedule_id IS NOT NULL",
    rebuild_if_invalid("jobs_job_batch"),
    # GET /jobs?batch= and a batch's counts walk a batch's jobs newest first; jobs outside a
    # batch stay out of the index.
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS jobs_job_batch ON jobs_job (batch_id, created_at DESC, id DESC) "
    "WHERE batch_id IS NOT NULL",
    "ALTER TABLE jobs_event VALIDATE CONSTRAINT jobs_event_kind_known",
    "ALTER TABLE jobs_job VALIDATE CONSTRAINT jobs_job_schedule_fk",
    "ALTER TABLE jobs_job VALIDATE CONSTRAINT jobs_job_schedule_fire_time",
    "ALTER TABLE jobs_job VALIDATE CONSTRAINT jobs_job_batch_fk",
    "ALTER TABLE jobs_job VALIDATE CONSTRAINT jobs_job_rerun_of_fk",
    "ALTER TABLE jobs_job VALIDATE CONSTRAINT jobs_job_log_lines_check",
    "ALTER TABLE jobs_job VALIDATE CONSTRAINT jobs_job_log_dropped_check",
    "ALTER TABLE jobs_callback VALIDATE CONSTRAINT jobs_callback_batch_fk",
    "ALTER TABLE jobs_callback VALIDATE CONSTRAINT jobs_callback_one_subject",
)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [("jobs", "0019_checkpoints_logs_rerun")]

    operations = [migrations.RunSQL([statement]) for statement in STATEMENTS]
