"""What a running job sees: its params, metadata, progress reporting and cancellation."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from jobs.conf import settings
from jobs.exceptions import JobCancelled, StaleRun

#: Progress crossing one of these percentages is also recorded in the job's history
#: (with the next write, if it happened between two).
MILESTONES = (25.0, 50.0, 75.0)

#: Stores progress; returns whether cancellation was asked; raises StaleRun when the run
#: no longer owns the job.
Reporter = Callable[[float, str, bool], bool]

__all__ = ["MILESTONES", "JobCancelled", "JobContext", "Reporter"]


class JobContext:
    """Handed to ``JobType.run``. Thread-safe: the worker's heartbeat sets the flags."""

    def __init__(
        self,
        *,
        job_id: uuid.UUID,
        attempt: int,
        job_type: str,
        metadata: dict[str, Any],
        report: Reporter,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.job_id = job_id
        self.attempt = attempt
        self.type = job_type
        self.metadata = metadata
        self._report = report
        self._cancel = threading.Event()
        self._lost = threading.Event()
        self._wake = threading.Event()
        self._clock = clock
        self._last_write = clock()
        self._last_percent = 0.0
        self._milestone_pending = False

    # -- for job types ----------------------------------------------------------------
    def progress(self, percent: float, message: str = "") -> None:
        """Report progress (0 to 100) with a short message; visible at ``GET /jobs/{id}``.

        Written at most once per ``JOBS_PROGRESS_MIN_INTERVAL`` (counted from the attempt's
        start), so a job that is over in a blink writes no progress at all."""
        percent = max(0.0, min(100.0, float(percent)))
        if any(self._last_percent < m <= percent for m in MILESTONES):
            self._milestone_pending = True
        self._last_percent = max(self._last_percent, percent)
        now = self._clock()
        if now - self._last_write >= settings.PROGRESS_MIN_INTERVAL:
            self._last_write = now
            milestone, self._milestone_pending = self._milestone_pending, False
            try:
                if self._report(round(percent, 2), str(message), milestone):
                    self.cancel_requested()
            except StaleRun:
                self.lost()
        self.raise_if_cancelled()

    def raise_if_cancelled(self) -> None:
        """Stop here if the job was cancelled (or this run lost its lease)."""
        if self._lost.is_set():
            raise StaleRun()
        if self._cancel.is_set():
            raise JobCancelled()

    def sleep(self, seconds: float) -> None:
        """Sleep, waking early (and raising) if the job is cancelled."""
        self._wake.wait(timeout=max(0.0, seconds))
        self.raise_if_cancelled()

    # -- for the worker -----------------------------------------------------------------
    def cancel_requested(self) -> None:
        """The application asked the job to stop: wake any sleep; the job raises JobCancelled."""
        self._cancel.set()
        self._wake.set()

    def lost(self) -> None:
        """This run no longer owns the job: wake any sleep; the job raises StaleRun."""
        self._lost.set()
        self._wake.set()
