"""The platform's records as plain values: no ORM, built from query rows."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, ClassVar, Self


def iso_utc(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, as DRF's DateTimeField writes it: every instant the API
    answers, in resources and in the event data it stores, reads the same."""
    if value is None:
        return None
    text = value.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


class Record:
    """A record built from a query row: each field from the column of its name (a column
    the query did not select leaves the field's default); ``CONVERT`` turns a column's
    value into the field's type (``None`` stays ``None``)."""

    CONVERT: ClassVar[dict[str, Callable[[Any], Any]]] = {}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Self:
        values = {f.name: row[f.name] for f in fields(cls) if f.name in row}  # type: ignore[arg-type]
        for name, convert in cls.CONVERT.items():
            if values.get(name) is not None:
                values[name] = convert(values[name])
        return cls(**values)


class Status(enum.StrEnum):
    #: Waiting for ``run_at`` (a requested start time or a retry backoff).
    SCHEDULED = "scheduled"
    #: Waiting for a worker.
    QUEUED = "queued"
    #: A worker runs it; ``attempts`` counts this run.
    RUNNING = "running"
    #: Finished with a result.
    SUCCEEDED = "succeeded"
    #: Finished with an error after its last attempt (or a non-retryable error).
    FAILED = "failed"
    #: Cancelled by its application.
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED})


class EventKind(enum.StrEnum):
    """What one entry of a job's history (``jobs_event.kind``) records. A SQL ``CHECK``
    refuses any other (migration 0013; a test compares it with this enum), and the
    OpenAPI document lists these."""

    #: The job was created (``data.type``).
    CREATED = "created"
    #: It waits for its ``run_at`` or a retry's backoff (``data.run_at``).
    SCHEDULED = "scheduled"
    #: It waits for a worker.
    QUEUED = "queued"
    #: An attempt started (``attempt``, ``data.worker``).
    STARTED = "started"
    #: Progress crossed 25, 50 or 75 % (``data.percent``, ``data.message``).
    PROGRESS = "progress"
    #: The running attempt stored a checkpoint (``data.bytes``; ``data.state`` when small;
    #: ``data.skipped``: checkpoints stored since the previous such event, with no event of
    #: their own). At most one per ``JOBS_CHECKPOINT_EVENT_INTERVAL`` per attempt.
    CHECKPOINT = "checkpoint"
    #: An attempt failed and another is scheduled (``data.error``, ``data.delay``, ``data.run_at``).
    RETRIED = "retried"
    #: Its worker stopped responding; it was queued again (``data.error``, ``data.worker``).
    RESCUED = "rescued"
    #: Its delivery was lost; it got a new one (``data.previous_envelope``).
    REDELIVERED = "redelivered"
    #: Its application asked a running attempt to stop.
    CANCEL_REQUESTED = "cancel_requested"
    #: It ended with a result.
    SUCCEEDED = "succeeded"
    #: It ended with an error (``data``: the error).
    FAILED = "failed"
    #: It ended cancelled.
    CANCELLED = "cancelled"
    #: A completion callback delivery (``data.url``, ``data.delivery``, ``data.status``, ``data.delivered``).
    CALLBACK = "callback"
    #: A new job re-runs this one (``data.job``: its id; ``data.resumed``: it starts from
    #: this job's checkpoint). This job itself is unchanged.
    RERUN = "rerun"


def event_kind_check(kinds: tuple[str, ...]) -> str:
    """The SQL that makes ``jobs_event.kind`` one of ``kinds`` (a migration passes the
    kinds of its time; ``tests/integration/test_store.py`` compares the database's with
    :class:`EventKind`)."""
    listed = ", ".join("'" + kind.replace("'", "''") + "'" for kind in kinds)
    return (
        "ALTER TABLE jobs_event DROP CONSTRAINT IF EXISTS jobs_event_kind_known;\n"
        # NOT VALID: the history is never pruned, and checking every row would hold writes
        # off meanwhile; migration 0020 validates it (a lock that lets jobs be written).
        f"ALTER TABLE jobs_event ADD CONSTRAINT jobs_event_kind_known CHECK (kind IN ({listed})) NOT VALID;"
    )


class Scope(enum.StrEnum):
    """What a token may do (``issue_token --scope``; stored in ``jobs_token.scopes``)."""

    #: Read its application's jobs, their events and the job types.
    READ = "jobs:read"
    #: Create and cancel its application's jobs.
    WRITE = "jobs:write"
    #: Read every application's jobs (operators, the monitor, the dashboard).
    ADMIN = "admin"


#: The scopes of a token issued without ``--scope``.
DEFAULT_SCOPES = frozenset({Scope.READ, Scope.WRITE})


@dataclass(frozen=True)
class Job(Record):
    id: uuid.UUID
    app_id: uuid.UUID
    type: str
    params: dict[str, Any]
    metadata: dict[str, Any]
    status: Status
    progress: dict[str, Any] | None
    result: Any
    error: dict[str, Any] | None
    attempts: int
    max_attempts: int
    timeout_seconds: int
    run_at: datetime | None
    lease_expires_at: datetime | None
    worker: str | None
    envelope_id: int | None
    enqueued_at: datetime | None
    cancel_requested_at: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    idempotency_key: str | None = None
    request_hash: str | None = None
    queue: str = "default"
    callback_url: str | None = None
    #: The batch it was created in (``POST /batches``), if any.
    batch_id: uuid.UUID | None = None
    #: The schedule that created it, and the fire time it was created for (else None).
    schedule_id: uuid.UUID | None = None
    fire_time: datetime | None = None
    #: The latest checkpoint's state (any JSON) and when it was stored (None: none yet).
    checkpoint: Any = None
    checkpoint_at: datetime | None = None
    #: The job this one re-runs (``POST /jobs/{id}/rerun``).
    rerun_of: uuid.UUID | None = None
    #: Lines in the job's log, and lines dropped over its bounds (counted, never silently).
    log_lines: int = 0
    log_dropped: int = 0

    CONVERT = {"status": Status}


@dataclass(frozen=True)
class AdminJob(Job):
    """A job as an operator sees it (the dashboard reads every application's jobs)."""

    #: The name of the application that owns the job.
    app_name: str = ""
    #: The id of the job's latest event, when the query asked for it.
    last_event_id: int | None = None


@dataclass(frozen=True)
class JobEvent(Record):
    id: int
    at: datetime
    kind: str
    attempt: int
    data: dict[str, Any]


class LogLevel(enum.StrEnum):
    """The level of a job's log line (``ctx.log(..., level=...)``), least severe first."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"

    def and_above(self) -> list[LogLevel]:
        """This level and every more severe one (``GET /jobs/{id}/logs?level=``)."""
        levels = list(LogLevel)
        return levels[levels.index(self) :]


@dataclass(frozen=True)
class LogLine(Record):
    """One line of a job's log (``jobs_log``)."""

    id: int
    attempt: int
    at: datetime
    level: str
    message: str
    fields: dict[str, Any]


@dataclass(frozen=True)
class App:
    """An authenticated application (what ``request.user`` holds in the API)."""

    id: uuid.UUID
    name: str
    token_id: uuid.UUID
    scopes: frozenset[Scope] = DEFAULT_SCOPES

    is_authenticated = True
    is_anonymous = False

    @property
    def username(self) -> str:  # the browsable API shows it in its header
        return self.name

    def __str__(self) -> str:
        return self.name

    @property
    def is_admin(self) -> bool:
        return Scope.ADMIN in self.scopes

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> App:
        """From a token query's row (``app_id``, ``app_name``, ``token_id``, ``scopes``)."""
        return cls(
            id=row["app_id"],
            name=row["app_name"],
            token_id=row["token_id"],
            scopes=frozenset(Scope(s) for s in row["scopes"]),
        )


@dataclass(frozen=True)
class Token(Record):
    id: uuid.UUID
    prefix: str
    app_name: str
    created_at: datetime
    revoked_at: datetime | None
    scopes: tuple[Scope, ...] = tuple(sorted(DEFAULT_SCOPES))

    CONVERT = {"scopes": lambda names: tuple(sorted(Scope(name) for name in names))}


# -- batches ---------------------------------------------------------------------------------
class BatchEventKind(enum.StrEnum):
    """What one entry of a batch's own history (``jobs_batch_event.kind``) records; a SQL
    ``CHECK`` refuses any other (migration 0018; a test compares it with this enum)."""

    #: The batch and all its jobs were created (``data.jobs``).
    CREATED = "created"
    #: Its application asked for it to be cancelled (``data.unfinished``: jobs not yet ended).
    CANCEL_REQUESTED = "cancel_requested"
    #: Its last job ended (``data.jobs``).
    FINISHED = "finished"
    #: A delivery of its callback (``data.url``, ``data.delivery``, ``data.status``, ``data.delivered``).
    CALLBACK = "callback"


class BatchState(enum.StrEnum):
    #: Some of its jobs have not ended yet.
    ACTIVE = "active"
    #: Every one of its jobs has ended (whatever the outcome).
    FINISHED = "finished"


@dataclass(frozen=True)
class Batch(Record):
    """Jobs created together (``POST /batches``), followed as one."""

    id: uuid.UUID
    app_id: uuid.UUID
    metadata: dict[str, Any]
    callback_url: str | None
    total: int
    #: Jobs not yet ended; 0 exactly when ``finished_at`` is set.
    unfinished: int
    cancel_requested_at: datetime | None
    created_at: datetime
    finished_at: datetime | None
    updated_at: datetime
    idempotency_key: str | None = None
    request_hash: str | None = None
    #: Its jobs per status, when the query counted them.
    counts: dict[str, int] = field(default_factory=dict)
    #: The mean progress of its jobs in percent (a finished job counts 100).
    percent: float = 0.0
    app_name: str = ""

    @property
    def state(self) -> BatchState:
        return BatchState.FINISHED if self.unfinished == 0 else BatchState.ACTIVE


@dataclass(frozen=True)
class BatchEvent(Record):
    id: int
    at: datetime
    kind: str
    data: dict[str, Any]


# -- schedules ------------------------------------------------------------------------------
class ScheduleState(enum.StrEnum):
    #: Fires at its fire times.
    ACTIVE = "active"
    #: Fires nothing until resumed (the fire times meanwhile are not fired).
    PAUSED = "paused"
    #: Never fires again and never changes again (schedules are ended, never deleted).
    ENDED = "ended"


class CatchUp(enum.StrEnum):
    """What a schedule does with fire times missed while no cluster could fire them (a
    fire time more than ``JOBS_SCHEDULE_MISFIRE_GRACE`` seconds old when a pass reaches it)."""

    #: One job for all of them, carrying the latest missed fire time.
    ONCE = "once"
    #: No job for any of them; the next fire time fires as usual.
    SKIP = "skip"


class ScheduleEventKind(enum.StrEnum):
    """What one entry of a schedule's history (``jobs_schedule_event.kind``) records; a SQL
    ``CHECK`` refuses any other (migration 0017; a test compares it with this enum)."""

    #: The schedule was created (``data``: its definition and first fire time).
    CREATED = "created"
    #: Its definition changed (``data.changed``: the new values; ``data.next_fire_at``).
    CHANGED = "changed"
    #: It was paused.
    PAUSED = "paused"
    #: It was resumed (``data.next_fire_at``).
    RESUMED = "resumed"
    #: It ended (``data.reason``: ``requested``, ``ends_at`` or ``no_more_fire_times``).
    ENDED = "ended"
    #: A fire time created its job (``data.fire_time``, ``data.job_id``).
    FIRED = "fired"
    #: Missed fire times became one job (``data.fire_time``, ``data.job_id``, ``data.missed``).
    FOLDED = "folded"
    #: Fire times that created no job (``data.reason``: ``catch_up`` or ``too_many_unfinished``; ``data.missed``).
    SKIPPED = "skipped"
    #: A pass could not fire it (``data.error``); it is tried again at ``data.retry_at``
    #: (the fire times meanwhile follow its ``catch_up``).
    FAILED = "failed"


@dataclass(frozen=True)
class Schedule(Record):
    id: uuid.UUID
    app_id: uuid.UUID
    name: str | None
    state: ScheduleState
    cron: str | None
    timezone: str | None
    every_seconds: int | None
    catch_up: CatchUp
    #: The validated job body each fire time creates a job from.
    job: dict[str, Any]
    metadata: dict[str, Any]
    starts_at: datetime | None
    ends_at: datetime | None
    next_fire_at: datetime | None
    last_fire_at: datetime | None
    last_job_id: uuid.UUID | None
    fires: int
    created_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    #: The status of ``last_job_id`` (when the query joined it).
    last_job_status: Status | None = None
    #: The owning application's name (when the query joined it).
    app_name: str = ""
    #: When a maintenance pass first failed on ``next_fire_at`` (None: it is not failing).
    failed_at: datetime | None = None
    #: Until when passes leave it alone after that failure (None: the next pass tries it).
    failing_until: datetime | None = None

    CONVERT = {"state": ScheduleState, "catch_up": CatchUp, "last_job_status": Status}


@dataclass(frozen=True)
class ScheduleEvent(Record):
    id: int
    at: datetime
    kind: str
    data: dict[str, Any]
