"""Batches with the store and the queue mocked: every fault named by its index, one
statement for the whole batch, the cap, idempotency, cancel's answers, the resource, the
callback body and the monitor's line."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest

from jobs import services
from jobs.domain import Batch
from jobs.exceptions import (
    BatchAlreadyFinished,
    BatchNotFound,
    IdempotencyKeyReused,
    InvalidInput,
    TooManyUnfinishedJobs,
)
from jobs.resources import batch_output

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def batch_row(**overrides):
    values = {
        "id": uuid.uuid4(),
        "app_id": uuid.uuid4(),
        "metadata": {},
        "callback_url": None,
        "total": 2,
        "unfinished": 2,
        "idempotency_key": None,
        "request_hash": None,
        "cancel_requested_at": None,
        "created_at": NOW,
        "finished_at": None,
        "updated_at": NOW,
    }
    return values | overrides


def job(n=1, **extra):
    return {"type": "fibonacci", "params": {"n": n}, **extra}


# -- validation ------------------------------------------------------------------------------
def test_every_fault_of_every_item_is_named_under_its_index():
    items = [job(1), {"type": "nope"}, 7, job(-1, colour="red"), job(2, max_attempts=0, run_at="soon")]
    with pytest.raises(InvalidInput) as info:
        services.batch_request_validate({"jobs": items, "metadata": "x"}, unknown_fields=["extra"])
    assert sorted(info.value.errors) == sorted(
        [
            "extra",
            "metadata",
            "jobs[1].type",
            "jobs[2]",
            "jobs[3].colour",
            "jobs[3].params.n",
            "jobs[4].max_attempts",
            "jobs[4].run_at",
        ]
    )


def test_a_valid_batch_keeps_each_job_as_job_create_would_store_it():
    request = services.batch_request_validate(
        {"jobs": [job(1e3), job(2, timeout=9, metadata={"i": 2})], "metadata": {"m": 1}}
    )
    first, second = request.jobs
    assert first.params == {"n": 1000} and isinstance(first.params["n"], int)
    assert second.timeout == 9 and second.metadata == {"i": 2}
    assert request.metadata == {"m": 1} and request.callback_url is None


@pytest.mark.parametrize("jobs", [None, [], "x", {"type": "pi"}])
def test_jobs_must_be_a_non_empty_list(jobs):
    with pytest.raises(InvalidInput) as info:
        services.batch_request_validate({"jobs": jobs})
    assert list(info.value.errors) == ["jobs"]


def test_more_than_JOBS_BATCH_MAX_jobs_is_refused_before_checking_any(settings):
    settings.JOBS = {**settings.JOBS, "BATCH_MAX": 3}
    with pytest.raises(InvalidInput) as info:
        services.batch_request_validate({"jobs": [job(-1)] * 4})
    assert list(info.value.errors) == ["jobs"]  # the items are not even looked at
    assert "JOBS_BATCH_MAX" in info.value.errors["jobs"][0]


def test_a_batch_larger_than_the_unfinished_cap_can_never_fit(settings):
    settings.JOBS = {**settings.JOBS, "MAX_UNFINISHED_PER_APP": 2}
    with pytest.raises(InvalidInput) as info:
        services.batch_request_validate({"jobs": [job()] * 3})
    assert "JOBS_MAX_UNFINISHED_PER_APP" in info.value.errors["jobs"][0]


def test_the_batch_callback_url_follows_the_job_rule(settings):
    settings.JOBS_CALLBACK_ALLOWED_HOSTS = ["hooks.example"]
    with pytest.raises(InvalidInput) as info:
        services.batch_request_validate({"jobs": [job()], "callback_url": "http://10.0.0.1/x"})
    assert list(info.value.errors) == ["callback_url"]
    ok = services.batch_request_validate({"jobs": [job()], "callback_url": "https://hooks.example/b"})
    assert ok.callback_url == "https://hooks.example/b"


def test_the_fingerprint_tells_requests_apart():
    def fingerprint(body):
        return services.batch_request_validate(body).fingerprint()

    base = {"jobs": [job(1), job(2)], "metadata": {"m": 1}}
    assert fingerprint(base) == fingerprint(json.loads(json.dumps(base)))
    assert fingerprint(base) != fingerprint({**base, "jobs": [job(2), job(1)]})
    assert fingerprint(base) != fingerprint({**base, "metadata": {"m": 2}})


# -- create: one statement --------------------------------------------------------------------
def test_the_whole_batch_is_one_statement_with_each_jobs_envelope(store, job_queue, fake_app):
    store.fetch_one.return_value = batch_row(total=3, unfinished=3)
    batch, created = services.batch_create(app=fake_app, jobs=[job(i) for i in range(3)], metadata={"m": 1})
    assert created and batch.total == 3
    store.fetch_one.assert_called_once()
    name, kwargs = store.fetch_one.call_args.args[0], store.fetch_one.call_args.kwargs
    assert name == "batch_create"
    assert kwargs["metadata"] == {"m": 1} and kwargs["idempotency_key"] is None
    items = kwargs["jobs"]
    assert [item["n"] for item in items] == [0, 1, 2]
    assert [item["params"] for item in items] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert len({item["id"] for item in items}) == 3
    for item in items:
        assert item["envelope_payload"] == f"signed:{item['id']}"  # each envelope carries its own job
    assert job_queue.envelope.call_count == 3


def test_invalid_items_touch_nothing(store, job_queue, fake_app):
    with pytest.raises(InvalidInput):
        services.batch_create(app=fake_app, jobs=[job(1), job(-1)])
    store.fetch_one.assert_not_called()
    job_queue.envelope.assert_not_called()


def test_no_row_back_means_the_batch_would_pass_the_cap(store, job_queue, fake_app, settings):
    settings.JOBS = {**settings.JOBS, "MAX_UNFINISHED_PER_APP": 10}
    store.fetch_one.return_value = None
    with pytest.raises(TooManyUnfinishedJobs, match="nothing was created"):
        services.batch_create(app=fake_app, jobs=[job(1), job(2)])
    assert store.fetch_one.call_args.kwargs["max_unfinished"] == 10


def test_run_at_goes_as_text_in_the_json_array(store, job_queue, fake_app):
    store.fetch_one.return_value = batch_row(total=1, unfinished=1)
    later = datetime.now(UTC) + timedelta(hours=1)
    services.batch_create(app=fake_app, jobs=[job(1, run_at=later.isoformat())])
    [item] = store.fetch_one.call_args.kwargs["jobs"]
    assert datetime.fromisoformat(item["run_at"]) == later
    json.dumps(store.fetch_one.call_args.kwargs["jobs"])  # the whole array is plain JSON


def by_query(answers):
    return lambda name, **kwargs: answers[name](**kwargs) if callable(answers[name]) else answers[name]


def test_a_repeat_with_the_same_key_returns_the_first_batch(store, job_queue, fake_app):
    body = [job(1)]
    fingerprint = services.batch_request_validate({"jobs": body}).fingerprint()
    earlier = batch_row(request_hash=fingerprint, idempotency_key="k")
    store.fetch_one.side_effect = by_query(
        {"batch_get_by_idempotency_key": {"id": earlier["id"], "request_hash": fingerprint}, "batch_get": earlier}
    )
    batch, created = services.batch_create(app=fake_app, jobs=body, idempotency_key="k")
    assert not created and batch.id == earlier["id"]
    assert "batch_create" not in [call.args[0] for call in store.fetch_one.call_args_list]


def test_the_same_key_with_another_request_is_refused(store, job_queue, fake_app):
    store.fetch_one.side_effect = by_query(
        {"batch_get_by_idempotency_key": {"id": uuid.uuid4(), "request_hash": "another"}}
    )
    with pytest.raises(IdempotencyKeyReused):
        services.batch_create(app=fake_app, jobs=[job(1)], idempotency_key="k")


def test_a_bad_idempotency_key_is_named_with_the_other_faults(store, job_queue, fake_app):
    with pytest.raises(InvalidInput) as info:
        services.batch_create(app=fake_app, jobs=[job(-1)], idempotency_key="has space")
    assert sorted(info.value.errors) == ["Idempotency-Key", "jobs[0].params.n"]


# -- cancel ------------------------------------------------------------------------------------
def test_cancel_of_an_unknown_batch_is_not_found(store, fake_app):
    store.fetch_one.side_effect = by_query({"batch_cancel_lock": {}, "batch_cancel_request": None, "batch_get": None})
    with pytest.raises(BatchNotFound):
        services.batch_cancel(app=fake_app, batch_id=uuid.uuid4())


def test_cancel_of_a_finished_batch_is_a_conflict(store, fake_app):
    store.fetch_one.side_effect = by_query(
        {"batch_cancel_lock": {}, "batch_cancel_request": None, "batch_get": batch_row(unfinished=0)}
    )
    with pytest.raises(BatchAlreadyFinished):
        services.batch_cancel(app=fake_app, batch_id=uuid.uuid4())


def test_cancel_when_the_last_jobs_ended_meanwhile_is_a_conflict_too(store, fake_app):
    store.fetch_one.side_effect = by_query(
        {
            "batch_cancel_lock": {},
            "batch_cancel_request": {"batch_id": uuid.uuid4()},
            "batch_cancel_jobs": {"cancelled": 0, "stopping": 0},
            "batch_get": batch_row(unfinished=0),
        }
    )
    with pytest.raises(BatchAlreadyFinished):
        services.batch_cancel(app=fake_app, batch_id=uuid.uuid4())
    assert "batch_cancel_mark" not in [call.args[0] for call in store.fetch_one.call_args_list]


def test_cancel_cancels_the_jobs_then_marks_the_batch_in_one_transaction(store, fake_app):
    store.fetch_one.side_effect = by_query(
        {
            "batch_cancel_lock": {},
            "batch_cancel_request": {"batch_id": 1},
            "batch_cancel_jobs": {"cancelled": 3, "stopping": 1},
            "batch_cancel_mark": {"id": 1},
        }
    )
    assert services.batch_cancel(app=fake_app, batch_id=uuid.uuid4()) == {"cancelled": 3, "stopping": 1}
    assert [call.args[0] for call in store.fetch_one.call_args_list] == [
        "batch_cancel_lock",
        "batch_cancel_request",
        "batch_cancel_jobs",
        "batch_cancel_mark",
    ]
    store.atomic.assert_called_once()


# -- the resource, the callback, the monitor -----------------------------------------------------
def test_the_batch_resource_counts_every_status_and_the_progress():
    batch = Batch.from_row(
        batch_row(total=4, unfinished=1, counts={"succeeded": 2, "failed": 1, "running": 1}, percent=81.254)
    )
    with mock.patch(
        "jobs.resources.reverse", side_effect=lambda name: {"jobs:batch-list": "/batches"}.get(name, "/jobs")
    ):
        output = batch_output(batch, None)
    assert output["state"] == "active"
    assert output["counts"] == {
        "scheduled": 0,
        "queued": 0,
        "running": 1,
        "succeeded": 2,
        "failed": 1,
        "cancelled": 0,
    }
    assert output["progress"] == {"finished": 3, "total": 4, "percent": 81.25}
    assert output["url"].endswith(f"/batches/{batch.id}") and output["events_url"] == output["url"] + "/events"
    assert output["jobs_url"].endswith(f"/jobs?batch={batch.id}")
    assert output["finished_at"] is None and output["created_at"] == "2026-12-01T12:00:00Z"


def test_the_deliverer_posts_the_batch_resource_for_a_batch_callback(settings):
    from jobs.runtime import callbacks

    settings.JOBS_CALLBACK_ALLOWED_HOSTS = ["127.0.0.1"]
    taken = {"id": 5, "job_id": None, "batch_id": uuid.uuid4(), "url": "http://127.0.0.1:9/", "attempts": 1}
    taken["callback_secret"] = "s"
    with (
        mock.patch.object(callbacks.outbox, "body", return_value=b"{}") as body,
        mock.patch.object(callbacks.outbound, "post", side_effect=OSError("refused")),
    ):
        assert callbacks._deliver(taken) == (None, "OSError: refused")
    body.assert_called_once_with(None, batch_id=taken["batch_id"])


def test_the_monitor_shows_a_line_per_active_batch():
    from jobs.management.commands.jobs_top import render_batches

    batch_id = uuid.uuid4()
    row = {
        "id": batch_id,
        "app_name": "etl",
        "total": 50,
        "unfinished": 38,
        "counts": {"queued": 30, "running": 8, "succeeded": 10, "failed": 2},
        "percent": 31.0,
        "created_at": NOW,
        "now": NOW + timedelta(seconds=75),
        "cancel_requested_at": None,
    }
    lines = render_batches({"active": 12, "batches": [row]})
    assert lines[0] == "active batches: 12 (the 1 oldest below)"
    assert str(batch_id) in lines[1] and "etl" in lines[1]
    assert "[######--------------]  31.0%" in lines[1] and "12/50" in lines[1]
    assert lines[1].endswith("1:15  30 queued, 8 running, 10 succeeded, 2 failed")
    assert render_batches({"active": 0, "batches": []}) == ["active batches: 0"]


def test_every_rescuer_ends_jobs_of_several_batches_in_the_same_batch_order(store, job_queue):
    """Ending a batch's job locks the batch row until the rescue commits: two rescuers
    taking batches in different orders could wait on each other."""
    first, second = sorted((uuid.uuid4(), uuid.uuid4()), key=str)
    rows = [
        {"id": uuid.uuid4(), "type": "fibonacci", "attempts": 3, "max_attempts": 3, "timeout_seconds": 60}
        | {"worker": "h:1", "queue": "default", "cancel_requested": False, "batch_id": batch}
        for batch in (second, None, first, second, first)
    ]
    store.fetch_all.return_value = rows
    assert services.jobs_rescue_expired(limit=100) == 5
    ended = {row["id"]: row["batch_id"] for row in rows}
    order = [ended[call.kwargs["id"]] for call in store.fetch_one.call_args_list]
    assert order == [None, first, first, second, second]
