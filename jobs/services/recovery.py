"""Keeping the promise that no job is lost: the maintenance transitions.

- **rescue**: a ``running`` job whose lease expired lost its worker (killed, crashed,
  hung past its timeout). It goes back to the queue with a new envelope, or — when its
  attempts are spent — ends ``failed`` (``cancelled`` if cancellation was asked).
- **redeliver**: a waiting job whose envelope vanished (deleted after a signature
  failure, the broker table flushed) or was taken by a cluster that never started it
  (it died holding it) gets a new envelope.
- **promote**: ``scheduled`` jobs whose ``run_at`` has come are shown as ``queued``.

Every cluster worker runs them on a schedule (``jobs.runtime.maintenance``). Each is safe
to run in many clusters at once: rows are taken with ``FOR UPDATE SKIP LOCKED`` and every
write re-checks its condition.
"""

from __future__ import annotations

import logging

from jobs import db, logs
from jobs import queue as queues
from jobs.conf import settings
from jobs.domain import Status
from jobs.exceptions import WorkerLost, error_payload

logger = logging.getLogger(__name__)


def jobs_rescue_expired(*, limit: int) -> int:
    """Requeue (or end, when its attempts are spent or it was being cancelled) every
    running job whose lease expired: its worker died or hung. Returns how many."""
    handled = 0
    with db.atomic():
        expired = db.fetch_all("job_find_expired", limit=limit)
        # Ending a job of a batch locks the batch's row until this transaction commits: every
        # rescuer takes batches in the same order, so two rescuers never wait on each other.
        for row in sorted(expired, key=lambda row: str(row.get("batch_id") or "")):
            worker, attempt, attempts_allowed = row["worker"], row["attempts"], row["max_attempts"]
            common = {"id": row["id"], "attempt": attempt, "worker": worker}
            if row["cancel_requested"]:
                error = error_payload(WorkerLost("the worker stopped while the job was being cancelled"))
                db.fetch_one("job_rescue_fail", status=Status.CANCELLED.value, error=error, **common)
                transition = Status.CANCELLED.value
            elif attempt >= attempts_allowed:
                error = error_payload(
                    WorkerLost(
                        f"the worker running attempt {attempt} of {attempts_allowed} stopped responding "
                        "(crashed, was killed, or ran past its timeout)"
                    )
                )
                db.fetch_one("job_rescue_fail", status=Status.FAILED.value, error=error, **common)
                transition = Status.FAILED.value
            else:
                error = error_payload(
                    WorkerLost(f"the worker running attempt {attempt} stopped responding; the job was requeued")
                )
                db.fetch_one(
                    "job_rescue_requeue",
                    error=error,
                    **common,
                    **queues.envelope(row["id"], timeout=row["timeout_seconds"], queue=row["queue"]),
                )
                transition = "rescued"
            # Its worker stopped responding: worth a WARNING, not only the INFO of a transition.
            logs.job_transition(
                transition,
                job_id=row["id"],
                job_type=row["type"],
                attempt=attempt,
                worker=worker,
                level=logging.WARNING,
                lease_expired=True,
            )
            handled += 1
    return handled


def jobs_redeliver_lost(*, limit: int, retry: float) -> int:
    """Give a new envelope to every waiting job whose delivery was lost: its envelope
    vanished, or a cluster took it ``retry`` seconds ago and never started it. Returns how many."""
    handled = 0
    with db.atomic():
        for row in db.fetch_all("job_find_undelivered", after=settings.REDELIVER_AFTER, retry=retry, limit=limit):
            db.fetch_one(
                "job_redeliver",
                id=row["id"],
                previous=row["envelope_id"],
                **queues.envelope(row["id"], timeout=row["timeout_seconds"], queue=row["queue"]),
            )
            logger.warning("redelivered job %s (its envelope was lost)", row["id"])
            handled += 1
    return handled


def jobs_promote_due(*, limit: int) -> int:
    """Show ``scheduled`` jobs whose time has come as ``queued`` (their envelope is
    already visible; this only changes what clients see). Returns how many."""
    row = db.fetch_one("job_promote_due", limit=limit)
    return int(row["promoted"]) if row else 0
