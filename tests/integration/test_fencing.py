"""The attempt fence: a run that no longer owns its job changes nothing, and the run that
owns it still can. The case the fence exists for is an old attempt writing while a newer
attempt of the same job is running (after a rescue and a new claim)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from jobs import selectors, services
from jobs.domain import Job, Status
from jobs.exceptions import StaleRun


def sql(query: str, params: Any = None) -> list[tuple]:
    with connection.cursor() as cur:
        cur.execute(query, params)
        return cur.fetchall() if cur.description else []


class E(Exception):
    pass


def is_stale(write: Callable[[], Any]) -> bool:
    """A fenced write refused because the run no longer owns the job."""
    try:
        write()
    except StaleRun:
        return True
    return False


def snapshot(job_id) -> dict[str, Any]:
    row = sql(
        "SELECT status, attempts, lease_expires_at, progress::text, result::text, error::text, envelope_id,"
        " finished_at, (SELECT count(*) FROM jobs_event WHERE job_id = j.id),"
        " (SELECT count(*) FROM django_q_ormq) FROM jobs_job j WHERE id = %s",
        [job_id],
    )[0]
    names = (
        "status",
        "attempts",
        "lease",
        "progress",
        "result",
        "error",
        "envelope",
        "finished",
        "events",
        "envelopes",
    )
    return dict(zip(names, row, strict=True))


@pytest.fixture
def old_and_new_run(app) -> tuple[Job, Job]:
    """Attempt 1 lost its lease and was rescued; attempt 2 is running now."""
    job = services.job_create(app=app, type="fibonacci", params={"n": 5}, metadata={})[0]
    first = services.job_claim(job_id=job.id, worker="slow-host:1")
    sql("UPDATE jobs_job SET lease_expires_at = now() - interval '1 second' WHERE id = %s", [job.id])
    assert services.jobs_rescue_expired(limit=100) >= 1
    second = services.job_claim(job_id=job.id, worker="new-host:2")
    assert (first.attempts, second.attempts) == (1, 2) and second.status is Status.RUNNING
    # A lease far from what any write sets, so a lease extension always shows up.
    sql("UPDATE jobs_job SET lease_expires_at = now() + interval '1 hour' WHERE id = %s", [job.id])
    return first, second


WRITES: dict[str, Callable[[Job], Any]] = {
    "heartbeat": lambda run: services.job_heartbeat(job=run),
    "progress": lambda run: services.job_progress(job=run, percent=50.0, message="old", milestone=True),
    "succeed": lambda run: services.job_succeed(job=run, result={"from": "old run"}),
    "cancelled": lambda run: services.job_cancelled(job=run),
    "fail": lambda run: services.job_fail(job=run, error=E("old"), retryable=False),
    "retry": lambda run: services.job_fail(job=run, error=E("old"), retryable=True),
}


@pytest.mark.parametrize("write", WRITES)
def test_old_attempt_changes_nothing_while_a_newer_attempt_runs(old_and_new_run, write):
    first, second = old_and_new_run
    before = snapshot(second.id)
    assert is_stale(lambda: WRITES[write](first))
    assert snapshot(second.id) == before


@pytest.mark.parametrize("write", WRITES)
def test_the_current_attempt_can_still_write(old_and_new_run, write):
    """The other half of the fence: the same write from the run that owns the job lands."""
    _, second = old_and_new_run
    before = snapshot(second.id)
    assert not is_stale(lambda: WRITES[write](second))
    assert snapshot(second.id) != before


def test_old_attempt_cannot_cancel_the_newer_one_even_when_cancellation_was_asked(app, old_and_new_run):
    first, second = old_and_new_run
    services.job_cancel(app=app, job_id=second.id)
    assert is_stale(lambda: services.job_cancelled(job=first))
    assert selectors.job_get(app=app, job_id=second.id).status is Status.RUNNING
    assert not is_stale(lambda: services.job_cancelled(job=second))
    assert selectors.job_get(app=app, job_id=second.id).status is Status.CANCELLED


def test_heartbeat_extends_the_lease(app, settings):
    settings.JOBS = {**getattr(settings, "JOBS", {}), "LEASE_SECONDS": 600.0}
    job = services.job_create(app=app, type="fibonacci", params={"n": 5}, metadata={})[0]
    run = services.job_claim(job_id=job.id, worker="w")
    sql("UPDATE jobs_job SET lease_expires_at = now() + interval '1 second' WHERE id = %s", [job.id])
    assert services.job_heartbeat(job=run) is False
    (remaining,) = sql("SELECT extract(epoch FROM lease_expires_at - now()) FROM jobs_job WHERE id = %s", [job.id])[0]
    assert 590 <= remaining <= 600


def test_progress_extends_the_lease_and_records_milestones(app, settings):
    """Progress is also a sign of life: it extends the lease like the heartbeat, and a
    milestone is kept in the job's history."""
    settings.JOBS = {**getattr(settings, "JOBS", {}), "LEASE_SECONDS": 600.0}
    job = services.job_create(app=app, type="fibonacci", params={"n": 5}, metadata={})[0]
    run = services.job_claim(job_id=job.id, worker="w")
    sql("UPDATE jobs_job SET lease_expires_at = now() + interval '1 second' WHERE id = %s", [job.id])
    assert services.job_progress(job=run, percent=10.0, message="first rows", milestone=False) is False
    (remaining,) = sql("SELECT extract(epoch FROM lease_expires_at - now()) FROM jobs_job WHERE id = %s", [job.id])[0]
    assert 590 <= remaining <= 600
    services.job_progress(job=run, percent=30.0, message="a quarter", milestone=True)
    kept = [(e.kind, e.data) for e in selectors.job_events(app=app, job_id=job.id) if e.kind == "progress"]
    assert kept == [("progress", {"percent": 30.0, "message": "a quarter"})]  # the milestone only


def test_a_retryable_failure_after_a_cancel_request_ends_cancelled_not_retried(app, raw):
    job, _ = services.job_create(app=app, type="fibonacci", params={"n": 5})
    run = services.job_claim(job_id=job.id, worker="w")
    services.job_cancel(app=app, job_id=job.id)  # asked while it runs
    raw.execute("SELECT count(*) FROM django_q_ormq")
    envelopes = raw.fetchone()[0]
    ended = services.job_fail(job=run, error=E("transient"), retryable=True)
    assert ended.status is Status.CANCELLED
    raw.execute("SELECT count(*) FROM django_q_ormq")
    assert raw.fetchone()[0] == envelopes  # no new delivery
