"""Keeping the promise that no job is lost, whatever happens to workers and envelopes.

Three passes, each safe to run in many clusters at once (rows are taken with
``FOR UPDATE SKIP LOCKED`` and every write re-checks its condition):

- **rescue**: a ``running`` job whose lease expired lost its worker (killed, crashed,
  hung past its timeout). It goes back to the queue with a new envelope, or — when its
  attempts are spent — ends ``failed`` (``cancelled`` if cancellation was asked).
- **redeliver**: a waiting job whose envelope vanished (deleted after a signature
  failure, the broker table flushed) or was taken by a cluster that never started it
  (it died holding it) gets a new envelope.
- **promote**: ``scheduled`` jobs whose ``run_at`` has come are shown as ``queued``.

Every cluster worker process runs these in a background thread (see ``jobs.signals``).
"""

from __future__ import annotations

import logging
import random
import threading
from typing import Any

from django.conf import settings as django_settings
from django.db import connection

from . import db, queue
from .conf import settings
from .exceptions import DatabaseUnavailable

logger = logging.getLogger(__name__)

BATCH = 100


def rescue_expired(*, limit: int = BATCH) -> int:
    """Requeue or end running jobs whose lease expired. Returns how many were handled."""
    handled = 0
    with db.atomic():
        for row in db.fetch_all("job_find_expired", limit=limit):
            worker = row["worker"]
            common = {"id": row["id"], "attempt": row["attempts"], "worker": worker}
            if row["cancel_requested"]:
                error = {"type": "WorkerLost", "message": "the worker stopped while the job was being cancelled"}
                db.fetch_one("job_rescue_fail", status="cancelled", error=error, **common)
            elif row["attempts"] >= row["max_attempts"]:
                error = {
                    "type": "WorkerLost",
                    "message": f"the worker running attempt {row['attempts']} of {row['max_attempts']} stopped "
                    "responding (crashed, was killed, or ran past its timeout)",
                }
                db.fetch_one("job_rescue_fail", status="failed", error=error, **common)
            else:
                error = {
                    "type": "WorkerLost",
                    "message": f"the worker running attempt {row['attempts']} stopped responding; the job was requeued",
                }
                db.fetch_one(
                    "job_rescue_requeue",
                    error=error,
                    **common,
                    **queue.envelope(row["id"], timeout=row["timeout_seconds"]),
                )
            logger.warning("rescued job %s (attempt %s, worker %s)", row["id"], row["attempts"], worker)
            handled += 1
    return handled


def redeliver_lost(*, limit: int = BATCH) -> int:
    """Give a new envelope to waiting jobs whose delivery was lost. Returns how many."""
    retry = getattr(django_settings, "Q_CLUSTER", {}).get("retry", 60)
    handled = 0
    with db.atomic():
        for row in db.fetch_all("job_find_undelivered", after=settings.REDELIVER_AFTER, retry=retry, limit=limit):
            db.fetch_one(
                "job_redeliver",
                id=row["id"],
                previous=row["envelope_id"],
                **queue.envelope(row["id"], timeout=row["timeout_seconds"]),
            )
            logger.warning("redelivered job %s (its envelope was lost)", row["id"])
            handled += 1
    return handled


def promote_due(*, limit: int = 1000) -> int:
    row = db.fetch_one("job_promote_due", limit=limit)
    return int(row["promoted"]) if row else 0


def tick() -> dict[str, int]:
    """One pass of every maintenance task."""
    return {"rescued": rescue_expired(), "redelivered": redeliver_lost(), "promoted": promote_due()}


class MaintenanceThread(threading.Thread):
    """Runs :func:`tick` every ``JOBS_MAINTENANCE_INTERVAL`` seconds (with jitter)."""

    def __init__(self) -> None:
        super().__init__(name="jobs-maintenance", daemon=True)
        self.stopping = threading.Event()

    def run(self) -> None:
        # Jitter so the workers of many clusters do not all query at the same instant.
        while not self.stopping.wait(settings.MAINTENANCE_INTERVAL * random.uniform(0.5, 1.5)):
            try:
                done: dict[str, Any] = tick()
                if any(done.values()):
                    logger.info("maintenance: %s", done)
            except DatabaseUnavailable:
                logger.warning("maintenance: database unavailable; will retry")
                connection.close()
            except Exception:
                logger.exception("maintenance pass failed")
                connection.close()


_thread: MaintenanceThread | None = None


def start_background() -> MaintenanceThread:
    """Start this process's maintenance thread (once)."""
    global _thread
    if _thread is None or not _thread.is_alive():
        _thread = MaintenanceThread()
        _thread.start()
    return _thread
