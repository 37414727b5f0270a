"""Reads of a job's log (``jobs/sql/logs.sql``): a page after a line id, oldest first
(to page through it or to tail it), and its latest lines."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass

from jobs import db
from jobs.domain import App, Job, LogLevel, LogLine

from .jobs import job_get, job_get_any


@dataclass(frozen=True)
class LogPage:
    """Lines of a job's log with the job as it was read just before them: once the job
    is finished, no line comes after these (the worker writes the last ones before the
    outcome)."""

    job: Job
    lines: list[LogLine]


def _lines(job_id: uuid.UUID, after: int, limit: int, levels: Collection[LogLevel] | None) -> list[LogLine]:
    rows = db.fetch_all(
        "job_log_page",
        id=job_id,
        after_id=after,
        limit=limit,
        levels=",".join(level.value for level in levels) if levels else None,
    )
    return [LogLine.from_row(row) for row in rows]


def job_log_page(
    *, app: App, job_id: uuid.UUID, after: int = 0, limit: int = 100, levels: Collection[LogLevel] | None = None
) -> LogPage:
    """Up to ``limit`` lines of a job of ``app`` (an admin token: of any application)
    after line ``after``, oldest first, only of ``levels`` if given. JobNotFound otherwise."""
    job = job_get(app=app, job_id=job_id)
    return LogPage(job, _lines(job.id, after, limit, levels))


def job_log_page_any(
    *, job_id: uuid.UUID, after: int = 0, limit: int = 100, levels: Collection[LogLevel] | None = None
) -> LogPage:
    """:func:`job_log_page` for a job of any application (the dashboard, ``jobs_top``)."""
    job = job_get_any(job_id=job_id)
    return LogPage(job, _lines(job.id, after, limit, levels))


def job_log_tail(*, job_id: uuid.UUID, limit: int) -> list[LogLine]:
    """The latest ``limit`` lines of a job's log, oldest first (whichever application owns it)."""
    return [LogLine.from_row(row) for row in db.fetch_all("job_log_tail", id=job_id, limit=limit)]
