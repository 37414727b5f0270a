"""A queue of its own: urgent work is not stuck behind another queue's backlog."""

from __future__ import annotations

from collections.abc import Iterator

import psutil
import pytest
from django.conf import settings

from .harness import Platform, running_platform

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Iterator[Platform]:
    env = {"JOBS_QUEUES": "default,high"}
    with running_platform(settings.DATABASES["default"], tmp_path_factory.mktemp("queues"), env) as instance:
        yield instance


def test_a_job_on_high_runs_while_fifty_slow_jobs_wait_on_default(platform):
    api = platform.client(platform.token("queues"))
    slow = [platform.create_job(api, {"type": "test_sleep", "params": {"seconds": 2}})["id"] for _ in range(50)]
    platform.start_cluster()  # serves default (Q_WORKERS=2)
    high = platform.start_cluster("--queue", "high")
    urgent = platform.create_job(api, {"type": "test_short", "params": {"index": 1}, "queue": "high"})
    done = platform.wait_status(urgent["id"], ("succeeded", "failed"), timeout=60)
    assert done["status"] == "succeeded" and done["queue"] == "high"
    # When the urgent job had finished, default's backlog was still far from done.
    finished_before = platform.sql(
        "SELECT count(*) AS n FROM jobs_job WHERE id = ANY(%s::uuid[]) AND finished_at <= %s",
        [slow, done["finished_at"]],
    )[0]["n"]
    assert finished_before <= 10, finished_before
    # It ran in a worker process of the cluster started for its queue.
    worker_pid = int(done["worker"].rsplit(":", 1)[1])
    assert worker_pid in {child.pid for child in psutil.Process(high.pid).children(recursive=True)}
    platform.stop_clusters()
