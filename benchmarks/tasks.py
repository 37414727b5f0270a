"""The stock django-q2 baseline task: one durable INSERT, nothing else.

Queued with ``django_q.tasks.async_task`` and run by a cluster of stock django-q2 (the
``benchmarks.baseline_settings``: no ``jobs`` app, same ``Q_CLUSTER``). The table is the
benchmark's own, created in its scratch database only.
"""

from __future__ import annotations

from django.db import connection

TABLE_SQL = "CREATE TABLE bench_baseline_write (id bigserial PRIMARY KEY, n integer NOT NULL, at timestamptz NOT NULL)"


def insert_one(n: int) -> None:
    # Autocommit: the INSERT is committed (durably, synchronous_commit on) on return.
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO bench_baseline_write (n, at) VALUES (%s, clock_timestamp())", [n])
