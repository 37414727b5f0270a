"""The shared cache django-q2 keeps its cluster status in (raw SQL beside this file).

Its reverse drops the table: it only ever holds short-lived cache entries.
"""

from pathlib import Path

from django.db import migrations

SQL = (Path(__file__).parent / "sql" / "0006_cache_table.sql").read_text()


class Migration(migrations.Migration):
    dependencies = [("jobs", "0005_callbacks")]

    operations = [migrations.RunSQL(SQL, reverse_sql='DROP TABLE "django_cache";')]
