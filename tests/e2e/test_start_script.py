"""The README's first command, for real: scripts/start serves the API and runs jobs."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
import requests

from .harness import ROOT, free_port, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]


def test_scripts_start_runs_the_platform(platform, tmp_path):
    port = free_port()
    env = {**os.environ, "DATABASE_URL": platform.database_url, "HOST": "127.0.0.1", "PORT": str(port)}
    env.pop("DJANGO_SETTINGS_MODULE", None)  # the script's own default (dev settings)
    log = open(tmp_path / "start.log", "w")
    script = subprocess.Popen(
        [str(ROOT / "scripts" / "start")],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(
            lambda: requests.get(f"{base}/health", timeout=2).status_code == 200, timeout=400, what="scripts/start"
        )
        api = platform.client(platform.token("start-script"))
        created = api.post(f"{base}/jobs", json={"type": "fibonacci", "params": {"n": 1000}}, timeout=10)
        assert created.status_code == 201
        done = wait_for(
            lambda: (job := api.get(created.headers["Location"], timeout=5).json())["status"] == "succeeded" and job,
            timeout=60,
            what="the job started through scripts/start",
        )
        assert done["result"]["digits"] == 209
    finally:
        os.killpg(script.pid, signal.SIGTERM)  # Ctrl-C / a supervisor: web and cluster stop
        try:
            script.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(script.pid, signal.SIGKILL)
            script.wait()
    assert "issue_token" in (tmp_path / "start.log").read_text()  # it tells the user how to get a token
