"""No job is lost: real processes, real kill -9, real database state at the end."""

from __future__ import annotations

import os
import signal
import time

import psycopg2
import pytest

from .harness import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture
def api(platform):
    yield platform.client(platform.token(f"crash-{time.monotonic_ns()}"))
    platform.stop_clusters()


def worker_pid(row) -> int:
    return int(row["worker"].rsplit(":", 1)[1])


def test_kill9_worker_mid_job_runs_it_again(platform, api):
    platform.start_cluster()
    job = platform.create_job(api, {"type": "countdown", "params": {"seconds": 3}})
    running = platform.wait_status(job["id"], ("running",), timeout=30)
    os.kill(worker_pid(running), signal.SIGKILL)
    done = platform.wait_status(job["id"], ("succeeded", "failed"), timeout=60)
    assert done["status"] == "succeeded" and done["attempts"] == 2
    kinds = [(e["kind"], e["attempt"]) for e in platform.events(job["id"])]
    assert ("started", 1) in kinds and ("rescued", 1) in kinds and ("started", 2) in kinds
    assert kinds[-1] == ("succeeded", 2)


def test_a_healthy_job_without_progress_outlives_many_leases_on_heartbeats_alone(platform, api):
    """test_sleep never reports progress: only the heartbeat keeps its lease (4 s here) alive."""
    lease = float(platform.env["JOBS_LEASE_SECONDS"])
    platform.start_cluster()
    job = platform.create_job(api, {"type": "test_sleep", "params": {"seconds": 3 * lease}})
    done = platform.wait_status(job["id"], ("succeeded", "failed"), timeout=90)
    assert done["status"] == "succeeded" and done["attempts"] == 1, done
    assert (done["finished_at"] - done["started_at"]).total_seconds() >= 3 * lease
    assert [e["kind"] for e in platform.events(job["id"])] == ["created", "queued", "started", "succeeded"]


def test_300_jobs_survive_two_whole_cluster_kills(platform, api):
    ids = [platform.create_job(api, {"type": "test_short", "params": {"index": i}})["id"] for i in range(300)]

    def finished() -> int:
        rows = platform.sql(
            "SELECT count(*) AS n FROM jobs_job WHERE id = ANY(%s::uuid[]) AND status = 'succeeded'", [ids]
        )
        return rows[0]["n"]

    cluster = platform.start_cluster()
    for threshold in (60, 150):
        wait_for(
            lambda threshold=threshold: finished() >= threshold, timeout=120, interval=0.05, what=f"{threshold} done"
        )
        platform.kill9(cluster)  # the whole process group: sentinel, pusher, monitor, workers
        assert finished() < 300, "the kill must land while jobs are still pending"
        cluster = platform.start_cluster()
    wait_for(lambda: finished() == 300, timeout=180, interval=0.5, what="all 300 jobs")

    rows = platform.sql("SELECT status, count(*) AS n FROM jobs_job WHERE id = ANY(%s::uuid[]) GROUP BY status", [ids])
    assert rows == [{"status": "succeeded", "n": 300}]
    twice = platform.sql(
        "SELECT job_id FROM jobs_event WHERE job_id = ANY(%s::uuid[]) AND kind = 'succeeded' "
        "GROUP BY job_id HAVING count(*) > 1",
        [ids],
    )
    assert twice == []
    results = platform.sql("SELECT result->>'index' AS i FROM jobs_job WHERE id = ANY(%s::uuid[])", [ids])
    assert sorted(int(r["i"]) for r in results) == list(range(300))


def test_job_that_kills_its_worker_fails_after_max_attempts(platform, api):
    platform.start_cluster()
    job = platform.create_job(api, {"type": "test_suicide", "params": {}, "max_attempts": 3})
    started = time.monotonic()
    done = platform.wait_status(job["id"], ("failed", "succeeded"), timeout=90)
    assert done["status"] == "failed" and done["attempts"] == 3
    assert done["error"]["type"] == "WorkerLost"
    assert time.monotonic() - started < 90
    kinds = [e["kind"] for e in platform.events(job["id"])]
    assert kinds.count("started") == 3 and kinds.count("rescued") == 2 and kinds[-1] == "failed"


def test_deleted_envelope_is_delivered_again(platform, api):
    job = platform.create_job(api, {"type": "fibonacci", "params": {"n": 100}})
    deleted = platform.sql(
        "DELETE FROM django_q_ormq WHERE id = %s RETURNING id", [platform.job(job["id"])["envelope_id"]]
    )
    assert len(deleted) == 1
    platform.start_cluster()
    done = platform.wait_status(job["id"], ("succeeded", "failed"), timeout=60)
    assert done["status"] == "succeeded"
    assert "redelivered" in [e["kind"] for e in platform.events(job["id"])]


def test_raises_twice_then_succeeds(platform, api):
    platform.start_cluster()
    job = platform.create_job(api, {"type": "test_flaky", "params": {"succeed_on": 3}})
    done = platform.wait_status(job["id"], ("succeeded", "failed"), timeout=60)
    assert done["status"] == "succeeded" and done["attempts"] == 3
    retried = [e for e in platform.events(job["id"]) if e["kind"] == "retried"]
    assert [e["data"]["error"]["message"] for e in retried] == ["failing on attempt 1", "failing on attempt 2"]


def test_timeout_is_retried_then_fails(platform, api):
    platform.start_cluster()
    job = platform.create_job(api, {"type": "test_sleep", "params": {"seconds": 30}, "timeout": 2, "max_attempts": 2})
    done = platform.wait_status(job["id"], ("succeeded", "failed"), timeout=90)
    assert done["status"] == "failed" and done["attempts"] == 2
    assert done["error"]["type"] == "JobTimeout"
    assert [e["kind"] for e in platform.events(job["id"])].count("retried") == 1


def test_sigterm_lets_running_jobs_finish_within_the_grace_and_the_rest_is_rescued(platform, api):
    cluster = platform.start_cluster()
    short = platform.create_job(api, {"type": "countdown", "params": {"seconds": 2}})
    long = platform.create_job(api, {"type": "countdown", "params": {"seconds": 8}})
    platform.wait_status(short["id"], ("running",), timeout=30)
    platform.wait_status(long["id"], ("running",), timeout=30)
    stopped_at = time.monotonic()
    os.kill(cluster.pid, signal.SIGTERM)  # what a supervisor sends
    finished_short = platform.wait_status(short["id"], ("succeeded", "failed"), timeout=30)
    assert finished_short["status"] == "succeeded" and finished_short["attempts"] == 1
    # JOBS_SHUTDOWN_GRACE is 3 s here: the cluster exits by itself once it has passed.
    cluster.wait(timeout=30)
    assert 2.5 < time.monotonic() - stopped_at < 20
    assert platform.job(long["id"])["status"] == "running"  # killed mid-run, not yet rescued
    platform.start_cluster()
    done = platform.wait_status(long["id"], ("succeeded", "failed"), timeout=60)
    assert done["status"] == "succeeded" and done["attempts"] == 2
    assert "rescued" in [e["kind"] for e in platform.events(long["id"])]


def test_sql_delete_and_truncate_fail_on_the_live_database(platform, api):
    job = platform.create_job(api, {"type": "fibonacci", "params": {"n": 1}})
    for statement in (
        "DELETE FROM jobs_job",
        "DELETE FROM jobs_event",
        "TRUNCATE jobs_job CASCADE",
        "TRUNCATE jobs_event",
    ):
        with pytest.raises(psycopg2.Error, match="never deleted"):
            platform.sql(statement)
    assert platform.job(job["id"])


def test_sigterm_to_the_whole_process_group_neither_hangs_nor_loses_the_job(platform, api):
    """systemd's default stop signals every process of the service at once."""
    cluster = platform.start_cluster()
    job = platform.create_job(api, {"type": "countdown", "params": {"seconds": 5}})
    platform.wait_status(job["id"], ("running",), timeout=30)
    os.killpg(cluster.pid, signal.SIGTERM)
    cluster.wait(timeout=30)  # django-q2 alone would wait forever on a lock its dead sentinel held
    platform.start_cluster()
    done = platform.wait_status(job["id"], ("succeeded", "failed"), timeout=60)
    assert done["status"] == "succeeded" and done["attempts"] == 2
