"""The job context (progress, cancellation) and the start-up settings checks."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest

from jobs.checks import worker_settings_problems
from jobs.context import JobCancelled, JobContext
from jobs.exceptions import StaleRun


def make_ctx(answer=False):
    calls = []

    def report(percent, message, milestone):
        calls.append((percent, message, milestone))
        return answer

    return JobContext(job_id=uuid.uuid4(), attempt=1, job_type="t", metadata={"m": 1}, report=report), calls


def test_progress_writes_are_coalesced_but_milestones_go_through():
    ctx, calls = make_ctx()
    for step in range(1, 101):
        ctx.progress(step, f"step {step}")
    percents = [c[0] for c in calls]
    assert percents[0] == 1
    assert {25.0, 50.0, 75.0, 100.0} <= set(percents)
    assert len(calls) < 10
    assert [c[2] for c in calls if c[0] in (25.0, 50.0, 75.0)] == [True, True, True]


def test_progress_learns_about_cancellation():
    ctx, _ = make_ctx(answer=True)
    with pytest.raises(JobCancelled):
        ctx.progress(10)


def test_lost_lease_raises_stale_run():
    ctx, _ = make_ctx(answer=None)
    with pytest.raises(StaleRun):
        ctx.progress(10)


def test_sleep_wakes_early_on_cancel():
    ctx, _ = make_ctx()
    ctx._observe(True)
    with pytest.raises(JobCancelled):
        ctx.sleep(60)


JOBS = SimpleNamespace(MAX_TIMEOUT=7200, LEASE_SECONDS=30.0, HEARTBEAT_INTERVAL=5.0)
GOOD = {"orm": "default", "timeout": 7260, "retry": 7320}


def test_checks__good_settings_pass():
    assert worker_settings_problems(GOOD, JOBS) == []


@pytest.mark.parametrize(
    ("q_cluster", "jobs", "needle"),
    [
        ({**GOOD, "retry": 7260}, JOBS, "must exceed"),
        ({**GOOD, "timeout": 60, "retry": 120}, JOBS, "at least JOBS['MAX_TIMEOUT']"),
        ({**GOOD, "redis": {"host": "x"}}, JOBS, "database broker"),
        ({k: v for k, v in GOOD.items() if k != "orm"}, JOBS, "database broker"),
        (GOOD, SimpleNamespace(MAX_TIMEOUT=7200, LEASE_SECONDS=6.0, HEARTBEAT_INTERVAL=5.0), "LEASE_SECONDS"),
        ({**GOOD, "sync": True}, JOBS, "sync"),
    ],
)
def test_checks__wrong_combinations_are_refused(q_cluster, jobs, needle):
    problems = worker_settings_problems(q_cluster, jobs)
    assert any(needle in p for p in problems), problems
