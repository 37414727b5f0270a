"""Retry-After of a job, by status (jobs.api.views.poll_after)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jobs.api.views import MAX_POLL_SECONDS, poll_after
from jobs.domain import Status
from tests.conftest import make_job

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("status", [Status.SUCCEEDED, Status.FAILED, Status.CANCELLED])
def test_none_once_finished(status):
    assert poll_after(make_job(status=status, run_at=NOW + timedelta(hours=1)), NOW) is None


@pytest.mark.parametrize("status", [Status.QUEUED, Status.RUNNING])
def test_the_poll_interval_while_queued_or_running(status, settings):
    settings.JOBS = {**settings.JOBS, "POLL_INTERVAL": 3}
    assert poll_after(make_job(status=status), NOW) == 3


@pytest.mark.parametrize(
    ("run_at", "expected"),
    [
        (NOW + timedelta(seconds=9.2), 10),  # rounded up: asking earlier finds it still scheduled
        (NOW + timedelta(days=7), MAX_POLL_SECONDS),
        (NOW - timedelta(seconds=5), 1),  # due, not yet promoted: soon
    ],
)
def test_until_run_at_while_scheduled(run_at, expected):
    assert poll_after(make_job(status=Status.SCHEDULED, run_at=run_at), NOW) == expected
