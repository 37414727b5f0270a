"""What a running job sees: its params, metadata, progress reporting and cancellation."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from .exceptions import StaleRun

#: At most one progress write per this many seconds (counted from the attempt's start),
#: so a job that is over in a blink writes no progress at all: its result says it all.
PROGRESS_MIN_INTERVAL = 0.5
#: Progress crossing one of these percentages is also recorded in the job's history
#: (with the next write, if it happened between two).
MILESTONES = (25.0, 50.0, 75.0)


class JobCancelled(Exception):
    """The job's application asked for it to stop."""


class JobContext:
    """Handed to ``JobType.run``. Thread-safe: the heartbeat sets the flags."""

    def __init__(
        self,
        *,
        job_id: uuid.UUID,
        attempt: int,
        job_type: str,
        metadata: dict[str, Any],
        report: Any,
        clock: Any = time.monotonic,
    ) -> None:
        self.job_id = job_id
        self.attempt = attempt
        self.type = job_type
        self.metadata = metadata
        self._report = report  # callable(percent, message, milestone) -> cancel_requested | None
        self._cancel = threading.Event()
        self._lost = threading.Event()
        self._wake = threading.Event()
        self._clock = clock
        self._last_write = clock()
        self._last_percent = 0.0
        self._milestone_pending = False

    # -- for job types ----------------------------------------------------------------
    def progress(self, percent: float, message: str = "") -> None:
        """Report progress (0 to 100) with a short message; visible at ``GET /jobs/{id}``."""
        percent = max(0.0, min(100.0, float(percent)))
        if any(self._last_percent < m <= percent for m in MILESTONES):
            self._milestone_pending = True
        self._last_percent = max(self._last_percent, percent)
        now = self._clock()
        if now - self._last_write >= PROGRESS_MIN_INTERVAL:
            self._last_write = now
            milestone, self._milestone_pending = self._milestone_pending, False
            self._observe(self._report(round(percent, 2), str(message)[:500], milestone))
        self.raise_if_cancelled()

    def raise_if_cancelled(self) -> None:
        """Stop here if the job was cancelled (or this run lost its lease)."""
        if self._lost.is_set():
            raise StaleRun()
        if self._cancel.is_set():
            raise JobCancelled()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set() or self._lost.is_set()

    def sleep(self, seconds: float) -> None:
        """Sleep, waking early (and raising) if the job is cancelled."""
        self._wake.wait(timeout=max(0.0, seconds))
        self.raise_if_cancelled()

    # -- for the worker -----------------------------------------------------------------
    def _observe(self, cancel_requested: bool | None) -> None:
        """Record what a fenced write learned: None means the run no longer owns the job."""
        if cancel_requested is None:
            self._lost.set()
            self._wake.set()
        elif cancel_requested:
            self._cancel.set()
            self._wake.set()
