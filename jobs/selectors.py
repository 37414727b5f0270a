"""Reads. Each is one query."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any, cast

from . import db
from .conf import settings
from .domain import AdminJob, App, Job, JobEvent, Status, Token
from .exceptions import DatabaseUnavailable, JobNotFound


def token_hash(token: str) -> str:
    """Tokens are 256 random bits, so a plain SHA-256 is enough to store them safely."""
    return hashlib.sha256(token.encode()).hexdigest()


#: token hash → (monotonic expiry, App): a live token seen in the last
#: JOBS_TOKEN_CACHE_SECONDS is not looked up again by this process.
_token_cache: dict[str, tuple[float, App]] = {}
_TOKEN_CACHE_MAX = 10_000


def app_for_token(*, token: str) -> App | None:
    """The application a live token belongs to, or None (unknown or revoked).

    Cached per process for ``JOBS_TOKEN_CACHE_SECONDS`` (0 turns it off): a revoked token
    is refused within that bound (at once in a process that revokes it itself, such as a
    test). Unknown tokens are never cached."""
    digest = token_hash(token)
    ttl = settings.TOKEN_CACHE_SECONDS
    if ttl > 0:
        hit = _token_cache.get(digest)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
    row = db.fetch_one("token_authenticate", token_hash=digest)
    if row is None:
        _token_cache.pop(digest, None)
        return None
    app = App.from_row(row)
    remember_token(token, app)
    return app


def cached_app_for_token(*, token: str) -> App | None:
    """The application a token was found to belong to in the last
    ``JOBS_TOKEN_CACHE_SECONDS`` by this process, without asking the database."""
    if settings.TOKEN_CACHE_SECONDS <= 0:
        return None
    hit = _token_cache.get(token_hash(token))
    return hit[1] if hit is not None and hit[0] > time.monotonic() else None


def remember_token(token: str, app: App) -> None:
    """Remember a token found live (when the cache is on)."""
    ttl = settings.TOKEN_CACHE_SECONDS
    if ttl > 0:
        if len(_token_cache) >= _TOKEN_CACHE_MAX:
            _token_cache.clear()
        _token_cache[token_hash(token)] = (time.monotonic() + ttl, app)


def forget_cached_tokens() -> None:
    """Drop this process's token cache (after a revocation here)."""
    _token_cache.clear()


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


def job_for_callback(*, job_id: uuid.UUID) -> Job:
    """A job of any application (the platform itself reports it to its callback)."""
    row = db.fetch_one("callback_job", id=job_id)
    if row is None:
        raise JobNotFound()
    return Job.from_row(row)


def _list_filters(
    status: Status | Collection[Status] | None,
    type: str | None,
    queue: str | None,
    metadata: dict[str, Any] | None,
    created_after: datetime | None,
    created_before: datetime | None,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> dict[str, Any]:
    """The list queries' parameters (``job_list`` and ``job_list_all`` filter alike)."""
    statuses = [status] if isinstance(status, Status) else list(status or [])
    return {
        "statuses": ",".join(s.value for s in statuses) or None,
        "type": type,
        "queue": queue,
        "created_after": created_after,
        "created_before": created_before,
        "metadata": db.as_json(metadata) if metadata else None,
        "before_created_at": before[0] if before else None,
        "before_id": before[1] if before else None,
        "limit": limit,
    }


def job_list(
    *,
    app: App,
    status: Status | Collection[Status] | None = None,
    type: str | None = None,
    queue: str | None = None,
    metadata: dict[str, Any] | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    before: tuple[datetime, uuid.UUID] | None = None,
    limit: int = 50,
    app_name: str | None = None,
) -> list[Job]:
    """An application's jobs, newest first; ``before`` is the keyset cursor. ``status``
    is one status or several (any of them); ``created_after`` / ``created_before`` are
    exclusive bounds on ``created_at``. An admin token sees every application's jobs, or
    those of ``app_name``."""
    filters = _list_filters(status, type, queue, metadata, created_after, created_before, before, limit)
    rows = db.fetch_all("job_list", app_id=_visible_to(app), app_name=app_name if app.is_admin else None, **filters)
    return [Job.from_row(row) for row in rows]


def job_events(*, app: App, job_id: uuid.UUID) -> list[JobEvent]:
    rows = db.fetch_all("job_events", id=job_id, app_id=_visible_to(app))
    if not rows:
        # Every job has at least its 'created' event: no rows means no such job here.
        raise JobNotFound()
    return [JobEvent.from_row(row) for row in rows]


# -- every application's jobs (the dashboard: operators with an admin token) ---------------
def job_list_all(
    *,
    status: Status | Collection[Status] | None = None,
    type: str | None = None,
    queue: str | None = None,
    metadata: dict[str, Any] | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    before: tuple[datetime, uuid.UUID] | None = None,
    limit: int = 50,
) -> list[AdminJob]:
    """Every application's jobs, newest first, with ``job_list``'s filters and cursor."""
    filters = _list_filters(status, type, queue, metadata, created_after, created_before, before, limit)
    return [cast(AdminJob, AdminJob.from_row(row)) for row in db.fetch_all("job_list_all", **filters)]


def job_get_any(*, job_id: uuid.UUID) -> AdminJob:
    """One job, whichever application owns it, with ``last_event_id`` set."""
    row = db.fetch_one("job_get_any", id=job_id)
    if row is None:
        raise JobNotFound()
    return cast(AdminJob, AdminJob.from_row(row))


def job_events_any(*, job_id: uuid.UUID) -> list[JobEvent]:
    """A job's history, oldest first, whichever application owns it."""
    return [JobEvent.from_row(row) for row in db.fetch_all("job_events_any", id=job_id)]


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
