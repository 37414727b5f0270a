"""The shared cache django-q2 reports through, /ready, and jobs_top against the real database.

Clusters here are status records saved by django-q2's own ``Stat.save()`` from a
stand-in sentinel, inside the test's transaction; real clusters are in tests/e2e.
"""

from __future__ import annotations

import io
import re
import socket
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from django.conf import settings
from django.core.cache import caches
from django.core.cache.backends.db import DatabaseCache
from django.core.management import call_command
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.status import Stat
from rest_framework.test import APIClient

from jobs import db, monitoring, services
from jobs.migrations import __path__ as migrations_path

MIGRATION_SQL = f"{migrations_path[0]}/sql/0006_cache_table.sql"


ROOT_MIGRATIONS = Path(__file__).resolve().parents[2] / "jobs" / "migrations"


def report_cluster(status: str = Conf.IDLE, workers: tuple[int, ...] = (101, 102)) -> uuid.UUID:
    """Save a cluster status the way a django-q2 sentinel does (Stat(sentinel).save())."""
    sentinel = SimpleNamespace(
        parent_pid=100,
        pid=99,
        cluster_id=uuid.uuid4(),
        broker=get_broker(),
        tob=timezone.now(),
        reincarnations=0,
        status=lambda: status,
        monitor=SimpleNamespace(pid=103),
        pusher=SimpleNamespace(pid=104),
        pool=[SimpleNamespace(pid=pid) for pid in workers],
        result_queue=SimpleNamespace(qsize=lambda: 0),
        task_queue=SimpleNamespace(qsize=lambda: 0),
    )
    Stat(sentinel).save()
    return sentinel.cluster_id


def _statements(sql: str) -> list[str]:
    text = "\n".join(line for line in sql.splitlines() if not line.startswith("--"))
    return [" ".join(part.split()) for part in text.split(";") if part.strip()]


# -- the shared cache -------------------------------------------------------------------


def test_cache_table_is_exactly_what_createcachetable_makes(db):
    out = io.StringIO()
    call_command("createcachetable", "probe_cache_table", dry_run=True, stdout=out)
    expected = _statements(out.getvalue().replace("probe_cache_table", "django_cache"))
    with open(MIGRATION_SQL) as migration:
        assert _statements(migration.read()) == expected
    # And the configured cache's table is there already (made by the migration).
    out = io.StringIO()
    call_command("createcachetable", dry_run=True, stdout=out)
    assert "CREATE TABLE" not in out.getvalue()


def test_django_q_reports_through_the_database_cache(raw):
    assert settings.Q_CLUSTER["cache"] == "shared"
    cache = caches["shared"]
    assert isinstance(cache, DatabaseCache)
    cluster_id = report_cluster()
    raw.execute("SELECT cache_key FROM django_cache")
    keys = [row[0] for row in raw.fetchall()]
    assert any(key.endswith(f":cluster:{cluster_id}") for key in keys), keys
    [cluster] = monitoring.cluster_reports().clusters
    assert cluster.id == cluster_id and cluster.workers == (101, 102) and cluster.host == socket.gethostname()
    assert cluster.pid == 100 and cluster.serving


# -- /ready -----------------------------------------------------------------------------


def ready() -> tuple[int, dict, Any]:
    response = APIClient().get("/ready")
    return response.status_code, response.json(), response


def test_ready_when_database_migrations_and_a_cluster_are_there(db):
    report_cluster()
    status, body, _ = ready()
    assert status == 200, body
    assert body == {"status": "ready", "checks": {"database": "ok", "migrations": "ok", "cluster": "ok"}}


def test_not_ready_without_a_cluster(db):
    status, body, response = ready()
    assert status == 503
    assert response["Content-Type"] == "application/problem+json"
    assert response["Retry-After"] == "5"
    assert body["type"] == "urn:jobplatform:problem:not-ready" and body["instance"] == "/ready"
    assert body["checks"] == {"database": "ok", "migrations": "ok", "cluster": "none seen"}
    assert "cluster none seen" in body["detail"]


def test_not_ready_when_the_only_cluster_is_stopping(db):
    report_cluster(status=Conf.STOPPING)
    status, body, _ = ready()
    assert status == 503
    assert body["checks"]["cluster"] == f"none serving: {socket.gethostname()} stopping"


def test_not_ready_while_a_migration_is_pending(raw):
    report_cluster()
    # As if the latest migration had not run yet (rolled back with the test).
    latest = max(p.stem for p in (ROOT_MIGRATIONS).glob("0*.py"))  # the newest: nothing applied after it
    raw.execute("DELETE FROM django_migrations WHERE app = 'jobs' AND name = %s", [latest])
    status, body, response = ready()
    assert status == 503 and response["Retry-After"]
    assert body["checks"] == {"database": "ok", "migrations": f"pending: jobs.{latest}", "cluster": "ok"}


def test_ready_needs_no_token_and_is_linked_from_the_root(db):
    assert APIClient().get("/").json()["ready"].endswith("/ready")


# -- jobs_top ---------------------------------------------------------------------------


def run_top(*args: str) -> str:
    out = io.StringIO()
    call_command("jobs_top", "--once", *args, stdout=out)
    return out.getvalue()


class Boom(Exception):
    pass


def test_jobs_top_once_shows_every_part_of_the_operators_view(app, raw):
    cluster_id = report_cluster(workers=(201, 202, 203))
    running = services.job_claim(
        job_id=services.job_create(app=app, type="countdown", params={"seconds": 60}, metadata={})[0].id,
        worker="host-a:42",
    )
    services.job_progress(job=running, percent=50.0, message="30 seconds left", milestone=True)
    succeeded = services.job_claim(
        job_id=services.job_create(app=app, type="fibonacci", params={"n": 5}, metadata={})[0].id, worker="w"
    )
    services.job_succeed(job=succeeded, result={"value": "5"})
    failing, _ = services.job_create(app=app, type="pi", params={"digits": 5}, metadata={}, max_attempts=1)
    failed = services.job_claim(job_id=failing.id, worker="w")
    services.job_fail(job=failed, error=Boom("the disk\nis full"), retryable=True)
    queued, _ = services.job_create(app=app, type="pi", params={"digits": 5}, metadata={})

    screen = run_top()

    # Clusters and their workers, as django-q2 reported them.
    assert "clusters (django-q2): 1, workers: 3" in screen
    assert re.search(rf"{socket.gethostname()}\s+{cluster_id}\s+Idle\s+3\s", screen), screen
    # Counts per status and type.
    assert re.search(r"countdown\s+0\s+0\s+1\s+0\s+0\s+0", screen), screen
    assert re.search(r"pi\s+0\s+1\s+0\s+0\s+1\s+0", screen), screen
    # Throughput: what finished in the last minute, checked against the table itself.
    raw.execute(
        "SELECT count(*) FILTER (WHERE status = 'succeeded'), count(*) FILTER (WHERE status = 'failed') "
        "FROM jobs_job WHERE finished_at >= now() - interval '60 seconds'"
    )
    ok, bad = raw.fetchone()
    assert ok >= 1 and bad >= 1
    assert f"finished in the last 60 s: {ok + bad} ({ok} succeeded, {bad} failed, 0 cancelled)" in screen
    # The oldest queued job's wait, the running job's progress bar, the failure's error.
    assert re.search(r"oldest queued job waiting: \d+\.\ds", screen), screen
    running_line = next(line for line in screen.splitlines() if str(running.id) in line and "try 1/3" in line)
    assert "[##########----------]  50.0%" in running_line and "host-a:42" in running_line
    assert "30 seconds left" in running_line
    failure_line = next(line for line in screen.splitlines() if str(failed.id) in line and "Boom" in line)
    assert "Boom: the disk is full" in failure_line
    assert str(queued.id) in screen  # latest jobs


def test_jobs_top_once_without_clusters_or_jobs(db):
    screen = run_top("--latest", "0")
    assert "clusters (django-q2): 0, workers: 0" in screen
    assert "running jobs: 0" in screen and "latest jobs:" in screen


@pytest.mark.parametrize(
    ("query", "params", "index"),
    [
        ("monitor_finished_recently", {"seconds": 60}, "jobs_job_finished"),
        ("monitor_running", {"limit": 20}, "jobs_job_app_active|jobs_job_active"),
        ("monitor_recent_failures", {"limit": 5}, "jobs_job_failed"),
    ],
)
def test_monitor_queries_read_through_an_index(raw, query, params, index):
    """With sequential scans priced out, each query's plan reads jobs_job through its index
    (a query no index can serve still shows a Seq Scan, only at a prohibitive cost)."""
    raw.execute("SET LOCAL enable_seqscan = off")
    raw.execute("EXPLAIN " + db.queries[query], params)
    plan = "\n".join(row[0] for row in raw.fetchall())
    assert any(name in plan for name in index.split("|")), plan
    assert "Seq Scan on jobs_job" not in plan, plan
    if query == "monitor_recent_failures":
        assert "Sort" not in plan, plan  # the index's order serves ORDER BY … LIMIT: no sort of every failure
