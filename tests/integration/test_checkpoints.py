"""Checkpoints against the real database: stored durably and fenced, shown on the job,
recorded in the history (throttled), read back by the next attempt."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection, transaction
from django_q.exceptions import TimeoutException
from rest_framework import serializers

from jobs import db, selectors, services
from jobs.domain import Status
from jobs.exceptions import InvalidCheckpoint, StaleRun
from jobs.registry import JobType, registry
from jobs.runtime.worker import execute_job
from tests.integration.conftest import new_app


def create(app, **kwargs):
    values = {"type": "fibonacci", "params": {"n": 10}} | kwargs
    return services.job_create(app=app, **values)[0]


def claimed(app, **kwargs):
    return services.job_claim(job_id=create(app, **kwargs).id, worker="host:1")


def test_a_checkpoint_is_stored_on_the_job_and_in_its_history(app, api):
    job = claimed(app)
    saved = services.job_checkpoint(job=job, state={"last_id": 41, "done": 41}, event=True)
    assert saved.state == {"last_id": 41, "done": 41} and not saved.cancel_requested
    stored = selectors.job_get(app=app, job_id=job.id)
    assert stored.checkpoint == {"last_id": 41, "done": 41} and stored.checkpoint_at == saved.at

    answer = api.get(f"/jobs/{job.id}").json()
    assert answer["checkpoint"]["state"] == {"last_id": 41, "done": 41}
    assert answer["checkpoint"]["at"].endswith("Z")
    [event] = [e for e in selectors.job_events(app=app, job_id=job.id) if e.kind == "checkpoint"]
    assert event.attempt == 1 and event.data == {"bytes": 24, "skipped": 0, "state": {"last_id": 41, "done": 41}}


def test_a_job_without_a_checkpoint_shows_null(app, api):
    job = create(app)
    assert api.get(f"/jobs/{job.id}").json()["checkpoint"] is None


def test_the_state_is_always_stored_but_the_event_only_when_asked(app):
    job = claimed(app)
    services.job_checkpoint(job=job, state=1, event=True)
    for n in range(2, 6):
        services.job_checkpoint(job=job, state=n, event=False)
    services.job_checkpoint(job=job, state=6, event=True, skipped=4)
    assert selectors.job_get(app=app, job_id=job.id).checkpoint == 6
    events = [e.data for e in selectors.job_events(app=app, job_id=job.id) if e.kind == "checkpoint"]
    assert events == [{"bytes": 1, "skipped": 0, "state": 1}, {"bytes": 1, "skipped": 4, "state": 6}]


def test_a_large_state_is_recorded_in_its_event_by_size_only(app, settings):
    job = claimed(app)
    state = {"ids": list(range(1000))}
    services.job_checkpoint(job=job, state=state, event=True)
    [event] = [e for e in selectors.job_events(app=app, job_id=job.id) if e.kind == "checkpoint"]
    assert event.data["bytes"] > 1024 and "state" not in event.data
    assert selectors.job_get(app=app, job_id=job.id).checkpoint == state


def test_a_stale_attempts_checkpoint_raises_and_changes_nothing(app):
    job = claimed(app)
    services.job_checkpoint(job=job, state={"at": 1}, event=True)
    before = selectors.job_get(app=app, job_id=job.id)
    stale = job.__class__(**{**job.__dict__, "attempts": job.attempts + 1})
    with pytest.raises(StaleRun):
        services.job_checkpoint(job=stale, state={"at": 999}, event=True)
    after = selectors.job_get(app=app, job_id=job.id)
    assert after.checkpoint == {"at": 1} and after.updated_at == before.updated_at
    assert len([e for e in selectors.job_events(app=app, job_id=job.id) if e.kind == "checkpoint"]) == 1
    # The stale run that matters: an older attempt still running while a newer one owns the job.
    with connection.cursor() as cursor:
        cursor.execute("UPDATE jobs_job SET attempts = attempts + 1 WHERE id = %s", [job.id])
    with pytest.raises(StaleRun):
        services.job_checkpoint(job=job, state={"at": 500}, event=True)
    assert selectors.job_get(app=app, job_id=job.id).checkpoint == {"at": 1}
    with connection.cursor() as cursor:
        cursor.execute("UPDATE jobs_job SET attempts = attempts - 1 WHERE id = %s", [job.id])
    # A finished job takes no checkpoint either.
    services.job_succeed(job=job, result=1)
    with pytest.raises(StaleRun):
        services.job_checkpoint(job=job, state={"at": 2}, event=False)


@pytest.mark.parametrize(
    ("state", "reason"),
    [
        ({"rows": "x" * 70_000}, "the limit is 65536"),
        ({"ratio": float("nan")}, "not JSON"),
        ({"handle": object()}, "not JSON"),
        ({"text": "a\x00b"}, "NUL"),
    ],
)
def test_a_state_the_database_cannot_keep_raises_in_the_job_and_stores_nothing(app, state, reason):
    job = claimed(app)
    with pytest.raises(InvalidCheckpoint, match=reason):
        services.job_checkpoint(job=job, state=state, event=True)
    stored = selectors.job_get(app=app, job_id=job.id)
    assert stored.checkpoint is None and stored.checkpoint_at is None


def test_a_checkpoint_extends_the_lease(app, raw):
    job = claimed(app)
    raw.execute("UPDATE jobs_job SET lease_expires_at = now() - interval '1 minute' WHERE id = %s", [job.id])
    services.job_checkpoint(job=job, state={"n": 1}, event=False)
    raw.execute("SELECT lease_expires_at > now() + interval '20 seconds' FROM jobs_job WHERE id = %s", [job.id])
    assert raw.fetchone()[0]


def test_a_checkpoint_commits_durably_even_where_the_session_does_not(app):
    """synchronous_commit=off (an operator's choice for throughput) would let a database
    crash take back a checkpoint the job was told is stored: the statement turns it on."""
    job = claimed(app)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")
        services.job_checkpoint(job=job, state={"n": 1}, event=False)
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")
        services.job_progress(job=job, percent=5, message="", milestone=False)  # progress stays cheap
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "off"


def test_checkpoint_cancel_answer(app):
    job = claimed(app)
    services.job_cancel(app=app, job_id=job.id)
    assert services.job_checkpoint(job=job, state={"n": 1}, event=False).cancel_requested


# -- through the worker: the next attempt resumes -------------------------------------------
class Batches(JobType):
    """Counts to ``total`` in steps, checkpointing each; fails once at ``fail_at``, or runs
    out of time at ``time_out_at`` (attempt 1; what django-q2's alarm raises in the job)."""

    name = "test_batches"

    class Params(serializers.Serializer):
        total = serializers.IntegerField(min_value=1)
        fail_at = serializers.IntegerField(required=False)
        time_out_at = serializers.IntegerField(required=False)

    def run(self, ctx, params):
        state = ctx.checkpoint_state or {"done": 0, "attempts": []}
        seen = {"attempt": ctx.attempt, "started_from": state["done"]}
        state = {**state, "attempts": [*state["attempts"], seen]}
        for step in range(state["done"] + 1, params["total"] + 1):
            if ctx.attempt == 1 and step == params.get("fail_at"):
                raise ConnectionError(f"target down at step {step}")
            if ctx.attempt == 1 and step == params.get("time_out_at"):
                raise TimeoutException("task exceeded its timeout")
            state = {**state, "done": step}
            ctx.checkpoint(state)
            assert ctx.checkpoint_state == state
        return state


@pytest.fixture
def batches():
    registry.register(Batches)
    yield
    registry._types.pop(Batches.name, None)


def make_due(job_id: uuid.UUID) -> None:
    with connection.cursor() as cur:
        cur.execute("UPDATE jobs_job SET run_at = now() - interval '1 second' WHERE id = %s", [job_id])


@pytest.mark.django_db(transaction=True)
def test_the_next_attempt_starts_from_the_checkpoint(batches, settings):
    settings.JOBS = {**settings.JOBS, "CHECKPOINT_EVENT_INTERVAL": 3600}
    app, _ = new_app()
    job = create(app, type="test_batches", params={"total": 10, "fail_at": 7})
    assert execute_job(str(job.id)) == "retrying"
    between = selectors.job_get(app=app, job_id=job.id)
    assert between.checkpoint["done"] == 6
    make_due(job.id)
    assert execute_job(str(job.id)) == "succeeded"
    done = selectors.job_get(app=app, job_id=job.id)
    assert done.status is Status.SUCCEEDED and done.attempts == 2
    assert done.result["attempts"] == [{"attempt": 1, "started_from": 0}, {"attempt": 2, "started_from": 6}]
    assert done.checkpoint["done"] == 10
    # One event per attempt (its first checkpoint), the others counted in the next one.
    history = selectors.job_events(app=app, job_id=job.id)
    events = [(e.attempt, e.data["skipped"]) for e in history if e.kind == "checkpoint"]
    assert events == [(1, 0), (2, 0)]


@pytest.mark.django_db(transaction=True)
def test_the_attempt_after_a_timeout_starts_from_the_checkpoint(batches):
    app, _ = new_app()
    job = create(app, type="test_batches", params={"total": 10, "time_out_at": 4}, timeout=30)
    with pytest.raises(TimeoutException):  # django-q2 recycles the worker process on it
        execute_job(str(job.id))
    between = selectors.job_get(app=app, job_id=job.id)
    assert between.status is Status.SCHEDULED and between.error["type"] == "JobTimeout"
    assert between.checkpoint["done"] == 3
    make_due(job.id)
    assert execute_job(str(job.id)) == "succeeded"
    done = selectors.job_get(app=app, job_id=job.id)
    assert done.result["attempts"] == [{"attempt": 1, "started_from": 0}, {"attempt": 2, "started_from": 3}]


@pytest.mark.django_db(transaction=True)
def test_checkpoint_events_are_throttled_per_attempt(batches, settings):
    settings.JOBS = {**settings.JOBS, "CHECKPOINT_EVENT_INTERVAL": 0}
    app, _ = new_app()
    job = create(app, type="test_batches", params={"total": 5})
    assert execute_job(str(job.id)) == "succeeded"
    kinds = [e.kind for e in selectors.job_events(app=app, job_id=job.id)]
    assert kinds.count("checkpoint") == 5  # no throttle: one per checkpoint


def test_the_first_attempt_sees_no_checkpoint(app):
    job = claimed(app)
    assert job.checkpoint is None and job.checkpoint_at is None
    assert db.fetch_one("job_get", id=job.id, app_id=None)["checkpoint"] is None
