"""A completion callback survives the cluster dying between "finished" and "notified";
receivers that never answer in time do not hold up the rescue of jobs."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from django.conf import settings

from jobs.services.callbacks import SIGNATURE_HEADER, verify
from tests.callback_receiver import Receiver
from tests.dripping_receiver import DrippingReceiver

from .harness import Platform, running_platform, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Iterator[Platform]:
    env = {
        "JOBS_CALLBACK_ALLOWED_HOSTS": "127.0.0.1",
        "JOBS_CALLBACK_BACKOFF_BASE": "0.5",
        # The slow receiver below answers after a minute: each delivery to it waits this long,
        # longer than the rescue's bound in the test below (lease + 4 maintenance intervals +
        # 3 s = 11 s), so a maintenance pass that waited on one delivery would break it.
        "JOBS_CALLBACK_TIMEOUT": "15",
    }
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


def test_receivers_that_never_answer_in_time_do_not_delay_the_rescue(platform):
    """A dozen callbacks due to a receiver that answers after a minute (each delivery waits
    JOBS_CALLBACK_TIMEOUT, 15 s here, for nothing) while a cluster is killed under a running job:
    the other cluster rescues it within the lease and a few maintenance intervals (when the
    maintenance pass delivered callbacks, this took minutes)."""
    lease = float(platform.env["JOBS_LEASE_SECONDS"])
    interval = float(platform.env["JOBS_MAINTENANCE_INTERVAL"])
    api = platform.client(platform.token("slow-hooks"))
    with Receiver(200, delay=60) as receiver:
        hooked = [
            platform.create_job(api, {"type": "test_short", "params": {"index": i}, "callback_url": receiver.url})
            for i in range(12)
        ]
        first = platform.start_cluster()
        for job in hooked:
            assert platform.wait_status(job["id"], ("succeeded", "failed"), timeout=60)["status"] == "succeeded"
        long = platform.create_job(api, {"type": "test_sleep", "params": {"seconds": 6}})
        running = platform.wait_status(long["id"], ("running",), timeout=30)
        platform.start_cluster()
        # Both clusters are busy with the slow receiver: each has deliveries waiting on it.
        wait_for(lambda: receiver.arrived >= 4, timeout=30, what="both clusters delivering to the slow receiver")
        killed_at = time.monotonic()
        platform.kill9(first)  # the cluster running the long job dies with it
        wait_for(
            lambda: any(e["kind"] == "rescued" for e in platform.events(long["id"])),
            timeout=60,
            interval=0.1,
            what="the long job rescued",
        )
        rescued_after = time.monotonic() - killed_at
        done = platform.wait_status(long["id"], ("succeeded", "failed"), timeout=60)
        print(f"rescued {rescued_after:.1f} s after the kill (lease {lease:g} s, maintenance every {interval:g} s)")
        assert rescued_after <= lease + 4 * interval + 3, rescued_after
        assert done["status"] == "succeeded" and done["attempts"] == 2
        assert running["worker"] != done["worker"]
        platform.stop_clusters()


def test_a_receiver_that_drips_its_answer_is_hung_up_on_at_the_deadline(platform):
    """The review's receiver: one header line every second, never the end of the headers.
    Each line comes well within any socket timeout; before the hard deadline a 5 s delivery
    was held 24 s, past its lease, while another deliverer posted the same callback. Now the
    cluster hangs up at JOBS_CALLBACK_TIMEOUT (5 s for this test's cluster), within the
    callback's lease, and the next attempt comes only after it."""
    deadline = 5.0
    api = platform.client(platform.token("dripping-hooks"))
    with DrippingReceiver(interval=1.0, lines=60) as receiver:
        job = platform.create_job(api, {"type": "test_short", "params": {"index": 1}, "callback_url": receiver.url})
        platform.start_cluster(JOBS_CALLBACK_TIMEOUT=f"{deadline:g}")
        first = wait_for(lambda: receiver.requests and receiver.requests[0], timeout=60, what="a delivery")
        wait_for(lambda: first["closed"] is not None, timeout=deadline + 15, what="the cluster hanging up")
        held = first["closed"] - first["arrived"]
        failed = wait_for(lambda: callback_events(platform, job["id"]), timeout=15, what="the attempt recorded")
        arrived_before_hang_up = [r for r in receiver.requests[1:] if r["arrived"] < first["closed"]]
        platform.stop_clusters()
    assert deadline - 0.5 <= held <= deadline + 2, held
    assert arrived_before_hang_up == []  # no second deliverer posted it meanwhile
    assert failed[0]["data"]["error"] == f"TimeoutError: no complete answer within {deadline:g} s"
    assert failed[0]["data"]["delivered"] is False
