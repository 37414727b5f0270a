"""execute_job in this process against the real database: outcomes, retries, cancellation."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from django_q.exceptions import TimeoutException
from rest_framework import serializers

from jobs import selectors, services
from jobs.domain import Status
from jobs.registry import JobType, PermanentError, registry
from jobs.runtime.worker import Outcome, execute_job, worker_name
from tests.crashapp.jobtypes import RaisesUntil
from tests.integration.conftest import new_app

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def test_types():
    class Permanent(JobType):
        name = "test_permanent"

        def run(self, ctx, params):
            raise PermanentError("bad input data")

    class Waits(JobType):
        name = "test_waits"

        def run(self, ctx, params):
            ctx.sleep(60)
            return "not cancelled"

    class PicksItsRetries(JobType):
        """Retries only ConnectionError; its own backoff: base 1000 s, cap 1500 s."""

        name = "test_picky"
        max_attempts = 5
        backoff_base = 1000.0
        backoff_cap = 1500.0

        class Params(serializers.Serializer):
            error = serializers.ChoiceField(choices=["connection", "value"])

        def run(self, ctx, params):
            raise ConnectionError("flaky network") if params["error"] == "connection" else ValueError("bad row")

        def is_retryable(self, exc):
            return isinstance(exc, ConnectionError)

    class Reports(JobType):
        """Reports progress past two milestones; returns what its context says it is."""

        name = "test_reports"

        def run(self, ctx, params):
            ctx.progress(30, "a third")
            ctx.progress(60, "more than half")
            return {"job_id": str(ctx.job_id), "type": ctx.type, "attempt": ctx.attempt}

    class TimesOut(JobType):
        """What django-q2's per-task alarm raises inside a job that runs too long."""

        name = "test_times_out"

        def run(self, ctx, params):
            raise TimeoutException("task exceeded its timeout")

    class LosesItsJob(JobType):
        """Its lease lapses and the job is rescued while it still runs."""

        name = "test_loses_its_job"

        def run(self, ctx, params):
            services.jobs_rescue_expired(limit=100)  # after the test expired the lease
            return "too late"

    class Counted(JobType):
        name = "test_counted"

        class Params(serializers.Serializer):
            n = serializers.IntegerField(min_value=1)

        def run(self, ctx, params):
            return params["n"]

    types = (RaisesUntil, Permanent, Waits, PicksItsRetries, Reports, TimesOut, LosesItsJob, Counted)
    for cls in types:
        registry.register(cls)
    yield
    for cls in types:
        registry._types.pop(cls.name, None)


def make_due(job_id: uuid.UUID) -> None:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("UPDATE jobs_job SET run_at = now() - interval '1 second' WHERE id = %s", [job_id])


def test_success_hands_metadata_to_the_job(test_types):
    app, _ = new_app()
    job = services.job_create(app=app, type="test_flaky", params={"succeed_on": 1}, metadata={"migration": "x"})[0]
    assert execute_job(str(job.id)) == "succeeded"
    done = selectors.job_get(app=app, job_id=job.id)
    assert done.status is Status.SUCCEEDED and done.worker == worker_name()
    assert done.result == {"attempt": 1, "metadata_seen": {"migration": "x"}}
    assert done.progress["percent"] == 100.0
    assert execute_job(str(job.id)) == "skipped"  # a duplicate delivery changes nothing


def test_raises_twice_then_succeeds_with_three_attempts(test_types):
    app, _ = new_app()
    job = services.job_create(app=app, type="test_flaky", params={"succeed_on": 3}, metadata={})[0]
    outcomes = []
    for _ in range(3):
        make_due(job.id)
        outcomes.append(execute_job(str(job.id)))
    assert outcomes == [Outcome.RETRYING, Outcome.RETRYING, Outcome.SUCCEEDED]
    done = selectors.job_get(app=app, job_id=job.id)
    assert done.status is Status.SUCCEEDED and done.attempts == 3
    kinds = [e.kind for e in selectors.job_events(app=app, job_id=job.id)]
    assert kinds.count("retried") == 2 and kinds[-1] == "succeeded"


def test_permanent_error_fails_at_once(test_types):
    app, _ = new_app()
    job = services.job_create(app=app, type="test_permanent", params={}, metadata={})[0]
    execute_job(str(job.id))
    failed = selectors.job_get(app=app, job_id=job.id)
    assert failed.status is Status.FAILED and failed.attempts == 1
    assert failed.error == {"type": "PermanentError", "message": "bad input data"}


def test_cancel_while_running(test_types, settings):
    """ctx.sleep(60) is woken by the heartbeat noticing the cancellation, not left to run out."""
    settings.JOBS = {**getattr(settings, "JOBS", {}), "HEARTBEAT_INTERVAL": 0.2}
    app, _ = new_app()
    job = services.job_create(app=app, type="test_waits", params={}, metadata={})[0]
    outcome = []

    def run_in_thread() -> None:
        from django.db import connection

        try:
            outcome.append(execute_job(str(job.id)))
        finally:
            connection.close()  # this thread's own connection

    runner = threading.Thread(target=run_in_thread)
    runner.start()
    for _ in range(100):
        if selectors.job_get(app=app, job_id=job.id).status is Status.RUNNING:
            break
        threading.Event().wait(0.02)
    asked = time.monotonic()
    services.job_cancel(app=app, job_id=job.id)
    runner.join(timeout=30)
    assert outcome == ["cancelled"]
    # Far less than the 60 s sleep: a heartbeat interval (0.2 s) plus scheduling.
    assert time.monotonic() - asked < 10
    assert selectors.job_get(app=app, job_id=job.id).status is Status.CANCELLED


def test_unknown_type_on_worker_fails_permanently(test_types):
    app, _ = new_app()
    job = services.job_create(app=app, type="test_flaky", params={"succeed_on": 1}, metadata={})[0]
    registry._types.pop("test_flaky")
    execute_job(str(job.id))
    failed = selectors.job_get(app=app, job_id=job.id)
    assert failed.status is Status.FAILED and failed.error["type"] == "UnknownJobType"
    assert failed.attempts == 1 and "test_flaky" in failed.error["message"]


def test_a_result_that_is_not_json_fails_the_job_clearly():
    class ReturnsASet(JobType):
        name = "test_returns_set"

        def run(self, ctx, params):
            return {1, 2}

    registry.register(ReturnsASet)
    try:
        app, _ = new_app()
        job = services.job_create(app=app, type="test_returns_set", params={}, metadata={})[0]
        assert execute_job(str(job.id)) == Outcome.FAILED
        failed = selectors.job_get(app=app, job_id=job.id)
        assert failed.status is Status.FAILED and failed.error["type"] == "InvalidResult"
        assert "not JSON-serialisable" in failed.error["message"]
    finally:
        registry._types.pop("test_returns_set", None)


def test_the_types_is_retryable_decides(test_types):
    app, _ = new_app()
    never = services.job_create(app=app, type="test_picky", params={"error": "value"}, metadata={})[0]
    execute_job(str(never.id))
    failed = selectors.job_get(app=app, job_id=never.id)
    assert failed.status is Status.FAILED and failed.attempts == 1
    assert failed.error == {"type": "ValueError", "message": "bad row"}

    again = services.job_create(app=app, type="test_picky", params={"error": "connection"}, metadata={})[0]
    execute_job(str(again.id))
    retried = selectors.job_get(app=app, job_id=again.id)
    assert retried.status is Status.SCHEDULED and retried.error["type"] == "ConnectionError"


def test_the_types_backoff_base_and_cap_set_the_delay(test_types):
    """Equal jitter: attempt n waits between half and all of min(cap, base * 2^(n-1))."""
    app, _ = new_app()
    job = services.job_create(app=app, type="test_picky", params={"error": "connection"}, metadata={})[0]
    delays = []
    for _ in range(3):
        make_due(job.id)
        execute_job(str(job.id))
        after = selectors.job_get(app=app, job_id=job.id)
        assert after.status is Status.SCHEDULED
        delays.append((after.run_at - after.updated_at).total_seconds())
    assert 500 <= delays[0] <= 1000  # base 1000
    assert 750 <= delays[1] <= 1500  # 2000 capped at 1500
    assert 750 <= delays[2] <= 1500  # 4000 capped at 1500


def test_a_retryable_failure_after_a_cancel_request_is_reported_cancelled_not_retrying(caplog):
    """The outcome (and the transition log line) says what happened: cancelled."""
    app, _ = new_app()

    class FailsAfterCancel(JobType):
        """Its application cancels it while it runs; then it fails with a retryable error."""

        name = "test_fails_after_cancel"

        def run(self, ctx, params):
            services.job_cancel(app=app, job_id=ctx.job_id)
            raise ConnectionError("the target went away")

    registry.register(FailsAfterCancel)
    try:
        job = services.job_create(app=app, type="test_fails_after_cancel", params={}, metadata={})[0]
        with caplog.at_level("INFO", logger="jobs.transitions"):
            assert execute_job(str(job.id)) == Outcome.CANCELLED
    finally:
        registry._types.pop(FailsAfterCancel.name, None)
    assert selectors.job_get(app=app, job_id=job.id).status is Status.CANCELLED
    transitions = [r.getMessage() for r in caplog.records if r.name == "jobs.transitions"]
    assert transitions and not any("retrying" in line for line in transitions), transitions


@pytest.mark.parametrize(
    ("then", "status", "outcome"),
    [
        ("fail", Status.FAILED, Outcome.FAILED),
        ("retry", Status.SCHEDULED, Outcome.RETRYING),
        ("cancel", Status.CANCELLED, Outcome.CANCELLED),
    ],
)
def test_the_latest_progress_the_interval_held_back_reaches_a_job_that_did_not_succeed(then, status, outcome, settings):
    # A migration acknowledges 20,000 rows in well under JOBS_PROGRESS_MIN_INTERVAL, so no
    # progress was written while it ran; then it ends without success. It must not show null.
    settings.JOBS = {**settings.JOBS, "PROGRESS_MIN_INTERVAL": 30.0, "HEARTBEAT_INTERVAL": 0.2}
    app, _ = new_app()

    class ReportsThenStops(JobType):
        name = "test_reports_then_stops"
        max_attempts = 2

        class Params(serializers.Serializer):
            then = serializers.ChoiceField(choices=["fail", "retry", "cancel"])

        def run(self, ctx, params):
            for rows in range(1000, 20_001, 1000):
                ctx.progress(rows / 500, f"{rows} rows acknowledged")
            if params["then"] == "cancel":
                services.job_cancel(app=app, job_id=ctx.job_id)
                ctx.sleep(30)  # the heartbeat tells it, and it stops
            if params["then"] == "retry":
                raise ConnectionError("the target went away")
            raise PermanentError("a row the target refuses")

    registry.register(ReportsThenStops)
    try:
        job = services.job_create(app=app, type="test_reports_then_stops", params={"then": then})[0]
        assert execute_job(str(job.id)) == outcome
    finally:
        registry._types.pop(ReportsThenStops.name, None)
    ended = selectors.job_get(app=app, job_id=job.id)
    assert ended.status is status
    assert ended.progress == {"percent": 40.0, "message": "20000 rows acknowledged"}
    # It crossed the 25 % milestone on the way: the history has it too.
    milestones = [e.data for e in selectors.job_events(app=app, job_id=job.id) if e.kind == "progress"]
    assert milestones == [{"percent": 40.0, "message": "20000 rows acknowledged"}]


def test_the_context_names_the_run_and_its_progress_is_stored(test_types, settings):
    """ctx.job_id is what job types use as an idempotency key: it must be this job's."""
    settings.JOBS = {**settings.JOBS, "PROGRESS_MIN_INTERVAL": 0.0}
    app, _ = new_app()
    job = services.job_create(app=app, type="test_reports", params={}, metadata={})[0]
    assert execute_job(str(job.id)) == Outcome.SUCCEEDED
    done = selectors.job_get(app=app, job_id=job.id)
    assert done.result == {"job_id": str(job.id), "type": "test_reports", "attempt": 1}
    progress = [e.data for e in selectors.job_events(app=app, job_id=job.id) if e.kind == "progress"]
    assert progress == [{"percent": 30.0, "message": "a third"}, {"percent": 60.0, "message": "more than half"}]


def test_params_no_longer_valid_fail_at_once(test_types):
    """The type changed since the job was created: retrying cannot help."""
    app, _ = new_app()
    job = services.job_create(app=app, type="test_counted", params={"n": 3}, metadata={})[0]
    make_due(job.id)
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("""UPDATE jobs_job SET params = '{"n": 0}' WHERE id = %s""", [job.id])
    assert execute_job(str(job.id)) == Outcome.FAILED
    failed = selectors.job_get(app=app, job_id=job.id)
    assert failed.status is Status.FAILED and failed.attempts == 1
    assert failed.error["type"] == "InvalidParams" and "n" in failed.error["message"]


def test_a_timeout_is_recorded_as_a_retryable_failure_and_raised_again_for_django_q2(test_types):
    app, _ = new_app()
    job = services.job_create(app=app, type="test_times_out", params={}, metadata={}, timeout=30)[0]
    with pytest.raises(TimeoutException):  # django-q2 recycles the worker process on it
        execute_job(str(job.id))
    retried = selectors.job_get(app=app, job_id=job.id)
    assert retried.status is Status.SCHEDULED and retried.error["type"] == "JobTimeout"
    assert "exceeded the timeout of 30s" in retried.error["message"]


def test_a_run_that_lost_its_job_writes_nothing_and_says_stale(test_types, monkeypatch):
    from django.db import connection

    app, _ = new_app()
    job = services.job_create(app=app, type="test_loses_its_job", params={}, metadata={})[0]
    real_claim = services.job_claim

    def claim_then_lapse(**kwargs):
        claimed = real_claim(**kwargs)
        with connection.cursor() as cur:
            cur.execute("UPDATE jobs_job SET lease_expires_at = now() - interval '1 second' WHERE id = %s", [job.id])
        return claimed

    monkeypatch.setattr(services, "job_claim", claim_then_lapse)
    assert execute_job(str(job.id)) == Outcome.STALE
    rescued = selectors.job_get(app=app, job_id=job.id)
    assert rescued.status is Status.QUEUED and rescued.result is None and rescued.error["type"] == "WorkerLost"


def test_one_heartbeat_thread_per_process_replaced_if_it_died(monkeypatch):
    from jobs.runtime import heartbeats

    dead = heartbeats.Heartbeats()  # never started: as good as dead
    monkeypatch.setattr(heartbeats, "_heartbeats", dead)
    thread = heartbeats.heartbeats()
    assert thread is not dead and thread.is_alive() and thread.daemon  # a daemon: never holds up an exit
    assert heartbeats.heartbeats() is thread


def test_the_heartbeat_thread_extends_leases_and_relays_cancellation_and_loss(settings, monkeypatch):
    """The heartbeat thread beats for every run it tracks: first after one interval,
    then every interval; it tells the run's context when cancellation was asked, and
    when the run lost its job (and stops beating for it). A thread of the test's own
    (the process's one is started by whichever test runs a job first)."""
    from django.db import connection

    from jobs.exceptions import JobCancelled, StaleRun
    from jobs.runtime.context import JobContext
    from jobs.runtime.heartbeats import Heartbeats

    settings.JOBS = {**settings.JOBS, "HEARTBEAT_INTERVAL": 0.2, "LEASE_SECONDS": 600.0}
    app, _ = new_app()
    job = services.job_create(app=app, type="fibonacci", params={"n": 1}, metadata={})[0]
    run = services.job_claim(job_id=job.id, worker="w")

    def lease_left() -> float:
        with connection.cursor() as cur:
            cur.execute("SELECT extract(epoch FROM lease_expires_at - now()) FROM jobs_job WHERE id = %s", [job.id])
            return float(cur.fetchone()[0])

    with connection.cursor() as cur:
        cur.execute("UPDATE jobs_job SET lease_expires_at = now() + interval '30 seconds' WHERE id = %s", [job.id])
    beats = []
    real_heartbeat = services.job_heartbeat
    monkeypatch.setattr(services, "job_heartbeat", lambda **kw: beats.append(time.monotonic()) or real_heartbeat(**kw))
    ctx = JobContext(job_id=job.id, attempt=run.attempts, job_type=run.type, metadata={}, report=lambda *a: False)
    thread = Heartbeats()
    thread.start()
    tracked = time.monotonic()
    thread.track(run, ctx)
    try:
        deadline = time.monotonic() + 5
        while lease_left() < 500 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lease_left() > 500 and beats[0] - tracked >= 0.15  # not before one interval
        time.sleep(1.0)
        assert 2 <= len(beats) <= 12, len(beats)  # about one every 0.2 s, not a busy loop

        services.job_cancel(app=app, job_id=job.id)
        deadline = time.monotonic() + 5
        while not ctx._cancel.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(JobCancelled):
            ctx.raise_if_cancelled()

        with connection.cursor() as cur:  # the lease lapses and the job is rescued
            cur.execute("UPDATE jobs_job SET lease_expires_at = now() - interval '1 second' WHERE id = %s", [job.id])
        services.jobs_rescue_expired(limit=100)
        deadline = time.monotonic() + 5
        while job.id in thread._runs and time.monotonic() < deadline:
            time.sleep(0.05)
        assert job.id not in thread._runs  # no more beats for a run that lost its job
        with pytest.raises(StaleRun):
            ctx.raise_if_cancelled()
    finally:
        thread.untrack(run)
