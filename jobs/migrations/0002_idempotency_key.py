"""Idempotency keys for job creation (raw SQL beside this file; no reverse)."""

from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).parent / "sql" / "0002_idempotency_key.sql").read_text()


class Migration(migrations.Migration):
    dependencies = [("jobs", "0001_initial")]

    operations = [migrations.RunSQL(SQL)]
