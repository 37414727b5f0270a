"""Keeping the promise that no job is lost, whatever happens to workers and envelopes.

Every cluster worker process runs a :class:`MaintenanceThread` (started by
``jobs.runtime.signals`` when django-q2 spawns the process). Each pass runs these
maintenance services, one module each, in this order:

- :mod:`.rescue` — running jobs whose lease expired (their worker died or hung);
- :mod:`.redeliver` — waiting jobs whose delivery envelope was lost;
- :mod:`.promote` — scheduled jobs whose time has come are shown as queued;
- :mod:`.schedule` — each due fire time of a schedule becomes exactly one job.

Each calls its transition in ``jobs.services`` and is safe to run in many
clusters at once (``FOR UPDATE SKIP LOCKED``; every write re-checks its condition).

Completion callbacks are not delivered here: a slow receiver would hold up the rescue.
Each cluster delivers them on threads of its own (``jobs.runtime.callbacks``).
"""

from __future__ import annotations

import logging

from jobs.conf import settings
from jobs.runtime.loop import Periodic

from . import promote, redeliver, rescue, schedule

logger = logging.getLogger(__name__)

#: The maintenance services, in the order a pass runs them.
SERVICES = (rescue, redeliver, promote, schedule)


def tick() -> dict[str, int]:
    """One pass of every maintenance service; how many jobs each one handled."""
    batch = int(settings.MAINTENANCE_BATCH)
    return {service.NAME: service.run(batch=batch) for service in SERVICES}


class MaintenanceThread(Periodic):
    """Runs :func:`tick` every ``JOBS_MAINTENANCE_INTERVAL`` seconds (with jitter)."""

    def __init__(self) -> None:
        super().__init__(name="jobs-maintenance", interval=float(settings.MAINTENANCE_INTERVAL))

    def step(self) -> None:
        done = tick()
        if any(done.values()):
            logger.info("maintenance: %s", done)


_thread: MaintenanceThread | None = None


def start_background() -> MaintenanceThread:
    """Start this process's maintenance thread (once)."""
    global _thread
    if _thread is None or not _thread.is_alive():
        _thread = MaintenanceThread()
        _thread.start()
    return _thread
