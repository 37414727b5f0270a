"""A completion callback survives the cluster dying between "finished" and "notified"."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from django.conf import settings

from jobs.callbacks import SIGNATURE_HEADER, verify
from tests.callback_receiver import Receiver

from .harness import Platform, running_platform, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Iterator[Platform]:
    env = {"JOBS_CALLBACK_ALLOWED_HOSTS": "127.0.0.1", "JOBS_CALLBACK_BACKOFF_BASE": "0.5"}
    with running_platform(settings.DATABASES["default"], tmp_path_factory.mktemp("callbacks"), env) as instance:
        yield instance


def callback_events(platform, job_id):
    return [e for e in platform.events(job_id) if e["kind"] == "callback"]


def test_kill9_after_the_job_finished_and_before_the_receiver_got_it(platform):
    api = platform.client(platform.token("hooks"))
    secret = platform.manage("rotate_callback_secret", "hooks", "--quiet").strip()
    with Receiver(503) as receiver:  # the receiver is down: the job ends, nobody is told
        job = platform.create_job(api, {"type": "test_short", "params": {"index": 7}, "callback_url": receiver.url})
        cluster = platform.start_cluster()
        assert platform.wait_status(job["id"], ("succeeded", "failed"), timeout=60)["status"] == "succeeded"
        wait_for(lambda: callback_events(platform, job["id"]), timeout=30, what="a failed delivery")
        platform.kill9(cluster)  # finished, not notified: the whole cluster dies here

        receiver.status = 200  # the receiver is back
        platform.start_cluster()
        delivered = wait_for(
            lambda: [e for e in callback_events(platform, job["id"]) if e["data"]["delivered"]],
            timeout=60,
            what="the callback delivered by the new cluster",
        )
        platform.stop_clusters()
    assert len(delivered) == 1
    last = receiver.received[-1]
    assert verify(secret, last["headers"][SIGNATURE_HEADER], last["body"])
    body = json.loads(last["body"])
    assert body["id"] == job["id"] and body["status"] == "succeeded" and body["result"] == {"index": 7}
    assert all(e["data"]["delivered"] is False for e in callback_events(platform, job["id"])[:-1])
