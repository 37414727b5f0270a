"""The operator's figures: throughput, the monitor's view, /metrics and the database's
health. Each is one query or a few (``jobs/sql/stats.sql``)."""

from __future__ import annotations

from typing import Any

from jobs import db
from jobs.exceptions import DatabaseUnavailable


def throughput(*, seconds: float = 60.0) -> dict[str, int]:
    """Jobs created, succeeded, failed and cancelled within the last ``seconds``."""
    row = db.fetch_one("stats_throughput", seconds=seconds)
    assert row is not None  # an aggregate always answers one row
    return {name: int(row[name]) for name in ("created", "succeeded", "failed", "cancelled")}


def platform_stats(*, latest: int = 10) -> dict[str, Any]:
    """What the monitor shows: counts per status and type, oldest wait, latest jobs."""
    oldest = db.fetch_one("stats_oldest_waiting")
    since = oldest["since"] if oldest else None
    return {
        "counts": db.fetch_all("stats_by_status_type"),
        "oldest_queued_seconds": (oldest["now"] - since).total_seconds() if oldest and since else None,
        "latest": db.fetch_all("stats_latest", limit=latest),
    }


def _float_array(values: tuple[float, ...]) -> str:
    """A PostgreSQL array literal (lists would go as jsonb, see db.adapt)."""
    return "{" + ",".join(repr(float(v)) for v in values) + "}"


def metrics_snapshot(*, run_bounds: tuple[float, ...], wait_bounds: tuple[float, ...]) -> dict[str, Any]:
    """Every job figure /metrics exports, read now (see jobs.metrics.JobsCollector).
    Duration rows are grouped by type and bucket (see the query ``metrics_job_durations``)."""
    return {
        "by_type_status": db.fetch_all("metrics_jobs_by_type_status"),
        "events": db.fetch_all("metrics_event_counts"),
        "oldest": db.fetch_all("metrics_oldest_waiting"),
        "durations": db.fetch_all(
            "metrics_job_durations", run_bounds=_float_array(run_bounds), wait_bounds=_float_array(wait_bounds)
        ),
    }


def database_health() -> None:
    """Raise DatabaseUnavailable unless the database answers (dropping the dead
    connection, so the next request opens a new one)."""
    try:
        db.fetch_one("health_check")
    except DatabaseUnavailable:
        db.reset()
        raise


def monitor_overview(*, window_seconds: int = 60, running: int = 20, failures: int = 5) -> dict[str, Any]:
    """The operator's view beyond ``platform_stats``: jobs finished per status in the last
    ``window_seconds`` (by ``finished_at``), the running jobs with their progress, and the
    latest failures with their error."""
    finished = db.fetch_all("monitor_finished_recently", seconds=window_seconds)
    return {
        "window_seconds": window_seconds,
        "finished": {row["status"]: row["jobs"] for row in finished},
        "running": db.fetch_all("monitor_running", limit=running),
        "failures": db.fetch_all("monitor_recent_failures", limit=failures),
    }


def rate_window(*, key: str, window: int) -> dict[str, Any] | None:
    """A rate counter's hits and seconds to its reset in its running window (None: none)."""
    return db.fetch_one("rate_get", key=key, window=window)
