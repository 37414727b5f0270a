"""The background threads' common loop: run a step on a schedule, whatever happens."""

from __future__ import annotations

import logging
import random
import threading

from jobs import db
from jobs.exceptions import DatabaseUnavailable

logger = logging.getLogger(__name__)


class Periodic(threading.Thread):
    """A daemon thread that runs :meth:`step` at once, then every ``interval`` seconds
    (±50 % jitter, so the threads of many clusters do not query at the same instant) or
    as soon as :meth:`wake` is called. A database outage or any other error is logged and
    the connection dropped; the next step runs on schedule."""

    def __init__(self, *, name: str, interval: float) -> None:
        super().__init__(name=name, daemon=True)
        self.interval = interval
        self.stopping = threading.Event()
        self._woken = threading.Event()

    def step(self) -> None:
        raise NotImplementedError

    def wake(self) -> None:
        """Run the next step now rather than at the end of the interval."""
        self._woken.set()

    def run(self) -> None:
        while not self.stopping.is_set():
            self._woken.clear()
            try:
                self.step()
            except DatabaseUnavailable:
                logger.warning("%s: database unavailable; will retry", self.name)
                db.reset()
            except Exception:
                logger.exception("%s: pass failed", self.name)
                db.reset()
            self._woken.wait(self.interval * random.uniform(0.5, 1.5))
        db.reset()

    def stop(self, timeout: float | None = None) -> None:
        self.stopping.set()
        self._woken.set()
        self.join(timeout)
