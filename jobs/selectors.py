"""Reads. Each is one query."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from . import db
from .domain import App, Job, JobEvent, Status, Token
from .exceptions import DatabaseUnavailable, JobNotFound
from .services import token_hash


def app_for_token(*, token: str) -> App | None:
    """The application a live token belongs to, or None (unknown or revoked)."""
    row = db.fetch_one("token_authenticate", token_hash=token_hash(token))
    return App.from_row(row) if row else None


def app_for_token_id(*, token_id: uuid.UUID) -> App | None:
    row = db.fetch_one("token_get_live", token_id=token_id)
    return App.from_row(row) if row else None


def token_list() -> list[Token]:
    return [Token.from_row(row) for row in db.fetch_all("token_list")]


def _visible_to(app: App) -> uuid.UUID | None:
    """The application whose jobs ``app`` may read: its own, or (admin scope) any (None)."""
    return None if app.is_admin else app.id


def job_get(*, app: App, job_id: uuid.UUID) -> Job:
    """A job of ``app`` (an admin token: of any application)."""
    row = db.fetch_one("job_get", id=job_id, app_id=_visible_to(app))
    if row is None:
        raise JobNotFound()
    return Job.from_row(row)


def job_list(
    *,
    app: App,
    status: Status | None = None,
    type: str | None = None,
    metadata: dict[str, Any] | None = None,
    before: tuple[datetime, uuid.UUID] | None = None,
    limit: int = 50,
    app_name: str | None = None,
) -> list[Job]:
    """An application's jobs, newest first; ``before`` is the keyset cursor. An admin
    token sees every application's jobs, or those of ``app_name``."""
    rows = db.fetch_all(
        "job_list",
        app_id=_visible_to(app),
        app_name=app_name if app.is_admin else None,
        status=status.value if status else None,
        type=type,
        metadata=db.as_json(metadata) if metadata else None,
        before_created_at=before[0] if before else None,
        before_id=before[1] if before else None,
        limit=limit,
    )
    return [Job.from_row(row) for row in rows]


def job_events(*, app: App, job_id: uuid.UUID) -> list[JobEvent]:
    rows = db.fetch_all("job_events", id=job_id, app_id=_visible_to(app))
    if not rows:
        # Every job has at least its 'created' event: no rows means no such job here.
        raise JobNotFound()
    return [JobEvent.from_row(row) for row in rows]


def platform_stats(*, latest: int = 10) -> dict[str, Any]:
    """What the monitor shows: counts per status and type, oldest wait, latest jobs."""
    oldest = db.fetch_one("stats_oldest_waiting")
    since = oldest["since"] if oldest else None
    return {
        "counts": db.fetch_all("stats_by_status_type"),
        "oldest_queued_seconds": (oldest["now"] - since).total_seconds() if oldest and since else None,
        "latest": db.fetch_all("stats_latest", limit=latest),
    }


def database_health() -> None:
    """Raise DatabaseUnavailable unless the database answers (dropping the dead
    connection, so the next request opens a new one)."""
    try:
        db.fetch_one("health_check")
    except DatabaseUnavailable:
        db.reset()
        raise
