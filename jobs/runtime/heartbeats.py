"""Each worker process's heartbeat: extends the lease of every attempt it runs, so the
rescuer leaves a living attempt alone however long it takes, and tells the attempt's
context when its cancellation was asked or its lease was lost."""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid

from jobs import db, services
from jobs.conf import settings
from jobs.domain import Job
from jobs.exceptions import DatabaseUnavailable, StaleRun

from .context import JobContext

logger = logging.getLogger(__name__)


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
                    ctx.flush_log(if_due=True)  # lines of a job that went quiet do not wait for it
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
