"""When a maintenance pass first failed on a schedule's next fire time (``failed_at``):
the pass that tries it again replays the failed one at that instant, so a fire time that
was on time then fires however late the retry comes, and one already late then follows
``catch_up`` as it would have. Adding a nullable column rewrites nothing and takes only a
brief lock; undone by dropping it."""

from django.db import migrations

#: Schedules failing while this runs: the release before fired the fire time a failed pass
#: left however late the retry; a replay at that fire time does the same.
BACKFILL = "UPDATE jobs_schedule SET failed_at = next_fire_at WHERE failing_until IS NOT NULL AND state = 'active';"


class Migration(migrations.Migration):
    dependencies = [("jobs", "0021_exact_unfinished_cap")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE jobs_schedule ADD COLUMN failed_at timestamptz;",
            reverse_sql="ALTER TABLE jobs_schedule DROP COLUMN failed_at;",
        ),
        migrations.RunSQL(BACKFILL, reverse_sql=migrations.RunSQL.noop),
    ]
