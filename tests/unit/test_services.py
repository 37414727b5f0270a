"""Services with the store and the queue mocked: validation, one transaction, fencing."""

from __future__ import annotations

import uuid

import pytest

from jobs import selectors, services
from jobs.exceptions import InvalidInput, JobAlreadyFinished, JobNotFound, StaleRun, error_payload
from tests.conftest import make_job


class E(Exception):
    pass


def job_row(**overrides):
    status = overrides.pop("status", "queued")
    job = make_job(**overrides)
    row = {field: getattr(job, field) for field in job.__dataclass_fields__}
    row["status"] = status
    return row


def test_job_create__job_and_envelope_in_one_statement(store, job_queue, fake_app):
    store.fetch_one.return_value = job_row(params={"n": 5}, metadata={"m": 1})

    services.job_create(app=fake_app, type="fibonacci", params={"n": 5}, metadata={"m": 1})

    store.fetch_one.assert_called_once()
    name, kwargs = store.fetch_one.call_args.args[0], store.fetch_one.call_args.kwargs
    assert name == "job_create"
    assert kwargs["envelope_payload"] == f"signed:{kwargs['id']}"  # the envelope carries this job's id
    assert kwargs["run_at"] is None
    assert kwargs["params"] == {"n": 5} and kwargs["metadata"] == {"m": 1}
    assert kwargs["max_attempts"] == 3 and kwargs["timeout_seconds"] == 300
    job_queue.envelope.assert_called_once_with(kwargs["id"], timeout=300, queue="default")


def test_job_create__stores_the_validated_params(store, job_queue, fake_app):
    """1e6 is an integer by the published schema; it is stored as the integer 1000000."""
    store.fetch_one.return_value = job_row()
    services.job_create(app=fake_app, type="fibonacci", params={"n": 1e6}, metadata={})
    stored = store.fetch_one.call_args.kwargs["params"]
    assert stored == {"n": 1000000} and isinstance(stored["n"], int)


@pytest.mark.parametrize(
    ("params", "field"),
    [({}, "params.n"), ({"n": -1}, "params.n"), ({"n": 1_000_001}, "params.n"), ({"n": 1, "x": 2}, "params.x")],
)
def test_job_create__invalid_params_touch_nothing(store, job_queue, fake_app, params, field):
    with pytest.raises(InvalidInput) as info:
        services.job_create(app=fake_app, type="fibonacci", params=params, metadata={})
    assert field in info.value.errors
    job_queue.envelope.assert_not_called()
    store.fetch_one.assert_not_called()


def test_job_create__unknown_type(store, job_queue, fake_app):
    with pytest.raises(InvalidInput) as info:
        services.job_create(app=fake_app, type="nope", params={}, metadata={})
    assert "type" in info.value.errors
    job_queue.envelope.assert_not_called()


def test_job_create__metadata_over_64k_refused(store, job_queue, fake_app):
    with pytest.raises(InvalidInput) as info:
        services.job_create(app=fake_app, type="fibonacci", params={"n": 1}, metadata={"b": "x" * 65536})
    assert "metadata" in info.value.errors
    job_queue.envelope.assert_not_called()


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("metadata", "field"),
    [
        ({"a": "nul\x00"}, "metadata.a"),
        ({"a": [1, float("inf")]}, "metadata.a[1]"),
        ({"a": "\ud800"}, "metadata.a"),
        ({"a": nested(70)}, "metadata.a" + "[0]" * 64),
    ],
)
def test_job_create__unstorable_values_named(store, job_queue, fake_app, metadata, field):
    with pytest.raises(InvalidInput) as info:
        services.job_create(app=fake_app, type="fibonacci", params={"n": 1}, metadata=metadata)
    assert field in info.value.errors


def test_job_create__per_job_overrides_and_run_at(store, job_queue, fake_app):
    from datetime import UTC, datetime, timedelta

    store.fetch_one.return_value = job_row()
    run_at = datetime.now(UTC).replace(microsecond=0) + timedelta(days=7)
    services.job_create(
        app=fake_app, type="countdown", params={"seconds": 1}, metadata={}, max_attempts=5, timeout=9, run_at=run_at
    )
    kwargs = store.fetch_one.call_args.kwargs
    assert (kwargs["max_attempts"], kwargs["timeout_seconds"], kwargs["run_at"]) == (5, 9, run_at)
    assert job_queue.envelope.call_args.kwargs == {"timeout": 9, "queue": "default"}


def test_job_cancel__unknown_is_404_terminal_is_409(store, fake_app):
    store.fetch_one.side_effect = [None, None]
    with pytest.raises(JobNotFound):
        services.job_cancel(app=fake_app, job_id=uuid.uuid4())
    store.fetch_one.side_effect = [None, job_row(status="succeeded")]
    with pytest.raises(JobAlreadyFinished):
        services.job_cancel(app=fake_app, job_id=uuid.uuid4())


def test_token_issue__stores_only_a_hash(store):
    store.fetch_one.side_effect = [
        {"id": uuid.uuid4(), "name": "etl"},
        {"id": uuid.uuid4(), "app_id": uuid.uuid4(), "prefix": "jp_abcdefg", "created_at": None, "revoked_at": None},
    ]
    token, record = services.token_issue(app_name="etl")
    stored = store.fetch_one.call_args.kwargs
    assert token.startswith("jp_") and len(token) > 40
    assert stored["token_hash"] == selectors.token_hash(token) != token
    assert token not in str(store.fetch_one.call_args_list)
    assert record.app_name == "etl"


def test_attempt_failed__retry_while_attempts_remain(store, job_queue):
    job = make_job(attempts=1, max_attempts=3)
    store.fetch_one.return_value = job_row(status="scheduled")
    services.job_fail(job=job, error=E("m"), retryable=True)
    name, kwargs = store.fetch_one.call_args.args[0], store.fetch_one.call_args.kwargs
    assert name == "job_retry"
    assert kwargs["attempt"] == 1 and kwargs["envelope_payload"] == f"signed:{job.id}"
    assert kwargs["error"] == {"type": "E", "message": "m"} and kwargs["delay"] > 0


@pytest.mark.parametrize(("attempts", "retryable"), [(3, True), (1, False)])
def test_attempt_failed__fails_when_spent_or_permanent(store, job_queue, attempts, retryable):
    job = make_job(attempts=attempts, max_attempts=3)
    store.fetch_one_prepared.return_value = job_row(status="failed")  # prepared: on every job's path
    services.job_fail(job=job, error=E("m"), retryable=retryable)
    assert store.fetch_one_prepared.call_args.args[0] == "job_finish"
    assert store.fetch_one_prepared.call_args.kwargs["status"] == "failed"
    job_queue.envelope.assert_not_called()


def test_attempt_failed__stale_run_writes_nothing(store, job_queue):
    store.fetch_one.return_value = None
    store.fetch_one_prepared.return_value = None
    with pytest.raises(StaleRun):
        services.job_fail(job=make_job(attempts=1), error=E("m"), retryable=True)


@pytest.mark.parametrize(("attempt", "low", "high"), [(1, 1.0, 2.0), (2, 2.0, 4.0), (3, 4.0, 8.0), (20, 150.0, 300.0)])
def test_backoff_delay__exponential_with_jitter_and_cap(attempt, low, high):
    assert services.backoff_delay(attempt, base=2, cap=300, rand=0.0) == low
    assert services.backoff_delay(attempt, base=2, cap=300, rand=1.0) == high


def test_error_payload__type_and_message_no_traceback():
    try:
        raise ValueError("bad thing")
    except ValueError as exc:
        assert error_payload(exc) == {"type": "ValueError", "message": "bad thing"}


def test_request_fingerprint__stable_and_sensitive():
    def fingerprint(**values):
        return services.JobRequest(**{"max_attempts": 3, "timeout": 60, "run_at": None, **values}).fingerprint()

    a = fingerprint(type="pi", params={"digits": 5, "x": [1, 2]}, metadata={})
    b = fingerprint(metadata={}, params={"x": [1, 2], "digits": 5}, type="pi")
    c = fingerprint(type="pi", params={"digits": 6, "x": [1, 2]}, metadata={})
    assert a == b != c
