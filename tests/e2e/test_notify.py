"""Pickup by LISTEN/NOTIFY on a real gunicorn and qcluster: lost notifications and a dropped
listening connection only ever fall back to the poll; no job waits forever.

No test here measures speed (benchmarks/pickup.py does). To tell "woken by a notification"
from "found by the poll", one cluster polls once a minute and a job must merely finish
within half of that, twice in a row (a poll-only cluster cannot do the second one).
"""

from __future__ import annotations

import time

import psutil
import pytest

from jobs.runtime.broker import APPLICATION_NAME

from .harness import Platform, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

SLOW_POLL = "60"


@pytest.fixture
def api(platform):
    yield platform.client(platform.token(f"notify-{time.monotonic_ns()}"))
    platform.stop_clusters()


def listeners(platform: Platform) -> list[dict]:
    """The listening connections of this platform's clusters: backend pid and the OS pid of
    the process that opened it (from its application_name)."""
    rows = platform.sql(
        "SELECT pid, application_name FROM pg_stat_activity "
        "WHERE datname = current_database() AND application_name LIKE %s",
        [f"{APPLICATION_NAME} %"],
    )
    return [{"backend": r["pid"], "process": int(r["application_name"].rsplit(" ", 1)[1])} for r in rows]


def run_job(platform: Platform, api, *, within: float) -> dict:
    job = platform.create_job(api, {"type": "fibonacci", "params": {"n": 10}})
    done = platform.wait_status(job["id"], ("succeeded", "failed", "cancelled"), timeout=within)
    assert done["status"] == "succeeded"
    return done


def run_two_in_a_row_without_the_poll(platform: Platform, api) -> None:
    """Each job finishes within half of the one-minute poll: after the first is fetched the
    pusher finds the queue empty and would sleep a whole minute, so only a notification can
    bring the second one in time."""
    for _ in range(2):
        run_job(platform, api, within=float(SLOW_POLL) / 2)


def test_jobs_run_when_notifications_are_lost(platform, api):
    platform.sql("ALTER TABLE django_q_ormq DISABLE TRIGGER django_q_ormq_notify")
    try:
        platform.start_cluster()
        wait_for(lambda: listeners(platform), timeout=60, what="the cluster listening")
        for _ in range(3):
            run_job(platform, api, within=30)
    finally:
        platform.sql("ALTER TABLE django_q_ormq ENABLE TRIGGER django_q_ormq_notify")


def test_jobs_run_after_the_listener_is_dropped_and_pickup_is_fast_again(platform, api):
    cluster = platform.start_cluster(Q_POLL=SLOW_POLL)
    [first] = wait_for(lambda: listeners(platform), timeout=60, what="the cluster listening")
    # Opened after fork, in a process of the cluster other than the one started (the pusher).
    cluster_processes = {p.pid for p in psutil.Process(cluster.pid).children(recursive=True)}
    assert first["process"] in cluster_processes and first["process"] != cluster.pid
    run_two_in_a_row_without_the_poll(platform, api)

    platform.sql("SELECT pg_terminate_backend(%s)", [first["backend"]])
    # Whether the pusher has listened again yet or not, the job runs (at worst after a poll).
    run_job(platform, api, within=float(SLOW_POLL) + 30)
    # Listening again does not wait for the poll either.
    [second] = wait_for(
        lambda: [row for row in listeners(platform) if row["backend"] != first["backend"]],
        timeout=float(SLOW_POLL) / 2,
        what="a new listening connection",
    )
    assert second["process"] == first["process"], "the same pusher listens again; nothing crashed"
    assert cluster.poll() is None
    run_two_in_a_row_without_the_poll(platform, api)
