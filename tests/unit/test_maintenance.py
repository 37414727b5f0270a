"""The maintenance transitions' decisions with the store and the queue mocked (no
database, no sleeping)."""

from __future__ import annotations

import uuid

import pytest

from jobs import services
from jobs.runtime import maintenance


@pytest.fixture
def job_queue(job_queue):
    """The unit tests' queue mock (tests/unit/conftest.py), its envelopes all alike."""
    job_queue.envelope.side_effect = None
    job_queue.envelope.return_value = {"envelope_key": "q", "envelope_payload": "signed"}
    return job_queue


def expired(**overrides):
    row = {
        "id": uuid.uuid4(),
        "type": "fibonacci",
        "attempts": 1,
        "max_attempts": 3,
        "timeout_seconds": 60,
        "worker": "h:1",
        "queue": "default",
    }
    return row | {"cancel_requested": False} | overrides


def writes(store):
    return [(c.args[0], c.kwargs) for c in store.fetch_one.call_args_list]


def test_attempts_left__requeued_with_new_envelope(store, job_queue):
    row = expired()
    store.fetch_all.return_value = [row]
    assert services.jobs_rescue_expired(limit=100) == 1
    [(name, params)] = writes(store)
    assert name == "job_rescue_requeue" and params["envelope_payload"] == "signed" and params["attempt"] == 1
    job_queue.envelope.assert_called_once_with(row["id"], timeout=60, queue="default")


def test_attempts_spent__failed_without_envelope(store, job_queue):
    store.fetch_all.return_value = [expired(attempts=3)]
    services.jobs_rescue_expired(limit=100)
    [(name, params)] = writes(store)
    assert name == "job_rescue_fail" and params["status"] == "failed"
    assert params["error"]["type"] == "WorkerLost"
    job_queue.envelope.assert_not_called()


def test_cancel_requested__cancelled(store, job_queue):
    store.fetch_all.return_value = [expired(cancel_requested=True)]
    services.jobs_rescue_expired(limit=100)
    [(name, params)] = writes(store)
    assert name == "job_rescue_fail" and params["status"] == "cancelled"


def test_nothing_expired__nothing_written(store, job_queue):
    store.fetch_all.return_value = []
    assert services.jobs_rescue_expired(limit=100) == 0
    store.fetch_one.assert_not_called()


def test_redelivery_uses_the_settings(store, job_queue, settings):
    """A maintenance pass hands redelivery the JOBS and Q_CLUSTER settings."""
    settings.JOBS = {**settings.JOBS, "REDELIVER_AFTER": 42.0}
    lost = {"id": uuid.uuid4(), "attempts": 0, "timeout_seconds": 9, "envelope_id": 5, "queue": "default"}
    store.fetch_all.side_effect = lambda name, **_: [lost] if name == "job_find_undelivered" else []
    answers = {"job_promote_due": {"promoted": 0}, "schedule_take_due": None}
    store.fetch_one.side_effect = lambda name, **_: answers.get(name, {})
    assert maintenance.tick() == {"rescued": 0, "redelivered": 1, "promoted": 0, "fired": 0}
    found = next(c for c in store.fetch_all.call_args_list if c.args[0] == "job_find_undelivered")
    assert found.kwargs["after"] == 42.0 and found.kwargs["retry"] == settings.Q_CLUSTER["retry"]
    [(name, params)] = [w for w in writes(store) if w[0] not in answers]
    assert name == "job_redeliver" and params["envelope_payload"] == "signed" and params["previous"] == 5
