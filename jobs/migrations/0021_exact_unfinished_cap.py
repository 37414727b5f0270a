"""JOBS_MAX_UNFINISHED_PER_APP held exactly when creates race: the function job_create and
batch_create call (raw SQL beside this file). Undone by dropping it: the code of 0020's
release does not call it."""

from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).parent / "sql" / "0021_exact_unfinished_cap.sql").read_text()

REVERSE_SQL = "DROP FUNCTION jobs_app_unfinished_room(uuid, integer, integer);"


class Migration(migrations.Migration):
    dependencies = [("jobs", "0020_indexes_and_checks")]

    operations = [migrations.RunSQL(SQL, reverse_sql=REVERSE_SQL)]
