"""Checkpoints, logs and re-runs with real processes: a worker killed with SIGKILL in the
middle of a job, and a failed job re-run from its checkpoint, read back over HTTP."""

from __future__ import annotations

import os
import re
import signal
import time

import pytest

from .harness import all_log_lines, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


@pytest.fixture
def api(platform):
    yield platform.client(platform.token(f"durable-{time.monotonic_ns()}"))
    platform.stop_clusters()


def steps_done(lines: list[dict], attempt: int) -> list[int]:
    """The steps an attempt logged as done, in order."""
    done = [line for line in lines if line["attempt"] == attempt and line["message"].endswith(" done")]
    return [line["fields"]["step"] for line in done]


def test_a_worker_killed_mid_job_is_rescued_and_the_next_attempt_resumes_from_the_checkpoint(platform, api):
    platform.start_cluster()
    job = platform.create_job(api, {"type": "test_resumable", "params": {"steps": 40, "step_seconds": 0.25}})
    url = job["url"]

    def checkpointed() -> dict | None:
        checkpoint = api.get(url, timeout=10).json()["checkpoint"]
        return checkpoint if checkpoint and checkpoint["state"]["done"] >= 8 else None

    seen = wait_for(checkpointed, timeout=60, interval=0.1, what="a checkpoint past step 8")["state"]["done"]
    running = platform.job(job["id"])
    assert running["attempts"] == 1 and running["status"] == "running"
    os.kill(int(running["worker"].rsplit(":", 1)[1]), signal.SIGKILL)  # the worker process only

    done = platform.wait_status(job["id"], ("succeeded", "failed"), timeout=90)
    assert done["status"] == "succeeded" and done["attempts"] == 2, done
    result = done["result"]
    # The second attempt started from the checkpoint, not from zero.
    assert result["attempt"] == 2 and seen <= result["started_from"] < 40, (seen, result)
    kinds = [(e["kind"], e["attempt"]) for e in platform.events(job["id"])]
    assert ("rescued", 1) in kinds and ("started", 2) in kinds and kinds[-1] == ("succeeded", 2)
    assert ("checkpoint", 1) in kinds and ("checkpoint", 2) in kinds

    # The log tells the story of both attempts, over HTTP.
    lines = all_log_lines(api, url, page=7)
    first, second = steps_done(lines, 1), steps_done(lines, 2)
    assert lines[0]["message"] == "starting from the first step" and lines[0]["attempt"] == 1
    assert first == list(range(1, len(first) + 1)) and first[-1] >= result["started_from"]
    resumed = next(line for line in lines if line["attempt"] == 2)
    assert resumed["message"] == f"resuming after step {result['started_from']}" and resumed["level"] == "warning"
    assert second == list(range(result["started_from"] + 1, 41))  # nothing redone before the checkpoint
    ids = [line["id"] for line in lines]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    final = api.get(url, timeout=10).json()
    assert final["checkpoint"]["state"] == {"done": 40} and final["logs"]["lines"] == len(lines)
    assert final["logs"]["dropped"] == 0


def test_a_failed_job_rerun_with_resume_continues_from_its_last_checkpoint(platform, api):
    platform.start_cluster()
    failed = platform.create_job(
        api,
        {
            "type": "test_resumable",
            "params": {"steps": 12, "step_seconds": 0.05, "fail_at": 7},
            "metadata": {"migration": "e2e-rerun"},
            "max_attempts": 2,
        },
    )
    old = platform.wait_status(failed["id"], ("failed", "succeeded"), timeout=60)
    assert old["status"] == "failed" and old["attempts"] == 2 and old["error"]["type"] == "ConnectionError"
    assert old["checkpoint"] == {"done": 6}

    response = api.post(
        f"{failed['url']}/rerun",
        json={"resume": True, "params": {"steps": 12, "step_seconds": 0.05}},
        headers={"Idempotency-Key": "e2e-rerun-1"},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    new = response.json()
    assert response.headers["Location"] == new["url"] and new["rerun_of"] == failed["id"]
    assert new["checkpoint"]["state"] == {"done": 6} and new["metadata"] == {"migration": "e2e-rerun"}
    again = api.post(
        f"{failed['url']}/rerun",
        json={"resume": True, "params": {"steps": 12, "step_seconds": 0.05}},
        headers={"Idempotency-Key": "e2e-rerun-1"},
        timeout=10,
    )
    assert again.json()["id"] == new["id"] and again.headers["Idempotent-Replayed"] == "true"

    done = platform.wait_status(new["id"], ("succeeded", "failed"), timeout=60)
    assert done["status"] == "succeeded" and done["attempts"] == 1
    assert done["result"] == {"started_from": 6, "attempt": 1, "done": 12}
    lines = all_log_lines(api, new["url"], page=7)
    assert lines[0]["message"] == "resuming after step 6" and steps_done(lines, 1) == list(range(7, 13))
    # The old job: unchanged but for the event naming its re-run.
    history = api.get(f"{failed['url']}/events", timeout=10).json()["events"]
    assert history[-1]["kind"] == "rerun" and history[-1]["data"] == {"job": new["id"], "resumed": True}
    assert api.get(failed["url"], timeout=10).json()["status"] == "failed"
    refused = [line["message"] for line in all_log_lines(api, failed["url"], page=7) if line["level"] == "error"]
    assert refused == ["step 7 refused", "step 7 refused"]  # one per attempt
    # An unfinished job cannot be re-run.
    running = platform.create_job(api, {"type": "test_resumable", "params": {"steps": 50, "step_seconds": 0.2}})
    conflict = api.post(f"{running['url']}/rerun", json={}, timeout=10)
    assert conflict.status_code == 409 and conflict.headers["Content-Type"] == "application/problem+json"
    assert re.match(r"The job is (queued|running)", conflict.json()["detail"])
    api.post(f"{running['url']}/cancel", timeout=10)
