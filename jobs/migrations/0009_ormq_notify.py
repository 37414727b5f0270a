"""NOTIFY on every insert into django-q2's broker table (raw SQL beside this file).

Unlike the tables, this can be undone: dropping the trigger loses no data, clusters
then find new envelopes by polling alone.
"""

from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).parent / "sql" / "0009_ormq_notify.sql").read_text()

REVERSE_SQL = """
DROP TRIGGER django_q_ormq_notify ON django_q_ormq;
DROP FUNCTION jobs_ormq_notify();
DROP FUNCTION jobs_ormq_channel(text);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("jobs", "0008_metrics_indexes"),
        # django_q_ormq must exist before a trigger can be put on it.
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunSQL(SQL, reverse_sql=REVERSE_SQL)]
