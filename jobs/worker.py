"""The single task django-q2 ever runs: ``execute_job(job_id)``.

It claims the job (a new attempt with a lease), runs the job type's code with a
heartbeat extending the lease, and records the outcome. Every write goes through
``jobs.services`` and is fenced by the attempt number: when this run no longer owns the
job the service raises ``StaleRun``, and nothing is written.
"""

from __future__ import annotations

import enum
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

from django_q.exceptions import TimeoutException

from . import db, logs, services
from .conf import settings
from .context import JobContext
from .domain import Job, Status
from .exceptions import (
    DatabaseUnavailable,
    InvalidInput,
    InvalidParams,
    InvalidResult,
    JobCancelled,
    JobTimeout,
    StaleRun,
    UnknownJobType,
)
from .registry import JobType, registry

logger = logging.getLogger(__name__)


class Outcome(enum.StrEnum):
    """How one delivery ended (django-q2 logs it as the task's result)."""

    #: The job was not claimable: already taken, finished, cancelled, or not due.
    SKIPPED = "skipped"
    #: Its application already runs its cap of jobs: offered again shortly.
    DEFERRED = "deferred"
    SUCCEEDED = "succeeded"
    #: This attempt failed; the job is scheduled for another.
    RETRYING = "retrying"
    FAILED = "failed"
    CANCELLED = "cancelled"
    #: This run lost the job (its lease expired and it was rescued): nothing was written.
    STALE = "stale"


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _write(change: Callable[[], Job], *, what: str) -> Job:
    """A fenced write of this run's outcome, waiting out a database outage."""
    return db.retrying(change, what=what, limit=settings.DB_WAIT_SECONDS)


class Heartbeats(threading.Thread):
    """Extends the lease of every attempt this process runs, every
    ``JOBS_HEARTBEAT_INTERVAL``, and tells its context when cancellation was asked or the
    lease was lost. One long-lived thread per worker process (started on its first job):
    a job over in less than one interval costs no thread start and no write."""

    def __init__(self) -> None:
        super().__init__(name="jobs-heartbeats", daemon=True)
        self.pid = os.getpid()
        self._changed = threading.Condition()
        self._runs: dict[uuid.UUID, tuple[Job, JobContext, float]] = {}

    def track(self, job: Job, ctx: JobContext) -> None:
        with self._changed:
            self._runs[job.id] = (job, ctx, time.monotonic() + settings.HEARTBEAT_INTERVAL)
            self._changed.notify()

    def untrack(self, job: Job) -> None:
        """Stop beating for this run (only this one: a later attempt of the same job that
        this process runs now keeps its heartbeat)."""
        with self._changed:
            tracked = self._runs.get(job.id)
            if tracked is not None and tracked[0].attempts == job.attempts:
                del self._runs[job.id]
            self._changed.notify()

    def _due(self) -> list[tuple[Job, JobContext]]:
        """Wait until a tracked run is due for a heartbeat; return the due ones."""
        with self._changed:
            while True:
                now = time.monotonic()
                due = [(job, ctx) for job, ctx, at in self._runs.values() if at <= now]
                if due:
                    for job, ctx in due:
                        self._runs[job.id] = (job, ctx, now + settings.HEARTBEAT_INTERVAL)
                    return due
                next_at = min((at for _, _, at in self._runs.values()), default=None)
                if next_at is None:
                    db.reset()  # hold no connection while this process runs nothing long
                self._changed.wait(timeout=None if next_at is None else next_at - now)

    def run(self) -> None:
        while True:
            due = self._due()
            for job, ctx in due:
                try:
                    if services.job_heartbeat(job=job):
                        ctx.cancel_requested()
                except StaleRun:
                    ctx.lost()
                    self.untrack(job)
                except DatabaseUnavailable:
                    logger.warning("heartbeat for job %s: database unavailable", job.id)
                    db.reset()
                except Exception:
                    logger.exception("heartbeat for job %s failed", job.id)


_heartbeats: Heartbeats | None = None
_heartbeats_lock = threading.Lock()


def heartbeats() -> Heartbeats:
    """This process's heartbeat thread (a forked process starts its own)."""
    global _heartbeats
    with _heartbeats_lock:
        if _heartbeats is None or _heartbeats.pid != os.getpid() or not _heartbeats.is_alive():
            _heartbeats = Heartbeats()
            _heartbeats.start()
        return _heartbeats


def execute_job(job_id: str) -> str:
    """django-q2 entry point. Returns the :class:`Outcome` (django-q2 logs it)."""
    job_uuid = uuid.UUID(str(job_id))
    job = db.retrying(
        lambda: services.job_claim(job_id=job_uuid, worker=worker_name()), what="claim", limit=settings.DB_WAIT_SECONDS
    )
    if job is None:
        if db.retrying(lambda: services.job_defer(job_id=job_uuid), what="defer", limit=settings.DB_WAIT_SECONDS):
            logger.info("job %s deferred: its application runs its cap of jobs", job_uuid)
            return Outcome.DEFERRED
        logger.info("job %s is not claimable (already taken, finished, cancelled or not due)", job_uuid)
        return Outcome.SKIPPED
    return run_claimed(job)


def _transition(job: Job, transition: str, started: float | None = None) -> None:
    duration = None if started is None else time.monotonic() - started
    logs.job_transition(
        transition, job_id=job.id, job_type=job.type, attempt=job.attempts, worker=job.worker, duration=duration
    )


def run_claimed(job: Job) -> Outcome:
    """Run one claimed attempt and record its outcome."""
    started = time.monotonic()
    _transition(job, "started")
    try:
        outcome = _run(job, started)
    except StaleRun:
        logger.warning("job %s attempt %s no longer owns the job; its outcome is discarded", job.id, job.attempts)
        outcome = Outcome.STALE
    _transition(job, outcome.value, started)
    return outcome


def _run(job: Job, started: float) -> Outcome:
    try:
        job_type = registry.get(job.type)
    except UnknownJobType:
        missing = UnknownJobType({}, f"no job type {job.type!r} is installed on this worker")
        return _fail(job, missing, retryable=False, job_type=None)
    try:
        params = services.validate_params(job_type, job.params)
    except InvalidInput as exc:
        # Params were valid at creation; the type changed since. Retrying cannot help.
        return _fail(job, InvalidParams(f"{exc}: {exc.errors}"), retryable=False, job_type=job_type)

    ctx = JobContext(
        job_id=job.id,
        attempt=job.attempts,
        job_type=job.type,
        metadata=job.metadata,
        report=lambda percent, message, milestone: _report_progress(job, percent, message, milestone),
    )
    implementation = job_type()
    beating = heartbeats()
    beating.track(job, ctx)
    try:
        try:
            result = implementation.run(ctx, params)
        except (JobCancelled, StaleRun, TimeoutException):
            raise
        except Exception as exc:
            logger.info("job %s attempt %s raised %r", job.id, job.attempts, exc)
            return _fail(job, exc, retryable=implementation.is_retryable(exc), job_type=job_type)
        try:
            _write(lambda: services.job_succeed(job=job, result=result), what="finish")
        except (TypeError, ValueError) as exc:
            invalid = InvalidResult(f"the result is not JSON-serialisable: {exc}")
            return _fail(job, invalid, retryable=False, job_type=job_type)
        return Outcome.SUCCEEDED
    except JobCancelled:
        _write(lambda: services.job_cancelled(job=job), what="cancel")
        return Outcome.CANCELLED
    except TimeoutException:
        # django-q2's per-task alarm: the attempt ran past the job's timeout.
        timed_out = JobTimeout(f"attempt {job.attempts} exceeded the timeout of {job.timeout_seconds}s")
        _transition(job, _fail(job, timed_out, retryable=True, job_type=job_type).value, started)
        raise  # let django-q2 recycle this worker process
    finally:
        beating.untrack(job)  # only once the outcome is written: the lease cannot lapse before


#: What a failed attempt led to: another attempt, the end, or (cancellation was asked
#: meanwhile) cancelled rather than tried again.
_FAILURE_OUTCOMES = {
    Status.SCHEDULED: Outcome.RETRYING,
    Status.FAILED: Outcome.FAILED,
    Status.CANCELLED: Outcome.CANCELLED,
}


def _fail(job: Job, error: BaseException, *, retryable: bool, job_type: type[JobType] | None) -> Outcome:
    ended = _write(
        lambda: services.job_fail(job=job, error=error, retryable=retryable, job_type=job_type), what="failure"
    )
    return _FAILURE_OUTCOMES[ended.status]


def _report_progress(job: Job, percent: float, message: str, milestone: bool) -> bool:
    """Progress is best effort: a database blip must not fail the attempt."""
    try:
        return services.job_progress(job=job, percent=percent, message=message, milestone=milestone)
    except DatabaseUnavailable:
        logger.warning("progress of job %s not saved: database unavailable", job.id)
        db.reset()
        return False
