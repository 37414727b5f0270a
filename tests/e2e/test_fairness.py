"""One application's backlog does not hold every worker: B's job starts while A's wait."""

from __future__ import annotations

import pytest

from .harness import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def test_b_starts_while_a_has_more_long_jobs_waiting_than_there_are_workers(platform):
    a = platform.client(platform.token("fair-a"))
    b = platform.client(platform.token("fair-b"))
    platform.manage("set_app_limits", "fair-a", "--max-running", "1")
    workers = int(platform.env["Q_WORKERS"])
    a_jobs = [
        platform.create_job(a, {"type": "test_sleep", "params": {"seconds": 2}})["id"] for _ in range(workers + 3)
    ]
    platform.start_cluster()
    try:
        wait_for(  # any one of A's jobs: which one starts first is the cluster's choice
            lambda: platform.sql(
                "SELECT count(*) AS n FROM jobs_job WHERE id = ANY(%s::uuid[]) AND status = 'running'", [a_jobs]
            )[0]["n"],
            timeout=30,
            what="one of A's jobs running",
        )
        b_job = platform.create_job(b, {"type": "test_short", "params": {"index": 1}})
        done = platform.wait_status(b_job["id"], ("succeeded", "failed"), timeout=30)
        assert done["status"] == "succeeded"
        waiting = platform.sql(
            "SELECT count(*) AS n FROM jobs_job WHERE id = ANY(%s::uuid[]) AND (started_at IS NULL OR started_at > %s)",
            [a_jobs, done["started_at"]],
        )[0]["n"]
        timeline = platform.sql(
            "SELECT a.name, j.started_at, j.finished_at, j.attempts FROM jobs_job j JOIN jobs_app a ON a.id = j.app_id"
            " ORDER BY j.started_at NULLS LAST"
        )
        assert waiting > workers, timeline  # A still had more jobs waiting than there are workers
        running_at_once = platform.sql(
            "SELECT count(*) AS n FROM jobs_job a JOIN jobs_job b ON a.id < b.id"
            " WHERE a.id = ANY(%s::uuid[]) AND b.id = ANY(%s::uuid[])"
            " AND a.started_at < b.finished_at AND b.started_at < a.finished_at",
            [a_jobs, a_jobs],
        )[0]["n"]
        assert running_at_once == 0  # never two of A's jobs at the same time
        for job_id in a_jobs:  # held back, never lost
            assert platform.wait_status(job_id, ("succeeded", "failed"), timeout=120)["status"] == "succeeded"
    finally:
        platform.stop_clusters()
