"""Token scopes and the rate-limit counters (raw SQL beside this file; no reverse)."""

from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).parent / "sql" / "0012_scopes_rate_limits.sql").read_text()


class Migration(migrations.Migration):
    dependencies = [("jobs", "0011_dashboard_created_index")]

    operations = [migrations.RunSQL(SQL)]
