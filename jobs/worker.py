"""The single task django-q2 ever runs: ``execute_job(job_id)``.

It claims the job (a new attempt with a lease), runs the job type's code with a
heartbeat extending the lease, and records the outcome. Every write is fenced by
the attempt number, so a stale duplicate delivery changes nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import connection
from django_q.exceptions import TimeoutException

from . import services
from .conf import settings
from .context import JobCancelled, JobContext
from .domain import Job
from .exceptions import DatabaseUnavailable, InvalidInput, StaleRun, UnknownJobType
from .registry import JobType, registry

logger = logging.getLogger(__name__)
T = TypeVar("T")

#: How long the worker keeps retrying a write while the database is unreachable.
DB_WAIT_SECONDS = 300.0


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def wait_for_database(write: Callable[[], T], *, what: str, limit: float = DB_WAIT_SECONDS) -> T:
    """Run ``write``, retrying with backoff while the database is unreachable."""
    deadline = time.monotonic() + limit
    delay = 0.25
    while True:
        try:
            return write()
        except DatabaseUnavailable:
            if time.monotonic() >= deadline:
                raise
            logger.warning("database unavailable during %s; retrying in %.1fs", what, delay)
            connection.close()
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


class Heartbeat(threading.Thread):
    """Extends the running attempt's lease and notices cancellation or a lost lease."""

    def __init__(self, job: Job, ctx: JobContext) -> None:
        super().__init__(name=f"heartbeat-{job.id}", daemon=True)
        self.job = job
        self.ctx = ctx
        self._stop_event = threading.Event()

    def run(self) -> None:
        try:
            while not self._stop_event.wait(settings.HEARTBEAT_INTERVAL):
                try:
                    self.ctx._observe(services.job_heartbeat(job=self.job))
                except DatabaseUnavailable:
                    logger.warning("heartbeat for job %s: database unavailable", self.job.id)
                    connection.close()
                except Exception:
                    logger.exception("heartbeat for job %s failed", self.job.id)
        finally:
            connection.close()

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)


def execute_job(job_id: str) -> str:
    """django-q2 entry point. Returns a short word for django-q2's log."""
    job_uuid = uuid.UUID(str(job_id))
    job = wait_for_database(lambda: services.job_claim(job_id=job_uuid, worker=worker_name()), what="claim")
    if job is None:
        logger.info("job %s is not claimable (already taken, finished or cancelled)", job_uuid)
        return "skipped"
    return run_claimed(job)


def run_claimed(job: Job) -> str:
    """Run one claimed attempt and record its outcome."""
    try:
        job_type = registry.get(job.type)
    except UnknownJobType:
        error = {"type": "UnknownJobType", "message": f"no job type {job.type!r} is installed on this worker"}
        _record_failure(job, error, retryable=False, job_type=None)
        return "failed"

    ctx = JobContext(
        job_id=job.id,
        attempt=job.attempts,
        job_type=job.type,
        metadata=job.metadata,
        report=lambda percent, message, milestone: _report_progress(job, percent, message, milestone),
    )
    try:
        params = services.validate_params(job_type, job.params)
    except InvalidInput as exc:
        # Params were valid at creation; the type changed since. Retrying cannot help.
        error = {"type": "InvalidParams", "message": f"{exc}: {exc.errors}"}
        _record_failure(job, error, retryable=False, job_type=job_type)
        return "failed"
    implementation = job_type()
    heartbeat = Heartbeat(job, ctx)
    heartbeat.start()
    try:
        result = implementation.run(ctx, params)
    except JobCancelled:
        wait_for_database(lambda: services.job_cancelled(job=job), what="cancel")
        return "cancelled"
    except StaleRun:
        logger.warning("job %s attempt %s lost its lease; its outcome is discarded", job.id, job.attempts)
        return "stale"
    except TimeoutException as exc:
        # django-q2's per-task alarm: the attempt ran past the job's timeout.
        error = {
            "type": "JobTimeout",
            "message": f"attempt {job.attempts} exceeded the timeout of {job.timeout_seconds}s",
        }
        _record_failure(job, error, retryable=True, job_type=job_type)
        raise exc  # let django-q2 recycle this worker process
    except Exception as exc:
        logger.info("job %s attempt %s raised %r", job.id, job.attempts, exc)
        _record_failure(job, services.error_payload(exc), retryable=implementation.is_retryable(exc), job_type=job_type)
        return "error"
    else:
        return _record_success(job, job_type, result)
    finally:
        heartbeat.stop()  # only once the outcome is written: the lease cannot lapse before


def _record_success(job: Job, job_type: type[JobType], result: Any) -> str:
    try:
        outcome = wait_for_database(lambda: services.job_succeed(job=job, result=result), what="finish")
    except (TypeError, ValueError) as exc:
        error = {"type": "InvalidResult", "message": f"the result is not JSON-serialisable: {exc}"}
        _record_failure(job, error, retryable=False, job_type=job_type)
        return "error"
    if outcome is None:
        logger.warning("job %s attempt %s finished but no longer owned the job", job.id, job.attempts)
        return "stale"
    return "succeeded"


def _report_progress(job: Job, percent: float, message: str, milestone: bool) -> bool | None:
    """Progress is best effort: a database blip must not fail the attempt."""
    try:
        return services.job_progress(job=job, percent=percent, message=message, milestone=milestone)
    except DatabaseUnavailable:
        logger.warning("progress of job %s not saved: database unavailable", job.id)
        connection.close()
        return False


def _record_failure(job: Job, error: dict[str, Any], *, retryable: bool, job_type: type[JobType] | None) -> None:
    wait_for_database(
        lambda: services.job_attempt_failed(job=job, error=error, retryable=retryable, job_type=job_type),
        what="failure",
    )
