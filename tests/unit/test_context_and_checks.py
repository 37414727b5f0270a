"""The job context (progress, cancellation) and the start-up settings checks."""

from __future__ import annotations

import itertools
import uuid
from types import SimpleNamespace

import pytest

from jobs.checks import worker_settings_problems
from jobs.exceptions import StaleRun
from jobs.runtime.context import JobCancelled, JobContext


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_ctx(answer=False):
    calls = []

    def report(percent, message, milestone):
        calls.append((percent, message, milestone))
        if answer is None:  # the write found the run no longer owns the job
            raise StaleRun()
        return answer

    clock = FakeClock()
    ctx = JobContext(job_id=uuid.uuid4(), attempt=1, job_type="t", metadata={"m": 1}, report=report, clock=clock)
    return ctx, calls, clock


def test_a_job_over_in_a_blink_writes_no_progress():
    ctx, calls, _ = make_ctx()
    for step in range(1, 101):
        ctx.progress(step, f"step {step}")
    assert calls == []


def test_progress_is_written_at_most_every_half_second_with_milestones_flagged():
    ctx, calls, clock = make_ctx()
    for step in range(1, 101):
        clock.now += 0.1  # a step every 100 ms
        ctx.progress(step, f"step {step}")
    assert 15 <= len(calls) <= 21
    percent_gaps = [b[0] - a[0] for a, b in itertools.pairwise(calls)]
    assert all(gap >= 4 for gap in percent_gaps)  # about five steps (0.5 s) between writes
    flagged = [percent for percent, _, milestone in calls if milestone]
    assert len(flagged) == 3 and [sum(p >= m for p in flagged) for m in (25, 50, 75)] == [3, 2, 1]


def test_progress_learns_about_cancellation():
    ctx, _, clock = make_ctx(answer=True)
    clock.now += 1
    with pytest.raises(JobCancelled):
        ctx.progress(10)


def test_lost_lease_raises_stale_run():
    ctx, _, clock = make_ctx(answer=None)
    clock.now += 1
    with pytest.raises(StaleRun):
        ctx.progress(10)


def test_sleep_wakes_early_on_cancel():
    ctx, _, _ = make_ctx()
    ctx.cancel_requested()
    with pytest.raises(JobCancelled):
        ctx.sleep(60)


JOBS = SimpleNamespace(MAX_TIMEOUT=7200, LEASE_SECONDS=30.0, HEARTBEAT_INTERVAL=5.0)
GOOD = {"orm": "default", "timeout": 7260, "retry": 7320}


def test_checks__good_settings_pass():
    assert worker_settings_problems(GOOD, JOBS) == []


@pytest.mark.parametrize("broker_class", ["jobs.runtime.broker.ListeningORM", "django_q.brokers.orm.ORM"])
def test_checks__database_broker_classes_pass(broker_class):
    assert worker_settings_problems({**GOOD, "broker_class": broker_class}, JOBS) == []


@pytest.mark.parametrize(
    ("q_cluster", "jobs", "needle"),
    [
        ({**GOOD, "retry": 7260}, JOBS, "must exceed"),
        ({**GOOD, "timeout": 60, "retry": 120}, JOBS, "at least JOBS['MAX_TIMEOUT']"),
        ({**GOOD, "redis": {"host": "x"}}, JOBS, "database broker"),
        ({**GOOD, "broker_class": "django_q.brokers.redis_broker.Redis"}, JOBS, "broker_class"),
        ({**GOOD, "broker_class": "jobs.no_such_module.Broker"}, JOBS, "broker_class"),
        ({k: v for k, v in GOOD.items() if k != "orm"}, JOBS, "database broker"),
        (GOOD, SimpleNamespace(MAX_TIMEOUT=7200, LEASE_SECONDS=6.0, HEARTBEAT_INTERVAL=5.0), "LEASE_SECONDS"),
        ({**GOOD, "sync": True}, JOBS, "sync"),
    ],
)
def test_checks__wrong_combinations_are_refused(q_cluster, jobs, needle):
    problems = worker_settings_problems(q_cluster, jobs)
    assert any(needle in p for p in problems), problems


@pytest.mark.parametrize(("notice", "raised"), [("cancel_requested", JobCancelled), ("lost", StaleRun)])
def test_sleep_wakes_at_once_when_a_write_learns_of_cancellation_or_a_lost_lease(notice, raised):
    import threading
    import time

    ctx, _, _ = make_ctx()
    outcome: list[BaseException] = []

    def sleeper() -> None:
        try:
            ctx.sleep(60)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=sleeper, daemon=True)
    thread.start()
    time.sleep(0.1)
    started = time.monotonic()
    getattr(ctx, notice)()  # what the heartbeat does with its write's answer
    thread.join(timeout=5)
    assert not thread.is_alive() and time.monotonic() - started < 2
    assert len(outcome) == 1 and isinstance(outcome[0], raised)


def test_a_stale_attempts_untrack_keeps_the_next_attempts_heartbeat():
    from jobs.runtime.heartbeats import Heartbeats
    from tests.conftest import make_job

    beats = Heartbeats()  # not started: only its bookkeeping
    first = make_job(attempts=1)
    second = make_job(id=first.id, attempts=2)
    ctx, _, _ = make_ctx()
    beats.track(second, ctx)
    beats.untrack(first)  # a late StaleRun of attempt 1
    assert beats._runs[first.id][0].attempts == 2
    beats.untrack(second)
    assert first.id not in beats._runs


def test_the_progress_the_interval_held_back_is_written_when_the_worker_asks():
    ctx, calls, clock = make_ctx()
    for rows in range(1000, 20_001, 1000):
        ctx.progress(rows / 500, f"{rows} rows acknowledged")
    assert calls == []  # all within the interval
    ctx.flush_progress()
    assert calls == [(40.0, "20000 rows acknowledged", True)]  # with the milestone it crossed
    ctx.flush_progress()
    assert len(calls) == 1  # nothing held back any more
    clock.now += 1
    ctx.progress(50, "written at once")
    ctx.flush_progress()
    assert calls[1:] == [(50.0, "written at once", True)]  # nothing left to write after it


def test_a_stale_run_learns_it_when_its_held_back_progress_is_written():
    ctx, calls, _ = make_ctx(answer=None)
    ctx.progress(10, "held back")
    with pytest.raises(StaleRun):
        ctx.flush_progress()
    assert calls == [(10.0, "held back", False)]
    with pytest.raises(StaleRun):
        ctx.raise_if_cancelled()


def test_progress_lost_to_a_database_outage_is_not_taken_for_a_cancellation(monkeypatch):
    """Progress is best effort: a database blip reports "not cancelled", and the run goes on."""
    from jobs.exceptions import DatabaseUnavailable
    from jobs.runtime import worker
    from tests.conftest import make_job

    def unavailable(**kwargs):
        raise DatabaseUnavailable("the database went away")

    monkeypatch.setattr(worker.services, "job_progress", unavailable)
    monkeypatch.setattr(worker.db, "reset", lambda: None)
    assert worker._report_progress(make_job(attempts=1), 50.0, "half", False) is False
