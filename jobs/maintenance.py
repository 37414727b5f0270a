"""Keeping the promise that no job is lost, whatever happens to workers and envelopes.

Every cluster worker process runs :func:`tick` in a background thread (see
``jobs.signals``). Each pass calls the maintenance transitions of ``jobs.services``:

- **rescue**: a ``running`` job whose lease expired lost its worker (killed, crashed,
  hung past its timeout). It goes back to the queue with a new envelope, or — when its
  attempts are spent — ends ``failed`` (``cancelled`` if cancellation was asked).
- **redeliver**: a waiting job whose envelope vanished (deleted after a signature
  failure, the broker table flushed) or was taken by a cluster that never started it
  (it died holding it) gets a new envelope.
- **promote**: ``scheduled`` jobs whose ``run_at`` has come are shown as ``queued``.

Completion callbacks are not delivered here: a slow receiver would hold up the rescue.
Each cluster delivers them on threads of its own (``jobs.callbacks.CallbackDeliverer``).

Each is safe to run in many clusters at once: rows are taken with ``FOR UPDATE SKIP
LOCKED`` and every write re-checks its condition.
"""

from __future__ import annotations

import logging
import random
import threading

from django.conf import settings as django_settings

from . import db, services
from .conf import settings
from .exceptions import DatabaseUnavailable

logger = logging.getLogger(__name__)


def tick() -> dict[str, int]:
    """One pass of every maintenance task; how many jobs each one handled."""
    batch = settings.MAINTENANCE_BATCH
    # django-q2 hands an envelope out again after Q_CLUSTER["retry"] seconds.
    retry = getattr(django_settings, "Q_CLUSTER", {}).get("retry", 60)
    return {
        "rescued": services.jobs_rescue_expired(limit=batch),
        "redelivered": services.jobs_redeliver_lost(limit=batch, retry=retry),
        "promoted": services.jobs_promote_due(limit=batch),
    }


class MaintenanceThread(threading.Thread):
    """Runs :func:`tick` every ``JOBS_MAINTENANCE_INTERVAL`` seconds (with jitter)."""

    def __init__(self) -> None:
        super().__init__(name="jobs-maintenance", daemon=True)
        self.stopping = threading.Event()

    def run(self) -> None:
        # Jitter so the workers of many clusters do not all query at the same instant.
        while not self.stopping.wait(settings.MAINTENANCE_INTERVAL * random.uniform(0.5, 1.5)):
            try:
                done = tick()
                if any(done.values()):
                    logger.info("maintenance: %s", done)
            except DatabaseUnavailable:
                logger.warning("maintenance: database unavailable; will retry")
                db.reset()
            except Exception:
                logger.exception("maintenance pass failed")
                db.reset()


_thread: MaintenanceThread | None = None


def start_background() -> MaintenanceThread:
    """Start this process's maintenance thread (once)."""
    global _thread
    if _thread is None or not _thread.is_alive():
        _thread = MaintenanceThread()
        _thread.start()
    return _thread
