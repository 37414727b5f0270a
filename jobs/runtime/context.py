"""What a running job sees: its params, metadata, progress reporting, cancellation, its
checkpoint and its log."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from jobs import db
from jobs.conf import settings
from jobs.exceptions import DatabaseUnavailable, JobCancelled, StaleRun
from jobs.services.joblog import log_line

from .journal import Journal, LogBuffer

logger = logging.getLogger(__name__)

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
        journal: Journal | None = None,
        checkpoint_state: Any = None,
        clock: Callable[[], float] = time.monotonic,
        app_id: uuid.UUID | None = None,
    ) -> None:
        self.job_id = job_id
        #: The application the job belongs to (what a type checks its access against).
        self.app_id = app_id
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
        #: The latest progress the interval held back (percent, message): written by the
        #: next write, or by the worker before a failure, retry or cancel (flush_progress).
        self._unwritten: tuple[float, str] | None = None
        self._journal = journal
        self._checkpoint_state = checkpoint_state
        self._checkpoint_event_at: float | None = None
        self._checkpoints_skipped = 0
        self._log = LogBuffer(self._write_log, clock=clock) if journal is not None else None

    # -- for job types ----------------------------------------------------------------
    def progress(self, percent: float, message: str = "") -> None:
        """Report progress (0 to 100) with a short message; visible at ``GET /jobs/{id}``.

        Written at most once per ``JOBS_PROGRESS_MIN_INTERVAL`` (counted from the attempt's
        start), so a job that is over in a blink writes no progress at all; the latest one
        held back is written when the attempt fails, is retried or cancelled (a success
        writes 100 %)."""
        percent = max(0.0, min(100.0, float(percent)))
        if any(self._last_percent < m <= percent for m in MILESTONES):
            self._milestone_pending = True
        self._last_percent = max(self._last_percent, percent)
        now = self._clock()
        if now - self._last_write >= settings.PROGRESS_MIN_INTERVAL:
            self._last_write, self._unwritten = now, None
            milestone, self._milestone_pending = self._milestone_pending, False
            try:
                if self._report(round(percent, 2), str(message), milestone):
                    self.cancel_requested()
            except StaleRun:
                self.lost()
        else:
            self._unwritten = (round(percent, 2), str(message))
        self.raise_if_cancelled()

    @property
    def checkpoint_state(self) -> Any:
        """The job's latest checkpoint state: the one a previous attempt stored (or a
        re-run with ``"resume": true`` carried over), then the one this attempt stored
        last. None when there is none: start from the beginning."""
        return self._checkpoint_state

    def checkpoint(self, state: Any) -> None:
        """Store ``state`` (any JSON: a position, not the data) as the point the next
        attempt resumes from, and return once it is durably stored. Fenced like every
        write of this run (a run that lost the job raises StaleRun and stores nothing);
        extends the lease; raises JobCancelled afterwards if the job was cancelled.

        Every call stores its state; the job's history gets a ``checkpoint`` event for the
        first of the attempt and then at most one per ``JOBS_CHECKPOINT_EVENT_INTERVAL``.
        A state that is not JSON, or over ``JOBS_CHECKPOINT_MAX_BYTES``, raises
        :class:`~jobs.exceptions.InvalidCheckpoint` (nothing is cut to fit). Log lines
        written before it are stored before it."""
        journal = self._require_journal()
        self._flush_log(blocking=True, wait=True)
        now = self._clock()
        since = None if self._checkpoint_event_at is None else now - self._checkpoint_event_at
        event = since is None or since >= settings.CHECKPOINT_EVENT_INTERVAL
        try:
            saved = journal.checkpoint(state, event=event, skipped=self._checkpoints_skipped)
        except StaleRun:
            self.lost()
            raise
        if event:
            self._checkpoint_event_at, self._checkpoints_skipped = now, 0
        else:
            self._checkpoints_skipped += 1
        self._checkpoint_state = saved.state
        if saved.cancel_requested:
            self.cancel_requested()
        self.raise_if_cancelled()

    def log(self, message: Any, level: str = "info", **fields: Any) -> None:
        """Add a line to the job's log (``GET /jobs/{id}/logs``): ``level`` one of debug,
        info, warning, error (else ValueError); ``fields`` any JSON-able values (others as
        their ``str()``). Cheap: lines are written in batches, at least every
        ``JOBS_LOG_FLUSH_INTERVAL``. Over ``JOBS_LOG_MAX_PER_SECOND`` lines per second or
        ``JOBS_LOG_MAX_LINES_PER_JOB`` per job, lines are dropped and counted; those over
        the rate are also told in a warning line, at most one a second."""
        self._require_journal()
        assert self._log is not None
        line = log_line(message=message, level=level, fields=fields, at=datetime.now(UTC))
        if self._log.append(line):
            self._flush_log(blocking=False)

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

    def flush_progress(self) -> None:
        """Write the latest progress the job reported that ``JOBS_PROGRESS_MIN_INTERVAL``
        held back, if any: the worker calls this before it records a failure, a retry or a
        cancel, so the job shows how far it got (a migration that stored 20,000 rows then
        failed says so, not ``null``). Fenced like every write of the run; the worker's
        reporter is best effort (an outage is logged). Raises StaleRun (after marking the
        run lost): the outcome would be refused too."""
        unwritten, self._unwritten = self._unwritten, None
        if unwritten is None:
            return
        milestone, self._milestone_pending = self._milestone_pending, False
        try:
            self._report(*unwritten, milestone)  # a cancel asked meanwhile changes nothing now
        except StaleRun:
            self.lost()
            raise

    def flush_log(self, *, if_due: bool = False, last: bool = False) -> None:
        """Write the log lines waiting in this run's buffer (``if_due``: only when some
        waited ``JOBS_LOG_FLUSH_INTERVAL``; for the heartbeat thread, which never waits
        for another flush). Before the outcome, the worker flushes with ``last`` (the
        attempt's last note on lines dropped for the rate goes too) and ``db.retrying``
        around this. Raises StaleRun (after marking the run lost) and
        DatabaseUnavailable (the lines wait for the next flush)."""
        if self._log is None or (if_due and not self._log.due()):
            return
        try:
            self._log.flush(blocking=not if_due, last=last)
        except StaleRun:
            self.lost()
            raise

    def _flush_log(self, *, blocking: bool, wait: bool = False) -> None:
        """A flush from the job's own calls: an outage is not the job's failure. With
        ``wait`` (before a checkpoint, so the lines logged before it are stored before it)
        the flush waits out an outage, as the checkpoint itself does."""
        if self._log is None:
            return
        log = self._log
        try:
            if wait:
                db.retrying(lambda: log.flush(blocking=blocking), what="log lines", limit=settings.DB_WAIT_SECONDS)
            else:
                log.flush(blocking=blocking)
        except StaleRun:
            self.lost()
            raise
        except DatabaseUnavailable:
            logger.warning("log lines of job %s kept for later: database unavailable", self.job_id)

    def _write_log(self, lines: list[dict[str, Any]], notes: list[dict[str, Any]], dropped: int) -> int:
        assert self._journal is not None
        return self._journal.log(lines, dropped=dropped, notes=notes)

    def _require_journal(self) -> Journal:
        if self._journal is None:
            raise RuntimeError("this context has no journal: checkpoints and logs need a claimed attempt")
        return self._journal
