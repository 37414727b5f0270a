"""Batches through real processes: a batch of 50 jobs created with one POST to gunicorn runs
to the end on two clusters (retries and failures included), its counts and finish time are
the jobs', and its callback reaches a real local receiver exactly once, signed; a batch
cancelled while its jobs run ends cancelled, and calls back once too."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from django.conf import settings

from jobs.services.callbacks import SIGNATURE_HEADER, verify
from tests.callback_receiver import Receiver

from .harness import Platform, running_platform, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Iterator[Platform]:
    env = {"JOBS_CALLBACK_ALLOWED_HOSTS": "127.0.0.1", "JOBS_CALLBACK_BACKOFF_BASE": "0.5"}
    with running_platform(settings.DATABASES["default"], tmp_path_factory.mktemp("batches"), env) as instance:
        # The callbacks' URLs are built without a request, under JOBS_PUBLIC_URL.
        instance.env["JOBS_PUBLIC_URL"] = instance.base_url
        yield instance


def batch_deliveries(receiver: Receiver, batch_id: str) -> list[dict]:
    return [d for d in receiver.received if json.loads(d["body"]).get("id") == batch_id]


def test_a_batch_of_fifty_jobs_runs_to_the_end_and_calls_back_once(platform):
    api = platform.client(platform.token("batches-e2e"))
    secret = platform.manage("rotate_callback_secret", "batches-e2e", "--quiet").strip()
    jobs = [{"type": "test_short", "params": {"index": i, "sleep": 0.02}, "metadata": {"i": i}} for i in range(45)]
    jobs += [{"type": "test_flaky", "params": {"succeed_on": 2}, "metadata": {"i": 45 + i}} for i in range(3)]
    jobs += [
        {"type": "test_flaky", "params": {"succeed_on": 9}, "max_attempts": 1, "metadata": {"i": 48 + i}}
        for i in range(2)
    ]
    with Receiver(200) as receiver:
        created = api.post(
            f"{platform.base_url}/batches",
            json={"jobs": jobs, "metadata": {"run": "e2e"}, "callback_url": receiver.url},
            timeout=30,
        )
        assert created.status_code == 201, created.text
        batch = created.json()
        assert created.headers["Location"] == batch["url"] and batch["counts"]["queued"] == 50
        for _ in range(2):  # two clusters of two workers: jobs of the batch end concurrently
            platform.start_cluster()
        done = wait_for(
            lambda: (b := api.get(batch["url"], timeout=10).json())["state"] == "finished" and b,
            timeout=120,
            what="the batch to finish",
        )
        wait_for(lambda: batch_deliveries(receiver, batch["id"]), timeout=30, what="the batch's callback")
        # A few more delivery rounds of both clusters: nothing else about this batch arrives.
        time.sleep(4 * float(platform.env["JOBS_MAINTENANCE_INTERVAL"]))
        platform.stop_clusters()
        [delivery] = batch_deliveries(receiver, batch["id"])

    assert done["counts"] == {
        "scheduled": 0,
        "queued": 0,
        "running": 0,
        "succeeded": 48,
        "failed": 2,
        "cancelled": 0,
    }
    assert done["progress"] == {"finished": 50, "total": 50, "percent": 100.0}
    # The batch ended with its last job, in the same transaction: not before any of its
    # jobs ended (two ending at once in two clusters may commit in either order).
    [row] = platform.sql(
        "SELECT b.finished_at >= max(j.finished_at) AS not_before, "
        "b.finished_at - max(j.finished_at) < interval '5 seconds' AS with_it, count(*) AS jobs, "
        "count(*) FILTER (WHERE j.attempts = 2) AS retried "
        "FROM jobs_batch b JOIN jobs_job j ON j.batch_id = b.id WHERE b.id = %s GROUP BY b.finished_at",
        [batch["id"]],
    )
    assert row == {"not_before": True, "with_it": True, "jobs": 50, "retried": 3}
    assert verify(secret, delivery["headers"][SIGNATURE_HEADER], delivery["body"])
    sent = json.loads(delivery["body"])
    assert sent["state"] == "finished" and sent["counts"] == done["counts"] and sent["metadata"] == {"run": "e2e"}
    assert sent["url"] == done["url"]
    history = api.get(f"{batch['url']}/events", timeout=10).json()["events"]
    assert [e["kind"] for e in history] == ["created", "finished", "callback"]
    assert history[-1]["data"]["delivered"] is True
    # Every job of the batch, through the job list's keyset pages.
    seen, url = [], f"{platform.base_url}/jobs?batch={batch['id']}&limit=20"
    while url:
        page = api.get(url, timeout=10).json()
        seen += [job["metadata"]["i"] for job in page["results"]]
        url = page["next"]
    assert sorted(seen) == list(range(50))


def test_a_batch_cancelled_while_its_jobs_run_ends_cancelled_and_calls_back_once(platform):
    api = platform.client(platform.token("batches-cancel"))
    jobs = [{"type": "countdown", "params": {"seconds": 60}} for _ in range(8)]
    with Receiver(200) as receiver:
        batch = api.post(
            f"{platform.base_url}/batches", json={"jobs": jobs, "callback_url": receiver.url}, timeout=30
        ).json()
        platform.start_cluster()  # two workers: two jobs run, six wait
        wait_for(
            lambda: api.get(batch["url"], timeout=10).json()["counts"]["running"] == 2,
            timeout=60,
            what="two jobs of the batch running",
        )
        cancelled = api.post(f"{batch['url']}/cancel", timeout=10)
        assert cancelled.status_code == 202, cancelled.text
        assert cancelled.json()["counts"]["cancelled"] == 6 and cancelled.json()["cancel_requested"] is True
        done = wait_for(
            lambda: (b := api.get(batch["url"], timeout=10).json())["state"] == "finished" and b,
            timeout=60,
            what="the running jobs to stop",
        )
        wait_for(lambda: batch_deliveries(receiver, batch["id"]), timeout=30, what="the batch's callback")
        time.sleep(4 * float(platform.env["JOBS_MAINTENANCE_INTERVAL"]))
        platform.stop_clusters()
        assert len(batch_deliveries(receiver, batch["id"])) == 1
    assert done["counts"]["cancelled"] == 8 and done["progress"]["finished"] == 8
    assert api.post(f"{batch['url']}/cancel", timeout=10).status_code == 409
    kinds = [e["kind"] for e in api.get(f"{batch['url']}/events", timeout=10).json()["events"]]
    assert kinds == ["created", "cancel_requested", "finished", "callback"]
