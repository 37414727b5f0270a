"""The dashboard's pure helpers and the conditional-GET rule it shares with the API."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from jobs.api.conditional import job_etag, none_match
from jobs.dashboard.views import count_table, duration
from tests.conftest import make_job


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(None, "-"), (0.04, "0.0 s"), (5.25, "5.2 s"), (42.9, "42 s"), (95, "1 min 35 s"), (7500, "2 h 5 min")],
)
def test_duration(seconds, shown):
    assert duration(seconds) == shown


def test_count_table_has_every_status_as_a_column_and_totals():
    table = count_table(
        [
            {"status": "queued", "type": "pi", "jobs": 2},
            {"status": "failed", "type": "pi", "jobs": 1},
            {"status": "queued", "type": "countdown", "jobs": 4},
        ]
    )
    assert table["statuses"] == ["scheduled", "queued", "running", "succeeded", "failed", "cancelled"]
    assert [(row["type"], row["cells"], row["total"]) for row in table["rows"]] == [
        ("countdown", [0, 4, 0, 0, 0, 0], 4),
        ("pi", [0, 2, 0, 0, 1, 0], 3),
    ]
    assert table["totals"] == [0, 6, 0, 0, 1, 0] and table["total"] == 7


def test_job_etag_follows_updated_at_and_what_else_the_page_shows():
    job = make_job(updated_at=datetime(2026, 11, 29, 0, 0, 1, 250000, tzinfo=UTC))
    assert job_etag(job) == f'"{job.updated_at.timestamp():.6f}"'
    assert job_etag(job, 17) == f'"{job.updated_at.timestamp():.6f}-17"'
    assert job_etag(job, 17) != job_etag(job, 18)


@pytest.mark.parametrize(
    ("header", "matches"),
    [
        (None, False),
        ("", False),
        ('"1.0"', True),
        ('"0.9", "1.0"', True),
        ('W/"1.0"', True),  # If-None-Match compares weakly (RFC 9110)
        ("*", True),
        ('"1.00"', False),
        ("1.0", False),
    ],
)
def test_none_match(header, matches):
    assert none_match(header, '"1.0"') is matches
