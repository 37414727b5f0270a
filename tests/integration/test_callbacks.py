"""Completion callbacks: only allowed hosts, written with the terminal transition, POSTed
signed, retried with backoff, every attempt in the job's history."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from jobs import services
from jobs.runtime import callbacks
from jobs.services.callbacks import DELIVERY_HEADER, SIGNATURE_HEADER, verify
from tests.callback_receiver import Receiver
from tests.integration.conftest import PARK_CALLBACKS, park_committed


@pytest.fixture(autouse=True)
def earlier_callbacks_wait(request):
    """Callbacks committed before this test wait (``park_committed``): what deliver_due
    counts is this test's deliveries."""
    park_committed(request, PARK_CALLBACKS)


@pytest.fixture
def allowed(settings):
    settings.JOBS_CALLBACK_ALLOWED_HOSTS = ["127.0.0.1"]


def create(api, **extra):
    body = {"type": "fibonacci", "params": {"n": 10}, **extra}
    return api.post("/jobs", data=json.dumps(body), content_type="application/json")


def finish(job):
    running = services.job_claim(job_id=job["id"], worker="w")
    return services.job_succeed(job=running, result={"value": "55"})


def events(api, job_id, kind="callback"):
    return [e for e in api.get(f"/jobs/{job_id}/events").json()["events"] if e["kind"] == kind]


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5/hook",
        "http://169.254.169.254/latest",
        "ftp://127.0.0.1/x",
        "not a url",
        42,
        "http://user:pw@127.0.0.1:9/hook",
    ],
)
def test_a_callback_url_outside_the_allowed_hosts_is_400(api, allowed, url):
    response = create(api, callback_url=url)
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["callback_url"]


def test_no_host_is_allowed_by_default(api, settings):
    settings.JOBS_CALLBACK_ALLOWED_HOSTS = []
    assert create(api, callback_url="http://127.0.0.1:9/hook").status_code == 400


def test_the_finish_writes_the_callback_and_the_delivery_is_signed(api, app, allowed, raw):
    secret = services.app_rotate_callback_secret(app_name=app.name)
    with Receiver(200) as receiver:
        job = create(api, callback_url=receiver.url, metadata={"m": 1}).json()
        assert job["callback_url"] == receiver.url
        raw.execute("SELECT count(*) FROM jobs_callback WHERE job_id = %s", [job["id"]])
        assert raw.fetchone()[0] == 0  # nothing to say until it ends
        finish(job)
        raw.execute("SELECT count(*) FROM jobs_callback WHERE job_id = %s", [job["id"]])
        assert raw.fetchone()[0] == 1  # written by the finishing statement itself
        assert callbacks.deliver_due(limit=10) == 1
    [delivery] = receiver.received
    body = json.loads(delivery["body"])
    assert body["id"] == job["id"] and body["status"] == "succeeded" and body["result"] == {"value": "55"}
    assert body["metadata"] == {"m": 1}
    header = delivery["headers"][SIGNATURE_HEADER]
    assert verify(secret, header, delivery["body"])
    assert not verify("another secret", header, delivery["body"])
    assert not verify(secret, header, delivery["body"] + b" ")
    headers = delivery["headers"]
    assert headers["Content-Type"] == "application/json" and headers["User-Agent"] == "jobplatform-callback"
    raw.execute("SELECT id FROM jobs_callback WHERE job_id = %s", [job["id"]])
    assert headers[DELIVERY_HEADER] == str(raw.fetchone()[0])  # receivers ignore repeats by it
    [event] = events(api, job["id"])
    assert event["data"] == {"url": receiver.url, "delivery": 1, "status": 200, "delivered": True}
    assert callbacks.deliver_due(limit=10) == 0  # delivered once, not again


def test_a_failing_receiver_is_retried_with_backoff_then_given_up(api, allowed, raw, settings):
    settings.JOBS = {**settings.JOBS, "CALLBACK_MAX_ATTEMPTS": 2}
    with Receiver(500) as receiver:
        job = create(api, callback_url=receiver.url).json()
        finish(job)
        assert callbacks.deliver_due(limit=10) == 1
        raw.execute("SELECT due_at > now(), gave_up_at FROM jobs_callback WHERE job_id = %s", [job["id"]])
        assert raw.fetchone() == (True, None)  # tried again later
        assert callbacks.deliver_due(limit=10) == 0  # not due yet
        raw.execute("UPDATE jobs_callback SET due_at = now() WHERE job_id = %s", [job["id"]])
        assert callbacks.deliver_due(limit=10) == 1
    assert len(receiver.received) == 2
    first, last = events(api, job["id"])
    assert first["data"]["status"] == 500 and first["data"]["delivered"] is False and "next_attempt_at" in first["data"]
    assert last["data"]["gave_up"] is True and last["data"]["delivery"] == 2


@pytest.mark.parametrize("status", [300, 302])
def test_a_redirect_is_not_followed(api, allowed, status):
    with Receiver(status, location="http://10.0.0.5/internal") as receiver:
        job = create(api, callback_url=receiver.url).json()
        finish(job)
        callbacks.deliver_due(limit=10)
    [event] = events(api, job["id"])
    assert event["data"]["delivered"] is False and event["data"]["status"] == status


def test_cancelling_a_waiting_job_calls_back_too(api, allowed):
    with Receiver(204) as receiver:
        job = create(api, callback_url=receiver.url).json()
        api.post(f"/jobs/{job['id']}/cancel")
        callbacks.deliver_due(limit=10)
    assert json.loads(receiver.received[0]["body"])["status"] == "cancelled"


def test_rotate_callback_secret_command(app):
    import io

    from django.core.management import call_command

    out = io.StringIO()
    call_command("rotate_callback_secret", app.name, "--quiet", stdout=out)
    first = out.getvalue().strip()
    call_command("rotate_callback_secret", app.name, "--quiet", stdout=out)
    assert len(first) == 64 and out.getvalue().strip().splitlines()[-1] != first


def test_a_job_whose_resource_orjson_cannot_encode_is_still_delivered(api, allowed):
    """An integer beyond 64 bits (valid JSON, kept by jsonb) must not jam the outbox."""
    with Receiver(200) as receiver:
        job = create(api, callback_url=receiver.url, metadata={"big": 2**70}).json()
        finish(job)
        assert callbacks.deliver_due(limit=10) == 1
    assert json.loads(receiver.received[0]["body"])["metadata"] == {"big": 2**70}


def test_a_result_from_a_deliverer_that_lost_its_lease_is_not_written(api, allowed, raw):
    with Receiver(500) as receiver:
        job = create(api, callback_url=receiver.url).json()
        finish(job)
        [taken] = services.callbacks_take(limit=1, lease=0)  # its lease is over at once
        [again] = services.callbacks_take(limit=1, lease=60)  # another deliverer takes it
        services.callback_failed(callback_id=taken["id"], attempts=taken["attempts"], status=500, error="late")
        raw.execute("SELECT count(*) FROM jobs_event WHERE job_id = %s AND kind = 'callback'", [job["id"]])
        assert raw.fetchone()[0] == 0  # the first deliverer's late result changed nothing
        services.callback_delivered(callback_id=again["id"], attempts=again["attempts"], status=200)
        assert [e["data"]["delivered"] for e in events(api, job["id"])] == [True]


@pytest.mark.django_db(transaction=True)
def test_a_slow_host_holds_only_its_own_delivery_slots(settings):
    """Six callbacks due to a host that never answers in time, then one to another host:
    the deliverer keeps at most JOBS_CALLBACK_PER_HOST deliveries on the slow host and
    delivers the other host's at once."""
    from tests.integration.conftest import new_app

    settings.JOBS_CALLBACK_ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
    settings.JOBS = {**settings.JOBS, "CALLBACK_TIMEOUT": 30.0}
    app, _ = new_app()
    deliverer = callbacks.CallbackDeliverer(concurrency=3, per_host=2, interval=0.2)
    with Receiver(200, delay=60) as slow, Receiver(200, host="localhost") as fast:
        for _ in range(6):
            job, _ = services.job_create(app=app, type="fibonacci", params={"n": 1}, callback_url=slow.url)
            finish({"id": job.id})
        job, _ = services.job_create(app=app, type="fibonacci", params={"n": 1}, callback_url=fast.url)
        finish({"id": job.id})
        deliverer.start()
        try:
            deadline = time.monotonic() + 10
            while not fast.received and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(fast.received) == 1, "the other host's callback waited behind the slow host"
            # Waited for on the receiver, not on the deliverer's count: callbacks that earlier
            # tests left due to 127.0.0.1 (ports now closed, refused at once) may hold the
            # slow host's slots for a moment first.
            while (slow.arrived < 2 or deliverer.in_flight() != {"127.0.0.1": 2}) and time.monotonic() < deadline:
                time.sleep(0.05)  # the fast delivery's thread is recording it
            assert deliverer.in_flight() == {"127.0.0.1": 2}
            time.sleep(0.5)  # several more looks: still no third delivery to the slow host
            assert slow.arrived == 2
        finally:
            deliverer.stopping.set()
    deliverer.stop(timeout=15)  # the slow deliveries ended when their receiver closed


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("http://127.0.0.1:8000/hook", "127.0.0.1"),
        ("https://Hooks.Example.COM/a?b=c", "hooks.example.com"),
        ("http://[::1]:9/x", "::1"),
        ("HTTP://localhost", "localhost"),
    ],
)
def test_the_outbox_counts_deliveries_by_the_host_the_allowed_list_names(api, raw, url, host):
    """The host the deliverer counts (SQL) is the host JOBS_CALLBACK_ALLOWED_HOSTS compares (Python)."""
    from urllib.parse import urlsplit

    job = create(api).json()
    finish(job)
    raw.execute("INSERT INTO jobs_callback (job_id, url) VALUES (%s, %s)", [job["id"], url])
    [taken] = services.callbacks_take(limit=1, lease=60)
    assert taken["host"] == host == urlsplit(url).hostname.lower()
    assert services.callbacks_take(limit=1, lease=60) == []


def test_callbacks_to_a_busy_host_stay_in_the_outbox(api, allowed, raw):
    job = create(api, callback_url="http://127.0.0.1:9/hook").json()
    finish(job)
    assert services.callbacks_take(limit=1, lease=60, busy_hosts=["127.0.0.1"]) == []
    [taken] = services.callbacks_take(limit=1, lease=60, busy_hosts=["localhost"])
    assert taken["job_id"] == uuid.UUID(job["id"]) and taken["attempts"] == 1


def test_a_job_whose_worker_died_on_its_last_attempt_calls_back(api, allowed, raw):
    """The rescuer's terminal transition writes the outbox row too: the receiver hears of
    a job its worker never finished."""
    with Receiver(200) as receiver:
        job = create(api, callback_url=receiver.url, max_attempts=1).json()
        services.job_claim(job_id=job["id"], worker="dead-host:1")
        raw.execute("UPDATE jobs_job SET lease_expires_at = now() - interval '1 second' WHERE id = %s", [job["id"]])
        assert services.jobs_rescue_expired(limit=100) >= 1
        raw.execute("SELECT count(*) FROM jobs_callback WHERE job_id = %s", [job["id"]])
        assert raw.fetchone()[0] == 1
        callbacks.deliver_due(limit=10)
    [delivery] = [d for d in receiver.received if json.loads(d["body"])["id"] == job["id"]]
    body = json.loads(delivery["body"])
    assert body["status"] == "failed" and body["error"]["type"] == "WorkerLost"


def test_a_host_removed_from_the_allowed_list_gets_no_callback(api, allowed, settings):
    """The allowed hosts are checked again at delivery: an operator who removes a host
    stops the callbacks already queued for it."""
    with Receiver(200) as receiver:
        job = create(api, callback_url=receiver.url).json()
        finish(job)
        settings.JOBS_CALLBACK_ALLOWED_HOSTS = ["hooks.example.com"]
        assert callbacks.deliver_due(limit=10) == 1
    assert receiver.received == []
    [event] = events(api, job["id"])
    assert event["data"]["delivered"] is False and "JOBS_CALLBACK_ALLOWED_HOSTS" in event["data"]["error"]


def test_every_due_callback_gets_its_attempt_in_one_pass(api, allowed, raw):
    with Receiver(204) as receiver:
        jobs = [create(api, callback_url=receiver.url).json() for _ in range(3)]
        for job in jobs:
            finish(job)
        raw.execute(
            "SELECT count(*) FROM jobs_callback WHERE delivered_at IS NULL AND gave_up_at IS NULL AND due_at <= now()"
        )
        due = raw.fetchone()[0]
        assert callbacks.deliver_due(limit=due + 10) == due >= 3
    assert {json.loads(d["body"])["id"] for d in receiver.received} >= {job["id"] for job in jobs}


def test_a_receiver_slower_than_the_timeout_is_a_failed_attempt(api, allowed, settings):
    """A receiver that does not answer in JOBS_CALLBACK_TIMEOUT does not hold the deliverer."""
    import http.server
    import threading
    import time

    settings.JOBS = {**settings.JOBS, "CALLBACK_TIMEOUT": 0.5}
    answer = threading.Event()

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            answer.wait(timeout=10)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        job = create(api, callback_url=url).json()
        finish(job)
        started = time.monotonic()
        callbacks.deliver_due(limit=10)
        assert time.monotonic() - started < 5
    finally:
        answer.set()
        server.shutdown()
    [event] = events(api, job["id"])
    assert event["data"]["delivered"] is False and event["data"]["error"].startswith("TimeoutError: no complete answer")
