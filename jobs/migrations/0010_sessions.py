"""Server-side browser sessions (raw SQL beside this file; no reverse)."""

from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).parent / "sql" / "0010_sessions.sql").read_text()


class Migration(migrations.Migration):
    dependencies = [("jobs", "0009_ormq_notify")]

    operations = [migrations.RunSQL(SQL)]
