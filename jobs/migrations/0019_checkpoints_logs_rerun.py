"""Checkpoints and re-runs on the job row, the append-only job log, and the history's
two new kinds, ``checkpoint`` and ``rerun`` (raw SQL beside this file; no reverse)."""

from pathlib import Path

from django.db import migrations

from jobs.domain import event_kind_check

SQL = (Path(__file__).parent / "sql" / "0019_checkpoints_logs_rerun.sql").read_text()

#: Every kind as of this migration (0013's and the two new ones).
KINDS = (
    "created",
    "scheduled",
    "queued",
    "started",
    "progress",
    "checkpoint",
    "retried",
    "rescued",
    "redelivered",
    "cancel_requested",
    "succeeded",
    "failed",
    "cancelled",
    "callback",
    "rerun",
)


class Migration(migrations.Migration):
    dependencies = [("jobs", "0018_batches")]

    operations = [migrations.RunSQL(SQL), migrations.RunSQL(event_kind_check(KINDS))]
