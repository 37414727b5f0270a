"""Every request the platform sends has a hard deadline for the whole exchange. A receiver
that drips its answer (a header line every 0.3 s, each well within any per-read socket
timeout, 40 of them: 12 s) is hung up on at the deadline: a callback delivery, and a
migrate_rows batch. Real sockets, the real deliverer and the real outbox."""

from __future__ import annotations

import itertools
import subprocess
import time

import pytest

from jobs import selectors, services
from jobs.jobtypes import migrate_rows as mr
from jobs.runtime import callbacks
from tests.dripping_receiver import DrippingReceiver
from tests.integration.conftest import new_app

pytestmark = pytest.mark.django_db(transaction=True)

#: How late after its deadline a request may end (thread wake-up, a loaded 2-core machine).
SLACK = 1.0


@pytest.fixture(autouse=True)
def only_this_tests_callbacks_due():
    """Callbacks committed by earlier tests stay in the outbox (it refuses DELETE and
    TRUNCATE), some still due: taken here for an hour, so a take below finds this test's."""
    services.callbacks_take(limit=10_000, lease=3600)


def finished_job_with_callback(app, url: str):
    job, _ = services.job_create(app=app, type="fibonacci", params={"n": 1}, callback_url=url)
    running = services.job_claim(job_id=job.id, worker="w")
    services.job_succeed(job=running, result={"value": "1"})
    return job


def test_a_dripping_callback_receiver_is_hung_up_on_at_the_deadline(settings):
    settings.JOBS_CALLBACK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.JOBS = {**settings.JOBS, "CALLBACK_TIMEOUT": 1.0}
    app, _ = new_app()
    with DrippingReceiver(interval=0.3, lines=40) as receiver:
        job = finished_job_with_callback(app, receiver.url)
        [taken] = services.callbacks_take(limit=1, lease=60)
        started = time.monotonic()
        delivered = callbacks.attempt(taken)
        elapsed = time.monotonic() - started
    assert not delivered and elapsed < 1.0 + SLACK, elapsed
    assert len(receiver.requests) == 1
    [event] = [e for e in selectors.job_events(app=app, job_id=job.id) if e.kind == "callback"]
    assert event.data["error"] == "TimeoutError: no complete answer within 1 s" and "status" not in event.data


def test_the_callback_lease_outlasts_the_delivery_so_no_second_deliverer_posts_meanwhile(settings):
    """The review's failure: a delivery held open past its 15 s lease, and another deliverer
    posting the same callback meanwhile. With the deadline (1 s here) and the lease derived
    from it, the attempts to a dripping receiver come one after another, never two at once."""
    settings.JOBS_CALLBACK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.JOBS = {
        **settings.JOBS,
        "CALLBACK_TIMEOUT": 1.0,
        "CALLBACK_BACKOFF_BASE": 0.2,
        "CALLBACK_BACKOFF_CAP": 0.5,
    }
    app, _ = new_app()
    deliverer = callbacks.CallbackDeliverer(concurrency=2, per_host=2, interval=0.1)
    with DrippingReceiver(interval=0.3, lines=40) as receiver:
        finished_job_with_callback(app, receiver.url)
        deliverer.start()
        try:
            time.sleep(8.5)  # the old lease for a 1 s timeout was 7 s: a second POST came at 7 s
        finally:
            deliverer.stopping.set()
    deliverer.stop(timeout=15)
    requests = receiver.requests
    assert len(requests) >= 2, requests  # each attempt ended at its deadline, then was retried
    # Never two at once: each attempt arrived after the one before was hung up on.
    for earlier, later in itertools.pairwise(requests):
        assert later["arrived"] >= earlier["closed"], requests
    durations = [r["closed"] - r["arrived"] for r in requests[:-1]]
    assert all(d < 1.0 + SLACK for d in durations), durations
    assert callbacks.lease() >= 1.0 + 10  # the deadline, and room for the body's query and the record


def test_a_dripping_migration_target_is_hung_up_on_at_the_deadline(settings):
    settings.JOBS = {**settings.JOBS, "MIGRATION_TARGET_TIMEOUT": 1.0}
    with DrippingReceiver(interval=0.3, lines=40) as receiver:
        started = time.monotonic()
        answer = mr.post_batch(receiver.url, b'{"rows": []}', idempotency_key="k", job_id="j")
        elapsed = time.monotonic() - started
    assert elapsed < 1.0 + SLACK, elapsed
    assert answer.status is None and answer.verdict == "retry"
    assert answer.detail == "TimeoutError: no complete answer within 1 s"


def test_an_https_receiver_dripping_its_answer_is_hung_up_on_at_the_deadline(tmp_path, monkeypatch):
    """The same receiver behind TLS. The TLS layer takes the connected socket over (the
    plain one is detached), so the watchdog watches the TLS socket too once connected."""
    from jobs.runtime import outbound

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    files = ["-keyout", str(key), "-out", str(cert)]
    subject = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    openssl = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", *files, *subject]
    subprocess.run(openssl, check=True, capture_output=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts this certificate alone
    with DrippingReceiver(interval=0.3, lines=40, tls=(cert, key)) as receiver:
        started = time.monotonic()
        with pytest.raises(TimeoutError, match="no complete answer within 1 s"):
            outbound.post(receiver.url, b"{}", headers={}, deadline=1.0)
        elapsed = time.monotonic() - started
        # The answer had started: the handshake succeeded and the status line came.
        assert len(receiver.requests) == 1
    assert elapsed < 1.0 + SLACK, elapsed
