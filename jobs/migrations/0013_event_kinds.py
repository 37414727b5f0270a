"""Every history entry's kind is one the platform knows (jobs.domain.EventKind).

The kinds are written out as they were when this migration was made: a later kind comes
with its own migration (``event_kind_check`` with the new list), and a test fails while
the database's list and the enum differ."""

from django.db import migrations

from jobs.domain import event_kind_check

KINDS = (
    "created",
    "scheduled",
    "queued",
    "started",
    "progress",
    "retried",
    "rescued",
    "redelivered",
    "cancel_requested",
    "succeeded",
    "failed",
    "cancelled",
    "callback",
)


class Migration(migrations.Migration):
    dependencies = [("jobs", "0012_scopes_rate_limits")]

    operations = [migrations.RunSQL(event_kind_check(KINDS))]
