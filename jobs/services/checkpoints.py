"""Checkpoints: a running attempt stores the state the next attempt resumes from.

A checkpoint is written at once and durably (a synchronous commit, ``job_checkpoint`` in
``jobs/sql/checkpoints.sql``): once :func:`job_checkpoint` returns, a crash of the
worker, or of the database, cannot take the state back. Like every write of a running
attempt it is fenced by the attempt number (a stale run raises
:class:`~jobs.exceptions.StaleRun` and changes nothing) and extends the lease.

Only the latest state is kept on the job; the history gets a ``checkpoint`` event for
some of them (the caller decides which: ``jobs.runtime.context`` throttles them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jobs import db
from jobs.conf import settings
from jobs.domain import Job
from jobs.exceptions import InvalidCheckpoint, StaleRun

from .validation import storable_errors

#: A state up to this size (bytes of compact JSON) is copied into its ``checkpoint``
#: event, so the history shows where a job was; a larger one only by its size.
EVENT_STATE_MAX_BYTES = 1024


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint state, checked: JSON that PostgreSQL stores as it is, within the size bound."""

    state: Any
    #: Its size as compact UTF-8 JSON.
    size: int


def checkpoint_check(state: Any) -> Checkpoint:
    """``state`` as it will be stored (a copy: later changes to the caller's object do not
    reach it), or :class:`InvalidCheckpoint` saying why it cannot be: not JSON, not
    storable, or over ``JOBS_CHECKPOINT_MAX_BYTES``. Never truncated."""
    try:
        text = json.dumps(state, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidCheckpoint(f"The checkpoint state is not JSON: {exc}") from None
    errors = storable_errors(state, "state")
    if errors:
        where, (problem, *_) = next(iter(errors.items()))
        raise InvalidCheckpoint(f"The checkpoint state cannot be stored: {where}: {problem}")
    size = len(text.encode("utf-8"))
    if size > settings.CHECKPOINT_MAX_BYTES:
        raise InvalidCheckpoint(
            f"The checkpoint state is {size} bytes; the limit is {settings.CHECKPOINT_MAX_BYTES} "
            "(JOBS_CHECKPOINT_MAX_BYTES). Store a position (an id, an offset), not the data."
        )
    return Checkpoint(state=json.loads(text), size=size)


@dataclass(frozen=True)
class CheckpointSaved:
    """A stored checkpoint, as the next attempt will read it."""

    state: Any
    at: datetime
    #: The job's application asked it to stop.
    cancel_requested: bool


def job_checkpoint(*, job: Job, state: Any, event: bool, skipped: int = 0) -> CheckpointSaved:
    """Store ``state`` as the job's latest checkpoint (checked by :func:`checkpoint_check`
    first; durably, fenced, extending the lease). With ``event``, also a ``checkpoint``
    event in its history, saying how many checkpoints were stored since the previous
    event without one of their own (``skipped``)."""
    checkpoint = checkpoint_check(state)
    data: dict[str, Any] | None = None
    if event:
        data = {"bytes": checkpoint.size, "skipped": skipped}
        if checkpoint.size <= EVENT_STATE_MAX_BYTES:
            data["state"] = checkpoint.state
    row = db.fetch_one(
        "job_checkpoint",
        id=job.id,
        attempt=job.attempts,
        checkpoint=db.as_json(checkpoint.state),
        event=data,
        lease_seconds=settings.LEASE_SECONDS,
    )
    if row is None:
        raise StaleRun()
    return CheckpointSaved(
        state=checkpoint.state, at=row["checkpoint_at"], cancel_requested=bool(row["cancel_requested"])
    )
