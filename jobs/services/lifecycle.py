"""A job's life, in order: create → claim → heartbeat / progress → succeed | fail (retry
or for good) | cancelled; and the application's cancel. (Rescue, redelivery and promotion,
the maintenance transitions, are in ``recovery``.)

Each change is one guarded SQL statement (``UPDATE … WHERE status … RETURNING``, in
``jobs/sql/jobs_write.sql``) that also appends to the job's history and, when the job
needs a delivery, writes its envelope. The worker's writes are fenced by the attempt
number: a write from a run that no longer owns the job raises
:class:`~jobs.exceptions.StaleRun` and changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobs import db, logs
from jobs import queue as queues
from jobs.conf import settings
from jobs.domain import App, Job, Status
from jobs.exceptions import (
    JobAlreadyFinished,
    JobNotFound,
    StaleRun,
    TooManyUnfinishedJobs,
    error_payload,
)
from jobs.inserts import job_create_params
from jobs.registry import JobType

from .backoff import backoff_delay
from .idempotency import earlier_row, idempotent_insert, validated_with_key
from .validation import JobRequest, job_request_validate


# -- create --------------------------------------------------------------------------------
def job_create(
    *,
    app: App,
    type: Any = None,
    queue: Any = None,
    callback_url: Any = None,
    params: Any = None,
    metadata: Any = None,
    max_attempts: Any = None,
    timeout: Any = None,
    run_at: Any = None,
    idempotency_key: str | None = None,
    unknown_fields: Iterable[str] = (),
) -> tuple[Job, bool]:
    """Create a job and its delivery envelope in one statement; return ``(job, created)``.

    Every check and limit applies whoever calls (the API, a command, a plugin). With an
    ``idempotency_key``, a repeat of the same request returns the job the first one
    created (``created`` False); the same key with a different request raises
    :class:`IdempotencyKeyReused`. Concurrent repeats are settled by a unique index.
    """
    fields = {"type": type, "queue": queue, "params": params, "metadata": metadata, "callback_url": callback_url}
    fields |= {"max_attempts": max_attempts, "timeout": timeout, "run_at": run_at}
    request = validated_with_key(
        lambda: job_request_validate(fields, app=app, unknown_fields=unknown_fields), idempotency_key
    )
    return job_create_checked(app=app, request=request, idempotency_key=idempotency_key)


@dataclass(frozen=True)
class JobOrigin:
    """Where a new job comes from when it is not a plain create: the job it re-runs, and
    the checkpoint it starts from (``resume``: the old job's, possibly none)."""

    rerun_of: uuid.UUID
    resume: bool
    checkpoint: Any = None
    checkpoint_at: datetime | None = None

    def fingerprint(self, request: JobRequest) -> str:
        """The request's fingerprint for the Idempotency-Key, telling a re-run from a
        create (and a re-run of another job, or with another ``resume``) with the same fields."""
        text = f"{request.fingerprint()}|rerun_of={self.rerun_of}|resume={self.resume}"
        return hashlib.sha256(text.encode()).hexdigest()


def job_create_checked(
    *, app: App, request: JobRequest, idempotency_key: str | None, origin: JobOrigin | None = None
) -> tuple[Job, bool]:
    """Store a checked request as a new job of ``app`` (``job_create`` once it checked the
    request; a re-run, with its ``origin``); return ``(job, created)``, ``created`` False
    when an earlier request with the same ``idempotency_key`` created it."""
    fingerprint = None
    if idempotency_key is not None:
        fingerprint = request.fingerprint() if origin is None else origin.fingerprint(request)
    job, created = idempotent_insert(
        idempotency_key,
        insert=lambda: _job_insert(app, request, idempotency_key, fingerprint, origin),
        earlier=lambda: _job_for_idempotency_key(app, idempotency_key, fingerprint),
    )
    return (job_created_log(job) if created else job), created


def job_created_log(job: Job) -> Job:
    """The transition log line of a new job (once its transaction committed)."""
    logs.job_transition(job.status.value, job_id=job.id, job_type=job.type, attempt=0, worker=None, app_id=job.app_id)
    return job


def _job_insert(
    app: App, request: JobRequest, idempotency_key: str | None, fingerprint: str | None, origin: JobOrigin | None
) -> Job:
    def insert() -> Job | None:
        return job_insert(
            app_id=app.id, request=request, idempotency_key=idempotency_key, fingerprint=fingerprint, origin=origin
        )

    if origin is None:
        job = insert()  # one statement, atomic on its own
    else:
        with db.atomic():  # the insert adds a 'rerun' entry to the old job's history
            db.fetch_one("job_lock_history", id=origin.rerun_of)
            job = insert()
    if job is None:
        raise TooManyUnfinishedJobs(
            f"The application already has {settings.MAX_UNFINISHED_PER_APP} unfinished jobs "
            "(JOBS_MAX_UNFINISHED_PER_APP); retry once some have finished."
        )
    return job


def job_insert(
    *,
    app_id: uuid.UUID,
    request: JobRequest,
    idempotency_key: str | None = None,
    fingerprint: str | None = None,
    schedule_id: uuid.UUID | None = None,
    fire_time: datetime | None = None,
    origin: JobOrigin | None = None,
) -> Job | None:
    """Insert a validated job with its envelope and first events (one statement,
    ``job_create``); None when its application is at ``JOBS_MAX_UNFINISHED_PER_APP``. A
    schedule's fire passes ``schedule_id`` and ``fire_time``: a second job for the same
    pair raises :class:`AlreadyExists` (the unique index ``jobs_job_schedule_fire``). A
    re-run passes its ``origin``: the job it re-runs gets a ``rerun`` event."""
    job_id = uuid.uuid4()
    # A resumed re-run starts from the old job's checkpoint, taken when it was.
    start = origin if origin is not None and origin.checkpoint_at is not None else None
    row = db.fetch_one(
        "job_create",
        **job_create_params(
            job_id=job_id,
            app_id=app_id,
            type=request.type,
            queue=request.queue,
            callback_url=request.callback_url,
            params=request.params,
            metadata=request.metadata,
            max_attempts=request.max_attempts,
            timeout=request.timeout,
            run_at=request.run_at,
            idempotency_key=idempotency_key,
            request_hash=fingerprint,
            schedule_id=schedule_id,
            fire_time=fire_time,
            rerun_of=origin.rerun_of if origin is not None else None,
            checkpoint=start.checkpoint if start is not None else None,
            checkpoint_at=start.checkpoint_at if start is not None else None,
        ),
    )
    return Job.from_row(row) if row is not None else None


def _job_for_idempotency_key(app: App, key: str, fingerprint: str) -> Job | None:
    row = earlier_row("job_get_by_idempotency_key", app_id=app.id, key=key, fingerprint=fingerprint, named="job_id")
    return Job.from_row(row) if row is not None else None


# -- the worker's writes (each fenced by the attempt number) -------------------------------
def job_claim(*, job_id: uuid.UUID, worker: str) -> Job | None:
    """Start the next attempt of a queued (or due) job; None when it is not claimable:
    already taken, finished, cancelled, or not due yet."""
    cap = settings.MAX_RUNNING_PER_APP
    row = db.fetch_one("job_claim", id=job_id, worker=worker, lease_seconds=settings.LEASE_SECONDS, max_running=cap)
    return Job.from_row(row) if row else None


def job_defer(*, job_id: uuid.UUID) -> bool:
    """After a refused claim: a job still waiting and due was refused because its
    application ran its cap of jobs; offer it again after ``JOBS_FAIRNESS_DEFER_SECONDS``
    (its delivery was spent on the refusal). Returns whether it was deferred (False:
    taken by another run, finished, cancelled, or not due)."""
    job = db.fetch_one("job_get", id=job_id, app_id=None)
    if job is None:
        return False
    row = db.fetch_one(
        "job_defer",
        id=job_id,
        delay=settings.FAIRNESS_DEFER_SECONDS,
        **queues.envelope(job_id, timeout=job["timeout_seconds"], queue=job["queue"]),
    )
    return row is not None


def _fenced(row: dict[str, Any] | None) -> dict[str, Any]:
    if row is None:
        raise StaleRun()
    return row


def job_heartbeat(*, job: Job) -> bool:
    """Extend the lease of this run; return whether cancellation was asked."""
    row = db.fetch_one("job_heartbeat", id=job.id, attempt=job.attempts, lease_seconds=settings.LEASE_SECONDS)
    return bool(_fenced(row)["cancel_requested"])


def job_progress(*, job: Job, percent: float, message: str, milestone: bool) -> bool:
    """Store progress (and extend the lease); return whether cancellation was asked."""
    row = db.fetch_one(
        "job_progress",
        id=job.id,
        attempt=job.attempts,
        progress={"percent": percent, "message": message[: settings.PROGRESS_MESSAGE_MAX]},
        milestone=milestone,
        lease_seconds=settings.LEASE_SECONDS,
    )
    return bool(_fenced(row)["cancel_requested"])


def _job_finish(job: Job, status: Status, *, result: Any = None, error: dict[str, Any] | None = None) -> Job:
    row = db.fetch_one_prepared(
        "job_finish", id=job.id, attempt=job.attempts, status=status.value, result=result, error=error
    )
    return Job.from_row(_fenced(row))


def job_succeed(*, job: Job, result: Any) -> Job:
    """Finish this run with its result. A result that is not JSON raises TypeError or
    ValueError before anything is written."""
    json.dumps(result, allow_nan=False)
    return _job_finish(job, Status.SUCCEEDED, result=db.as_json(result))


def job_fail(*, job: Job, error: BaseException, retryable: bool, job_type: type[JobType] | None = None) -> Job:
    """End this run with an error: retried after a backoff (``scheduled``, with its new
    envelope) while it is retryable and attempts remain — unless its cancellation was
    asked, then ``cancelled`` — else ``failed`` for good."""
    payload = error_payload(error)
    if not (retryable and job.attempts < job.max_attempts):
        return _job_finish(job, Status.FAILED, error=payload)
    base = (job_type and job_type.backoff_base) or settings.BACKOFF_BASE
    cap = (job_type and job_type.backoff_cap) or settings.BACKOFF_CAP
    row = db.fetch_one(
        "job_retry",
        id=job.id,
        attempt=job.attempts,
        error=payload,
        delay=backoff_delay(job.attempts, base=base, cap=cap),
        **queues.envelope(job.id, timeout=job.timeout_seconds, queue=job.queue),
    )
    if row is None:
        # Still this run's, but its application asked it to stop meanwhile: it ends
        # cancelled rather than running again (else StaleRun, from the fenced finish).
        return _job_finish(job, Status.CANCELLED)
    return Job.from_row(row)


def job_cancelled(*, job: Job) -> Job:
    """Finish this run as ``cancelled``: it stopped because cancellation was asked."""
    return _job_finish(job, Status.CANCELLED)


# -- the application's cancel --------------------------------------------------------------
def job_cancel(*, app: App, job_id: uuid.UUID) -> Job:
    """Cancel a waiting job now; ask a running one to stop. 409 when already finished."""
    row = db.fetch_one("job_cancel", id=job_id, app_id=app.id)
    if row is not None:
        return Job.from_row(row)
    existing = db.fetch_one("job_get", id=job_id, app_id=app.id)
    if existing is None:
        raise JobNotFound()
    raise JobAlreadyFinished.cancel_refused(existing["status"])
