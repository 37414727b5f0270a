"""Completion callbacks: the URL, the per-application secret, the outbox (raw SQL beside
this file; no reverse)."""

from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).parent / "sql" / "0005_callbacks.sql").read_text()


class Migration(migrations.Migration):
    dependencies = [("jobs", "0004_fairness")]

    operations = [migrations.RunSQL(SQL)]
