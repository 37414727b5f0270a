"""Delivering completion callbacks: each cluster POSTs the job resource (the batch
resource, for a batch's callback) of every due callback, signed, and records each attempt
(the rules and the outbox's writes are in ``jobs.services.callbacks``).

Deliveries run on their own threads in the cluster's main process, never on the
maintenance pass: a receiver that answers slowly (or never) must not hold up the rescue of
jobs whose worker died. At most ``JOBS_CALLBACK_CONCURRENCY`` deliveries run at once per
cluster, and at most ``JOBS_CALLBACK_PER_HOST`` of them to one host, so one slow host
cannot take every slot from the others; and each ends within ``JOBS_CALLBACK_TIMEOUT``
(a hard deadline, however slowly the receiver answers), so a slot is never held for ever.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from jobs import db
from jobs.conf import settings
from jobs.exceptions import DatabaseUnavailable
from jobs.services import callbacks as outbox

from . import outbound
from .loop import Periodic

logger = logging.getLogger(__name__)


def _deliver(callback: dict[str, Any]) -> tuple[int | None, str | None]:
    """One POST, over within ``JOBS_CALLBACK_TIMEOUT`` whatever the receiver does (a hard
    deadline on the whole exchange: ``jobs.runtime.outbound``); the receiver's status, or
    what went wrong. Never raises: whatever a receiver (or the job's content) does, the
    attempt is recorded."""
    try:
        if outbox.url_problem(callback["url"]) is not None:
            return None, "the host is no longer in JOBS_CALLBACK_ALLOWED_HOSTS"
        body = outbox.body(callback["job_id"], batch_id=callback.get("batch_id"))
        reply = outbound.post(
            callback["url"],
            body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": "jobplatform-callback",
                outbox.SIGNATURE_HEADER: outbox.signature(callback["callback_secret"], int(time.time()), body),
                outbox.DELIVERY_HEADER: str(callback["id"]),
            },
            deadline=float(settings.CALLBACK_TIMEOUT),
        )
    except Exception as exc:  # a misbehaving receiver, a bad URL, anything: recorded, retried
        return None, outbound.failure(exc)
    return reply.status, None if 200 <= reply.status < 300 else f"HTTP {reply.status}"


#: What a taken callback's lease holds beyond the POST's deadline: the body's query and the
#: attempt's record (database round trips, retried through a short outage), and resolving
#: the host name, which no deadline cuts short.
LEASE_MARGIN = 10.0


def lease() -> float:
    """How long a taken callback is hidden from other deliverers: the POST's hard deadline
    (``JOBS_CALLBACK_TIMEOUT``) and ``LEASE_MARGIN``, so that no other deliverer takes it
    while this one may still be posting it. Should an attempt outlast it all the same, its
    record is fenced by the attempt count: only the deliverer that took it last writes."""
    return float(settings.CALLBACK_TIMEOUT) + LEASE_MARGIN


def attempt(callback: dict[str, Any]) -> bool:
    """One delivery attempt of a taken callback, recorded (fenced by its attempt count, so
    only the deliverer that took it last writes). Returns whether it was delivered."""
    status, error = _deliver(callback)
    if status is not None and 200 <= status < 300:
        outbox.callback_delivered(callback_id=callback["id"], attempts=callback["attempts"], status=status)
        return True
    subject = f"batch {callback['batch_id']}" if callback.get("batch_id") else f"job {callback['job_id']}"
    logger.info("callback %s for %s failed: %s", callback["id"], subject, error)
    outbox.callback_failed(callback_id=callback["id"], attempts=callback["attempts"], status=status, error=error)
    return False


def deliver_due(*, limit: int) -> int:
    """One delivery attempt for each of up to ``limit`` due callbacks, one after another in
    this thread; returns how many. (Clusters deliver with :class:`CallbackDeliverer`.)"""
    attempted = 0
    for _ in range(limit):
        taken = outbox.callbacks_take(limit=1, lease=lease())
        if not taken:
            break
        attempt(taken[0])
        attempted += 1
    return attempted


class CallbackDeliverer(Periodic):
    """A cluster's callback deliveries: takes due callbacks while it has a free slot and
    POSTs each on a pool of ``concurrency`` threads, at most ``per_host`` at once to one
    host (callbacks to a host that already has that many in flight wait in the outbox,
    while other hosts' are taken). Looks for due callbacks every ``interval`` seconds
    (with jitter) and whenever a delivery ends."""

    def __init__(self, *, concurrency: int, per_host: int, interval: float) -> None:
        super().__init__(name="jobs-callbacks", interval=interval)
        self.concurrency = max(1, concurrency)
        self.per_host = max(1, min(per_host, self.concurrency))
        self._lock = threading.Lock()
        self._in_flight: Counter[str] = Counter()
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="jobs-callback")

    def in_flight(self) -> dict[str, int]:
        """Deliveries under way, per host."""
        with self._lock:
            return dict(self._in_flight)

    def step(self) -> None:
        self.fill()

    def fill(self) -> int:
        """Take due callbacks until every slot is busy or none is due; returns how many."""
        started = 0
        while not self.stopping.is_set():
            with self._lock:
                if sum(self._in_flight.values()) >= self.concurrency:
                    break
                busy = sorted(host for host, n in self._in_flight.items() if n >= self.per_host)
            taken = outbox.callbacks_take(limit=1, lease=lease(), busy_hosts=busy)
            if not taken:
                break
            callback = taken[0]
            with self._lock:
                self._in_flight[callback["host"]] += 1
            self._pool.submit(self._attempt, callback)
            started += 1
        return started

    def _attempt(self, callback: dict[str, Any]) -> None:
        try:
            attempt(callback)
        except DatabaseUnavailable:
            # Not recorded: its lease runs out and it is taken again.
            logger.warning("callback %s: database unavailable; it will be retried", callback["id"])
        except Exception:
            logger.exception("recording callback %s failed; it will be retried", callback["id"])
        finally:
            # A delivery thread holds no connection between deliveries (callbacks are rare
            # next to jobs; a cluster should not keep one idle connection per slot).
            db.reset()
            with self._lock:
                self._in_flight[callback["host"]] -= 1
                if self._in_flight[callback["host"]] <= 0:
                    del self._in_flight[callback["host"]]
            self.wake()

    def stop(self, timeout: float | None = None) -> None:
        """Take no more callbacks; wait up to ``timeout`` for those under way."""
        super().stop(timeout)
        self._pool.shutdown(wait=timeout is None or timeout > 0, cancel_futures=True)


_deliverer: CallbackDeliverer | None = None


def start_background() -> CallbackDeliverer:
    """Start this cluster's deliverer (once; ``qcluster`` calls it)."""
    global _deliverer
    if _deliverer is None or not _deliverer.is_alive():
        _deliverer = CallbackDeliverer(
            concurrency=int(settings.CALLBACK_CONCURRENCY),
            per_host=int(settings.CALLBACK_PER_HOST),
            interval=float(settings.MAINTENANCE_INTERVAL),
        )
        _deliverer.start()
    return _deliverer
