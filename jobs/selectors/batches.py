"""Reads about batches: one batch with its counts, a page of batches, a batch's history,
the active ones for the monitor and /metrics (``jobs/sql/batches.sql``). A batch's jobs
are read with the job selectors (``JobFilters(batch=…)``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from jobs import db
from jobs.domain import App, Batch, BatchEvent
from jobs.exceptions import BatchNotFound

from .jobs import _visible_to


def batch_get(*, app: App, batch_id: uuid.UUID) -> Batch:
    """A batch of ``app`` (an admin token: of any application), with its counts."""
    row = db.fetch_one("batch_get", id=batch_id, app_id=_visible_to(app))
    if row is None:
        raise BatchNotFound()
    return Batch.from_row(row)


def batch_get_any(*, batch_id: uuid.UUID) -> Batch:
    """A batch of any application (the dashboard, and the platform reporting it to its callback)."""
    row = db.fetch_one("batch_get", id=batch_id, app_id=None)
    if row is None:
        raise BatchNotFound()
    return Batch.from_row(row)


def batch_list(
    *, app: App | None, before: tuple[datetime, uuid.UUID] | None = None, limit: int = 50, app_name: str | None = None
) -> list[Batch]:
    """An application's batches, newest first, each with its counts; ``before`` is the
    keyset cursor. An admin token (or ``app`` None: the dashboard) sees every
    application's, or those of ``app_name``."""
    rows = db.fetch_all(
        "batch_list",
        app_id=None if app is None else _visible_to(app),
        app_name=app_name if app is None or app.is_admin else None,
        before_created_at=before[0] if before else None,
        before_id=before[1] if before else None,
        limit=limit,
    )
    return [Batch.from_row(row) for row in rows]


def batch_events(*, app: App | None, batch_id: uuid.UUID) -> list[BatchEvent]:
    """A batch's own history, oldest first (``app`` None: whichever application owns it)."""
    rows = db.fetch_all("batch_events", id=batch_id, app_id=None if app is None else _visible_to(app))
    if not rows:
        # Every batch has at least its 'created' event: no rows means no such batch here.
        raise BatchNotFound()
    return [BatchEvent.from_row(row) for row in rows]


def batches_active(*, limit: int = 10) -> dict[str, Any]:
    """The monitor's view of batches: how many are active, and the ``limit`` oldest of them
    with their counts."""
    rows = db.fetch_all("batch_active", limit=limit)
    return {"active": int(rows[0]["active"]) if rows else 0, "batches": rows}


def batches_metrics() -> dict[str, int]:
    """Batches per state and the unfinished jobs of the active ones, for /metrics."""
    row = db.fetch_one("metrics_batches")
    assert row is not None  # an aggregate always answers one row
    return {name: int(row[name]) for name in ("active", "finished", "unfinished_jobs")}
