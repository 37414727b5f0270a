"""What a running attempt records besides its progress: its checkpoints and its log lines.

A checkpoint is written at once (the job waits for the durable commit). Log lines are
cheap instead: ``ctx.log()`` only appends to this attempt's :class:`LogBuffer`, and the
buffer is written in batches — one statement for up to :data:`BATCH` lines — when it is
full, when its oldest line has waited ``JOBS_LOG_FLUSH_INTERVAL`` (looked at by the next
``ctx.log()`` and by the heartbeat thread), before every checkpoint (so the log agrees
with the checkpoint) and before the attempt's outcome. A worker killed with SIGKILL
loses at most the lines of its last flush interval, never a checkpoint.

The per-second bound (``JOBS_LOG_MAX_PER_SECOND``) is kept here, per attempt; the
per-job bound (``JOBS_LOG_MAX_LINES_PER_JOB``) by the database, exactly, across attempts.
Every dropped line is counted on the job. Lines dropped for the rate are also told in a
*note*: a warning line saying how many were dropped since when, at most one per
:data:`NOTE_INTERVAL` per attempt however often the buffer is written (a job that
checkpoints every row writes it every row), plus the attempt's last one with its outcome.
Notes are stored beside the job's lines, outside the per-job bound and its count: a job's
``lines`` and ``dropped`` add up to what it logged, and a note never takes the place of
one of its lines (there is at most one note per ``JOBS_LOG_MAX_PER_SECOND`` lines kept,
plus one per attempt, and none once the job keeps no more lines).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from jobs import db, services
from jobs.conf import settings
from jobs.domain import Job, LogLevel
from jobs.exceptions import DatabaseUnavailable
from jobs.services.checkpoints import CheckpointSaved

#: Lines written by one statement at most; a full batch is written at once.
BATCH = 100
#: Lines one attempt holds while the database cannot take them (an outage); more are
#: dropped and counted.
HELD_MAX = 10 * BATCH
#: Seconds between two notes on lines dropped for the per-second bound (per attempt).
NOTE_INTERVAL = 1.0

#: Writes lines, notes and a count of dropped lines; returns the room the job has left.
Writer = Callable[[list[dict[str, Any]], list[dict[str, Any]], int], int]


class Journal(Protocol):
    """Where a context stores what its attempt records (the worker's is :class:`JobJournal`)."""

    def checkpoint(self, state: Any, *, event: bool, skipped: int) -> CheckpointSaved: ...

    def log(self, lines: list[dict[str, Any]], *, dropped: int, notes: list[dict[str, Any]]) -> int: ...


class JobJournal:
    """The journal of one claimed attempt, written through the services (each write fenced
    by the attempt: a stale run's raises StaleRun)."""

    def __init__(self, job: Job) -> None:
        self.job = job

    def checkpoint(self, state: Any, *, event: bool, skipped: int) -> CheckpointSaved:
        # The job waits out a database outage here: it relies on the state being stored.
        return db.retrying(
            lambda: services.job_checkpoint(job=self.job, state=state, event=event, skipped=skipped),
            what="checkpoint",
            limit=settings.DB_WAIT_SECONDS,
        )

    def log(self, lines: list[dict[str, Any]], *, dropped: int, notes: list[dict[str, Any]]) -> int:
        try:
            return services.job_log_append(job=self.job, lines=lines, dropped=dropped, notes=notes)
        except DatabaseUnavailable:
            db.reset()  # this thread's next write opens a new connection
            raise


class LogBuffer:
    """One attempt's log lines on their way to the database. Thread-safe: the job's
    threads append, the job's thread and the heartbeat thread flush, one flush at a time
    (so lines are written in the order they were logged)."""

    def __init__(
        self,
        write: Writer,
        *,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._write = write
        self._clock = clock
        self._now = now
        self._lock = threading.Lock()  # the state below
        self._flushing = threading.Lock()  # one flush at a time
        self._pending: list[dict[str, Any]] = []
        #: Notes taken for a write that did not happen (an outage): sent with the next one.
        self._notes: list[dict[str, Any]] = []
        #: Dropped lines not yet counted in the database.
        self._dropped = 0
        #: Lines dropped for the per-second bound not yet told in a note; when (the clock,
        #: and the wall clock for the note's text) the first of them was dropped.
        self._rate_dropped = 0
        self._rate_first = 0.0
        self._rate_since: datetime | None = None
        #: When the last note was taken (the clock): the next waits NOTE_INTERVAL.
        self._noted_at: float | None = None
        self._window_start = clock()
        self._window_count = 0
        #: How many more lines the job may keep, as of the last write (None: not written yet).
        self._room: int | None = None
        #: When the oldest unwritten line (or drop) arrived.
        self._waiting_since: float | None = None

    def append(self, line: dict[str, Any]) -> bool:
        """Keep ``line`` for the next write (or count it as dropped); return whether a
        flush is due."""
        with self._lock:
            now = self._clock()
            if now - self._window_start >= 1.0:
                self._window_start, self._window_count = now, 0
            if self._waiting_since is None:
                self._waiting_since = now
            if self._window_count >= settings.LOG_MAX_PER_SECOND:
                self._dropped += 1
                if not self._rate_dropped:
                    self._rate_first, self._rate_since = now, self._now()
                self._rate_dropped += 1
            elif (self._room is not None and len(self._pending) >= self._room) or len(self._pending) >= HELD_MAX:
                # The job keeps no more lines (or the database has been away): count only.
                self._window_count += 1
                self._dropped += 1
            else:
                self._window_count += 1
                self._pending.append(line)
            return self._due(now)

    def _note_due(self, now: float) -> bool:
        """Whether the lines dropped for the rate are told now: a second after the first of
        them was dropped, and a second after the previous note (so the note counts a
        second's drops, not one line's)."""
        if not self._rate_dropped or self._rate_first + NOTE_INTERVAL > now:
            return False
        return self._noted_at is None or now - self._noted_at >= NOTE_INTERVAL

    def _due(self, now: float) -> bool:
        if self._note_due(now):
            return True
        if self._waiting_since is None:
            return False
        return len(self._pending) >= BATCH or now - self._waiting_since >= settings.LOG_FLUSH_INTERVAL

    def due(self) -> bool:
        """Whether something has waited long enough (or a batch is full)."""
        with self._lock:
            return self._due(self._clock())

    def _take(self, *, last: bool) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
        with self._lock:
            lines, notes, dropped = self._pending, self._notes, self._dropped
            now = self._clock()
            if self._room == 0:
                # The job keeps no more lines: its later drops are only counted (a note
                # would tell of lines that had no room anyway).
                self._rate_dropped, self._rate_since = 0, None
            elif self._rate_dropped and (last or self._note_due(now)):
                notes = [*notes, self._note(self._rate_dropped, self._rate_since or self._now())]
                self._rate_dropped, self._rate_since, self._noted_at = 0, None, now
            self._pending, self._notes, self._dropped, self._waiting_since = [], [], 0, None
            return lines, notes, dropped

    def _note(self, count: int, since: datetime) -> dict[str, Any]:
        plural = "" if count == 1 else "s"
        return {
            "at": self._now().isoformat(),
            "level": LogLevel.WARNING.value,
            "message": f"{count} log line{plural} dropped since {since:%H:%M:%S} UTC "
            f"(over JOBS_LOG_MAX_PER_SECOND, {settings.LOG_MAX_PER_SECOND} per second)",
            "fields": {"dropped": count},
        }

    def _put_back(self, lines: list[dict[str, Any]], notes: list[dict[str, Any]], dropped: int) -> None:
        """A write that did not happen: the lines wait for the next one (within HELD_MAX),
        and so do the notes."""
        with self._lock:
            held = lines + self._pending
            self._pending = held[:HELD_MAX]
            self._notes = notes + self._notes
            self._dropped += dropped + len(held) - len(self._pending)
            self._waiting_since = self._clock()

    def flush(self, *, blocking: bool = True, last: bool = False) -> None:
        """Write every waiting line and drop count, and the note on lines dropped for the
        rate if one is due (``last``, the attempt's last flush: whenever some were dropped).
        Raises what the write raises: StaleRun (the lines are discarded with the run) or
        DatabaseUnavailable (they wait for the next flush). ``blocking=False``: return at
        once if another flush is under way."""
        if not self._flushing.acquire(blocking=blocking):
            return
        try:
            lines, notes, dropped = self._take(last=last)
            if not lines and not notes and not dropped:
                return
            try:
                room = self._write(lines, notes, dropped)
            except DatabaseUnavailable:
                self._put_back(lines, notes, dropped)
                raise
            with self._lock:
                self._room = room
        finally:
            self._flushing.release()
