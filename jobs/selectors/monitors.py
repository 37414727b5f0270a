"""What the terminal monitors add to the operator's figures: which worker processes are
running jobs, and qinfo's totals (``jobs/sql/monitors.sql``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from jobs import db


def running_by_worker(*, workers: Iterable[str]) -> dict[str, int]:
    """How many jobs each of ``workers`` (``host:pid``, as ``jobs.runtime.worker.worker_name``
    writes it) is running now; a worker running none is left out."""
    names = sorted(set(workers))
    if not names:
        return {}
    return {row["worker"]: int(row["jobs"]) for row in db.fetch_all("monitor_running_by_worker", workers=names)}


def job_totals(*, seconds: int = 24 * 3600) -> dict[str, Any]:
    """Jobs per status (all time), and how many succeeded in the last ``seconds`` with their
    mean run time: the figures qinfo shows in place of django-q2's task table."""
    per_status: dict[str, int] = {}
    for row in db.fetch_all("stats_by_status_type"):
        per_status[row["status"]] = per_status.get(row["status"], 0) + int(row["jobs"])
    recent = db.fetch_one("monitor_succeeded_recently", seconds=seconds)
    assert recent is not None  # an aggregate always answers one row
    return {
        "per_status": per_status,
        "window_seconds": seconds,
        "succeeded_recently": int(recent["jobs"]),
        "mean_run_seconds": float(recent["mean_seconds"]),
    }
