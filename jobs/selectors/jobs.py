"""Reads about jobs: one job, a page of jobs, a job's history. Each is one query
(``jobs/sql/jobs_read.sql``)."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from jobs import db
from jobs.conf import settings
from jobs.domain import AdminJob, App, Job, JobEvent, Status
from jobs.exceptions import JobNotFound


def _visible_to(app: App) -> uuid.UUID | None:
    """The application whose jobs ``app`` may read: its own, or (admin scope) any (None)."""
    return None if app.is_admin else app.id


def job_get(*, app: App, job_id: uuid.UUID) -> Job:
    """A job of ``app`` (an admin token: of any application)."""
    row = db.fetch_one("job_get", id=job_id, app_id=_visible_to(app))
    if row is None:
        raise JobNotFound()
    return Job.from_row(row)


def job_for_callback(*, job_id: uuid.UUID) -> Job:
    """A job of any application (the platform itself reports it to its callback)."""
    row = db.fetch_one("job_get", id=job_id, app_id=None)
    if row is None:
        raise JobNotFound()
    return Job.from_row(row)


@dataclass(frozen=True)
class JobFilters:
    """What a page of jobs can be narrowed to; each filter is optional. ``status`` is one
    status or several (any of them); ``created_after`` / ``created_before`` are exclusive
    bounds on ``created_at``; ``metadata`` matches jobs whose metadata contains it;
    ``batch`` keeps the jobs of one batch."""

    status: Status | Collection[Status] | None = None
    type: str | None = None
    queue: str | None = None
    metadata: dict[str, Any] | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    batch: uuid.UUID | None = None

    def query_params(self, *, before: tuple[datetime, uuid.UUID] | None, limit: int) -> dict[str, Any]:
        """The list queries' parameters (``job_list`` and ``job_list_all`` filter alike)."""
        statuses = [self.status] if isinstance(self.status, Status) else list(self.status or [])
        return {
            "statuses": ",".join(s.value for s in statuses) or None,
            "type": self.type,
            "queue": self.queue,
            "created_after": self.created_after,
            "created_before": self.created_before,
            "metadata": db.as_json(self.metadata) if self.metadata else None,
            "batch_id": self.batch,
            "before_created_at": before[0] if before else None,
            "before_id": before[1] if before else None,
            "limit": limit,
            "walk": int(settings.LIST_WALK_ROWS),
        }


NO_FILTERS = JobFilters()


def job_list(
    *,
    app: App,
    filters: JobFilters = NO_FILTERS,
    before: tuple[datetime, uuid.UUID] | None = None,
    limit: int = 50,
    app_name: str | None = None,
) -> list[Job]:
    """An application's jobs, newest first; ``before`` is the keyset cursor. An admin
    token sees every application's jobs, or those of ``app_name``."""
    params = filters.query_params(before=before, limit=limit)
    query = "job_list_by_metadata" if filters.metadata else "job_list"
    rows = db.fetch_all(query, app_id=_visible_to(app), app_name=app_name if app.is_admin else None, **params)
    return [Job.from_row(row) for row in rows]


def job_events(*, app: App, job_id: uuid.UUID, after: int = 0, limit: int | None = None) -> list[JobEvent]:
    """A job's history, oldest first: the entries after entry ``after``, at most ``limit``
    (None: all). JobNotFound when ``app`` may not see such a job."""
    rows = db.fetch_all("job_events", id=job_id, app_id=_visible_to(app), after=after, limit=limit)
    if not rows:
        # Every job has at least its 'created' event: from the first, no rows means no such
        # job here; past the last entry, the job is looked up.
        if after == 0:
            raise JobNotFound()
        job_get(app=app, job_id=job_id)
    return [JobEvent.from_row(row) for row in rows]


# -- every application's jobs (the dashboard: operators with an admin token) ---------------
def job_list_all(
    *, filters: JobFilters = NO_FILTERS, before: tuple[datetime, uuid.UUID] | None = None, limit: int = 50
) -> list[AdminJob]:
    """Every application's jobs, newest first, with ``job_list``'s filters and cursor."""
    rows = db.fetch_all("job_list_all", app_id=None, app_name=None, **filters.query_params(before=before, limit=limit))
    return [cast(AdminJob, AdminJob.from_row(row)) for row in rows]


def job_get_any(*, job_id: uuid.UUID) -> AdminJob:
    """One job, whichever application owns it, with ``last_event_id`` set."""
    row = db.fetch_one("job_get_any", id=job_id, app_id=None)
    if row is None:
        raise JobNotFound()
    return cast(AdminJob, AdminJob.from_row(row))


def job_events_latest(*, job_id: uuid.UUID, limit: int) -> tuple[list[JobEvent], int]:
    """A job's latest ``limit`` history entries, oldest first, whichever application owns
    it, and how many entries it has in all."""
    rows = db.fetch_all("job_events_latest", id=job_id, limit=limit)
    return [JobEvent.from_row(row) for row in rows], (rows[0]["total"] if rows else 0)
