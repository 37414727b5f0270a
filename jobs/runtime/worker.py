"""The single task django-q2 ever runs: ``execute_job(job_id)``.

It claims the job (a new attempt with a lease), runs the job type's code while this
process's heartbeat thread (``heartbeats``) extends the lease, and records the outcome. Every write goes through
``jobs.services`` and is fenced by the attempt number: when this run no longer owns the
job the service raises ``StaleRun``, and nothing is written.
"""

from __future__ import annotations

import enum
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable

from django_q.exceptions import TimeoutException

from jobs import db, logs, services
from jobs.conf import settings
from jobs.domain import Job, Status
from jobs.exceptions import (
    DatabaseUnavailable,
    InvalidInput,
    InvalidParams,
    InvalidResult,
    JobCancelled,
    JobTimeout,
    StaleRun,
    UnknownJobType,
)
from jobs.registry import JobType, registry

from .context import JobContext
from .heartbeats import heartbeats
from .journal import JobJournal

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
        params = job_type.validate_params(job.params)
    except InvalidInput as exc:
        # Params were valid at creation; the type changed since. Retrying cannot help.
        return _fail(job, InvalidParams(f"{exc}: {exc.errors}"), retryable=False, job_type=job_type)

    ctx = JobContext(
        job_id=job.id,
        app_id=job.app_id,
        attempt=job.attempts,
        job_type=job.type,
        metadata=job.metadata,
        report=lambda percent, message, milestone: _report_progress(job, percent, message, milestone),
        journal=JobJournal(job),
        checkpoint_state=job.checkpoint,
    )
    implementation = job_type()
    beating = heartbeats()
    beating.track(job, ctx)
    try:
        try:
            try:
                result = implementation.run(ctx, params)
            finally:
                _flush_log(ctx)  # every line of the attempt is stored before its outcome
        except (JobCancelled, StaleRun, TimeoutException):
            raise
        except Exception as exc:
            logger.info("job %s attempt %s raised %r", job.id, job.attempts, exc)
            return _fail(job, exc, retryable=implementation.is_retryable(exc), job_type=job_type, ctx=ctx)
        try:
            _write(lambda: services.job_succeed(job=job, result=result), what="finish")
        except (TypeError, ValueError) as exc:
            invalid = InvalidResult(f"the result is not JSON-serialisable: {exc}")
            return _fail(job, invalid, retryable=False, job_type=job_type, ctx=ctx)
        return Outcome.SUCCEEDED
    except JobCancelled:
        ctx.flush_progress()  # how far it got before it stopped
        _write(lambda: services.job_cancelled(job=job), what="cancel")
        return Outcome.CANCELLED
    except TimeoutException:
        # django-q2's per-task alarm: the attempt ran past the job's timeout.
        timed_out = JobTimeout(f"attempt {job.attempts} exceeded the timeout of {job.timeout_seconds}s")
        _transition(job, _fail(job, timed_out, retryable=True, job_type=job_type, ctx=ctx).value, started)
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


def _fail(
    job: Job,
    error: BaseException,
    *,
    retryable: bool,
    job_type: type[JobType] | None,
    ctx: JobContext | None = None,
) -> Outcome:
    """Record a failed attempt (retried, failed for good, or cancelled), after the latest
    progress its job reported (``ctx``): a failure keeps how far the attempt got."""
    if ctx is not None:
        ctx.flush_progress()
    ended = _write(
        lambda: services.job_fail(job=job, error=error, retryable=retryable, job_type=job_type), what="failure"
    )
    return _FAILURE_OUTCOMES[ended.status]


def _flush_log(ctx: JobContext) -> None:
    """The attempt's last log lines, waiting out a database outage like its outcome. A
    stale run's lines are refused with it (StaleRun)."""
    try:
        db.retrying(lambda: ctx.flush_log(last=True), what="log", limit=settings.DB_WAIT_SECONDS)
    except DatabaseUnavailable:
        logger.warning("the last log lines of job %s were not saved: database unavailable", ctx.job_id)


def _report_progress(job: Job, percent: float, message: str, milestone: bool) -> bool:
    """Progress is best effort: a database blip must not fail the attempt."""
    try:
        return services.job_progress(job=job, percent=percent, message=message, milestone=milestone)
    except DatabaseUnavailable:
        logger.warning("progress of job %s not saved: database unavailable", job.id)
        db.reset()
        return False
