"""PostgreSQL stops mid-run: the API answers 503 (never 500), and every job still completes."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from django.db import connections

from .harness import ROOT, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def server_control(server: dict) -> tuple[Callable[[], None], Callable[[], None]]:
    """How to stop and start the database server the tests use."""
    host = server.get("HOST") or ""
    if host.startswith("/") and Path(host).resolve().is_relative_to((ROOT / ".data").resolve()):
        embedded = [sys.executable, "-m", "jobplatform.embedded"]
        return (
            lambda: subprocess.run([*embedded, "stop"], cwd=ROOT, check=True, timeout=60),
            lambda: subprocess.run([*embedded, "start"], cwd=ROOT, check=True, timeout=60),
        )
    if host in ("127.0.0.1", "localhost", "") and shutil.which("pg_ctlcluster") and Path("/etc/postgresql").is_dir():
        version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]
        base = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main"]
        return (
            lambda: subprocess.run([*base, "stop", "-m", "fast"], check=True, timeout=60),
            lambda: subprocess.run([*base, "start"], check=True, timeout=60),
        )
    pytest.skip(f"do not know how to stop and start the database server at {host!r}")


def test_database_outage_gives_503_and_jobs_complete_afterwards(platform):
    stop, start = server_control(platform.server)
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
        connections.close_all()  # this process's own connections died with the server

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
