"""Reads about schedules: one schedule, a page of them, a schedule's history, and the
operator's figures (the monitor, the dashboard, /metrics). One query each
(``jobs/sql/schedules.sql``)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from jobs import db
from jobs.domain import App, Schedule, ScheduleEvent, ScheduleState
from jobs.exceptions import ScheduleNotFound

from .jobs import _visible_to as visible_to  # one rule for who reads what, in the package


def schedule_get(*, app: App, schedule_id: uuid.UUID) -> Schedule:
    """A schedule of ``app`` (an admin token: of any application), with its last job's status."""
    row = db.fetch_one("schedule_get", id=schedule_id, app_id=visible_to(app))
    if row is None:
        raise ScheduleNotFound()
    return Schedule.from_row(row)


def schedule_get_any(*, schedule_id: uuid.UUID) -> Schedule:
    """A schedule, whichever application owns it (the dashboard)."""
    row = db.fetch_one("schedule_get", id=schedule_id, app_id=None)
    if row is None:
        raise ScheduleNotFound()
    return Schedule.from_row(row)


def schedule_list(
    *,
    app: App | None,
    state: ScheduleState | None = None,
    before: tuple[datetime, uuid.UUID] | None = None,
    limit: int = 50,
) -> list[Schedule]:
    """Schedules newest first (``before``: the keyset cursor), of ``app`` (an admin token,
    or None for the dashboard: every application's)."""
    rows = db.fetch_all(
        "schedule_list",
        app_id=visible_to(app) if app is not None else None,
        state=state.value if state else None,
        before_created_at=before[0] if before else None,
        before_id=before[1] if before else None,
        limit=limit,
    )
    return [Schedule.from_row(row) for row in rows]


def schedule_events(
    *, app: App | None, schedule_id: uuid.UUID, before: int | None = None, limit: int = 50
) -> list[ScheduleEvent]:
    """A page of a schedule's history, newest first (``before``: an event id, the cursor);
    ScheduleNotFound when ``app`` may not read the schedule (None: any application's)."""
    app_id = visible_to(app) if app is not None else None
    if db.fetch_one("schedule_get", id=schedule_id, app_id=app_id) is None:
        raise ScheduleNotFound()
    rows = db.fetch_all("schedule_events", id=schedule_id, app_id=app_id, before_event=before, limit=limit)
    return [ScheduleEvent.from_row(row) for row in rows]


def schedule_overview(*, limit: int = 10) -> list[dict[str, Any]]:
    """Schedules not ended, of every application, soonest next fire first (paused last),
    with their last job's status and the database's clock (``db_now``)."""
    return db.fetch_all("schedule_overview", limit=limit)


def schedule_figures(*, listed: int) -> dict[str, Any]:
    """What /metrics shows of schedules: how many per state, how late the most overdue
    active one is (seconds), jobs they created, the missed fire times by what became of
    them, and the ``listed`` oldest schedules not ended with their own figures."""
    counts = db.fetch_one("schedule_counts")
    assert counts is not None  # an aggregate always answers one row
    return {
        **counts,
        "missed": db.fetch_all("schedule_missed_counts"),
        "schedules": db.fetch_all("schedule_metrics", limit=listed) if listed > 0 else [],
    }
