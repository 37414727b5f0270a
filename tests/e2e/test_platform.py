"""The whole platform over real HTTP: gunicorn, a real qcluster, every built-in type."""

from __future__ import annotations

import pytest

from tests.unit.test_jobtypes import F1000

from .harness import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def test_every_type_runs_to_succeeded_over_http(platform):
    cluster = platform.start_cluster()
    token = platform.token("e2e-main")
    api = platform.client(token)
    jobs = {
        "fibonacci": platform.create_job(
            api, {"type": "fibonacci", "params": {"n": 1000}, "metadata": {"migration": "fib"}}
        ),
        "pi": platform.create_job(api, {"type": "pi", "params": {"digits": 50}, "metadata": {"migration": "pi"}}),
        "countdown": platform.create_job(
            api, {"type": "countdown", "params": {"seconds": 4}, "metadata": {"m": [1, {"a": None}]}}
        ),
    }
    # Progress is visible while the countdown runs.
    seen_progress = wait_for(
        lambda: (
            (api.get(jobs["countdown"]["url"], timeout=5).json().get("progress") or {}).get("percent", 0) > 0
            and api.get(jobs["countdown"]["url"], timeout=5).json()["status"] == "running"
        ),
        timeout=60,
        interval=0.1,
        what="countdown progress while running",
    )
    assert seen_progress

    finished = {}
    for name, job in jobs.items():
        finished[name] = wait_for(
            lambda job=job: (
                (body := api.get(job["url"], timeout=5).json())["status"] in ("succeeded", "failed") and body
            ),
            timeout=60,
            what=f"{name} to finish",
        )
        assert finished[name]["status"] == "succeeded", finished[name]
        assert finished[name]["metadata"] == job["metadata"]
        assert finished[name]["params"] == job["params"]
        assert finished[name]["attempts"] == 1
        assert finished[name]["started_at"] and finished[name]["finished_at"]
    assert finished["fibonacci"]["result"]["value"] == F1000
    assert finished["pi"]["result"]["value"] == "3.14159265358979323846264338327950288419716939937510"
    assert finished["countdown"]["result"]["seconds"] == 4

    events = api.get(f"{jobs['countdown']['url']}/events", timeout=5).json()["events"]
    kinds = [e["kind"] for e in events]
    assert kinds[:3] == ["created", "queued", "started"] and kinds[-1] == "succeeded"
    assert "progress" in kinds

    # The singular path answers too; a second application gets 404.
    assert api.get(f"{platform.base_url}/job/{jobs['pi']['id']}", timeout=5).status_code == 200
    other = platform.client(platform.token("e2e-other"))
    assert other.get(jobs["pi"]["url"], timeout=5).status_code == 404
    assert cluster.poll() is None


def test_http_errors_are_problem_json(platform):
    api = platform.client(platform.token("e2e-errors"))
    response = api.post(
        f"{platform.base_url}/jobs",
        data=b"x" * (2 * 1024 * 1024),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert response.status_code == 413
    assert response.headers["Content-Type"] == "application/problem+json"
    response = api.post(f"{platform.base_url}/jobs", data="{", headers={"Content-Type": "application/json"}, timeout=10)
    assert response.status_code == 400
    anonymous = api.__class__()
    response = anonymous.get(f"{platform.base_url}/jobs", timeout=5)
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Token"
