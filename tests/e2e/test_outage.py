"""PostgreSQL stops mid-run: the API answers 503 (never 500), and every job still completes.

The server that stops is a throwaway one this module starts for itself (tests/e2e/
throwaway.py): the suite never stops a server it did not start, so running it next to a
developer's own platform, or against the machine's PostgreSQL, leaves them alone.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from .harness import Platform, running_platform, wait_for
from .throwaway import ThrowawayPostgres

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def server() -> Iterator[ThrowawayPostgres]:
    instance = ThrowawayPostgres()
    instance.start()
    try:
        yield instance
    finally:
        instance.destroy()


@pytest.fixture(scope="module")
def platform(server, tmp_path_factory) -> Iterator[Platform]:
    """The usual e2e platform, on the throwaway server instead of the test database's."""
    with running_platform(server.settings, tmp_path_factory.mktemp("outage-logs")) as instance:
        yield instance


def test_database_outage_gives_503_and_jobs_complete_afterwards(platform, server):
    stop, start = server.stop, server.start
    api = platform.client(platform.token("outage"))
    platform.start_cluster()
    jobs = [platform.create_job(api, {"type": "countdown", "params": {"seconds": 4}}) for _ in range(2)]
    jobs += [platform.create_job(api, {"type": "fibonacci", "params": {"n": 5000}}) for _ in range(3)]
    platform.wait_status(jobs[0]["id"], ("running",), timeout=30)

    answers: list[requests.Response] = []
    stop()
    try:
        outage_ends = time.monotonic() + 4
        while time.monotonic() < outage_ends:
            answers.append(api.get(jobs[0]["url"], timeout=10))
            answers.append(
                api.post(f"{platform.base_url}/jobs", json={"type": "fibonacci", "params": {"n": 1}}, timeout=10)
            )
            time.sleep(0.3)
    finally:
        start()

    assert answers and {r.status_code for r in answers} == {503}
    assert all(r.headers.get("Retry-After", "").isdigit() for r in answers)
    assert all(r.headers["Content-Type"] == "application/problem+json" for r in answers)

    wait_for(
        lambda: requests.get(f"{platform.base_url}/health", timeout=5).status_code == 200, timeout=60, what="health"
    )
    for job in jobs:
        done = platform.wait_status(job["id"], ("succeeded", "failed"), timeout=120)
        assert done["status"] == "succeeded", done
    assert (
        api.post(f"{platform.base_url}/jobs", json={"type": "fibonacci", "params": {"n": 1}}, timeout=10).status_code
        == 201
    )
    platform.stop_clusters()
