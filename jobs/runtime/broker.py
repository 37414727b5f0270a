"""django-q2's database broker, woken by PostgreSQL LISTEN/NOTIFY instead of sleeping.

django-q2's ORM broker only polls: when the queue is empty its ``dequeue()`` sleeps
``Q_CLUSTER["poll"]`` seconds, so a new job waits for the rest of that sleep before a
worker sees it. Migration 0009 puts a trigger on ``django_q_ormq`` that sends a NOTIFY
on its cluster key's channel whenever a statement writes due envelopes (delivered at
commit, so never before the envelope is visible). :class:`ListeningORM` keeps one more
connection in the process that dequeues (the cluster's pusher) which LISTENs on its
own key's channel; an idle ``dequeue()`` waits on that connection's socket for up to
the poll interval instead of sleeping, so a commit wakes it at once.

The poll stays the fallback: a notification that never comes (trigger disabled, the
listening connection dropped, a transaction-pooling proxy in between) delays a pickup
by at most one poll interval, as without this broker. A dropped listening connection is
opened again (at most once per :data:`RECONNECT_INTERVAL`); until then it polls.

Claiming is django-q2's own code, unchanged: same query, same ``Q_CLUSTER["bulk"]``,
same optimistic lock on the envelope's ``lock`` column, same retry time.
"""

from __future__ import annotations

import logging
import os
import select
import time
import types
from typing import Any

import psycopg2
from django.db import connections
from django_q.brokers import orm
from django_q.conf import Conf

from jobs import db

logger = logging.getLogger(__name__)

#: ``application_name`` of every listening connection (followed by the process id), so
#: operators (and tests) find it in ``pg_stat_activity``.
APPLICATION_NAME = "jobs-listener"

#: After a failed attempt to open the listening connection, wait this long (seconds)
#: before the next one; meanwhile the broker polls.
RECONNECT_INTERVAL = 1.0

#: libpq TCP keepalive options of the listening connection (``OPTIONS`` in the database
#: settings take precedence).
KEEPALIVES = {"keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10, "keepalives_count": 3}

# django-q2's ORM.dequeue itself (same code object: the same query and the same
# optimistic claim on the ``lock`` column), with one name rebound: the ``sleep`` it
# calls when the queue is empty does nothing, because ListeningORM.dequeue waits on
# the listening connection instead. Everything else resolves to django-q2's module.
_claim = types.FunctionType(
    orm.ORM.dequeue.__code__,
    {**vars(orm), "sleep": lambda seconds: None},
    "claim",
    orm.ORM.dequeue.__defaults__,
    orm.ORM.dequeue.__closure__,
)


class Listener:
    """One connection that LISTENs on a cluster key's channel, owned by one process.

    Opened lazily by the process that dequeues: a connection inherited across
    ``fork`` shares its socket with the parent and is never used (nor closed) here.
    """

    def __init__(self, key: str, alias: str) -> None:
        self.key = key
        self.alias = alias
        self.connection: Any = None
        self.pid: int | None = None
        self._next_attempt = 0.0
        self._failing = False  # log a failure once, not at every attempt

    @property
    def connected(self) -> bool:
        return self.connection is not None and self.pid == os.getpid()

    def ensure(self) -> bool:
        """Listen from this process, connecting if needed. False while that fails."""
        if self.connection is not None and self.pid != os.getpid():
            # Inherited across fork: the socket is the parent's, leave it alone; this
            # process has not tried to connect yet, so it may at once.
            self.connection = None
            self._next_attempt = 0.0
        if self.connection is not None:
            return True
        now = time.monotonic()
        if now < self._next_attempt:
            return False
        self._next_attempt = now + RECONNECT_INTERVAL
        try:
            self.connection = self._connect()
        except Exception as exc:  # listening only speeds pickup up: never let it stop the pusher
            if not self._failing:
                logger.warning("cannot listen for new envelopes (polling meanwhile): %s", str(exc).strip())
            self._failing = True
            return False
        self.pid = os.getpid()
        self._failing = False
        logger.info("listening for new envelopes of %r", self.key)
        return True

    def _connect(self) -> Any:
        params = connections[self.alias].get_connection_params()
        params.pop("cursor_factory", None)  # Django's cursor class is for Django's connections
        params["application_name"] = f"{APPLICATION_NAME} {os.getpid()}"
        # This connection only ever waits, so a silently vanished peer would go unnoticed
        # (the poll would carry on alone): TCP keepalives notice it within about a minute.
        for option, value in KEEPALIVES.items():
            params.setdefault(option, value)
        connection = psycopg2.connect(**params)
        try:
            connection.autocommit = True  # LISTEN takes effect at once, not at a commit
            db.listen(connection, key=self.key)
        except BaseException:
            connection.close()
            raise
        return connection

    def drain(self) -> None:
        """Forget the notifications received so far."""
        if not self.connected:
            return
        try:
            self.connection.poll()
        except psycopg2.Error as exc:
            self._lost(exc)
        else:
            self.connection.notifies.clear()

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for a notification. True: look at the queue now
        (notified, or listening again after an outage, when envelopes may have been missed).

        While not listening this is the poll's sleep, with an attempt to listen again
        every :data:`RECONNECT_INTERVAL`.
        """
        deadline = time.monotonic() + timeout
        while not self.connected:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            time.sleep(max(0.0, min(remaining, self._next_attempt - time.monotonic())))
            if time.monotonic() < deadline and self.ensure():
                return True
        try:
            readable, _, _ = select.select([self.connection], [], [], max(0.0, deadline - time.monotonic()))
            if not readable:
                return False
            self.connection.poll()
            notified = bool(self.connection.notifies)
            if not notified:
                # Readable without a notification: most often the server ended the
                # connection (psycopg2's poll() reports that only as a notice, and the
                # socket stays readable). A query tells for sure.
                db.ping(self.connection)
        except (psycopg2.Error, OSError, ValueError) as exc:
            self._lost(exc)
            return False
        self.connection.notifies.clear()
        return notified

    def close(self) -> None:
        if self.connected:
            self.connection.close()
        self.connection = None

    def _lost(self, exc: BaseException) -> None:
        logger.warning("listening connection lost (polling until it is back): %s", str(exc).strip())
        try:
            self.connection.close()
        except psycopg2.Error:
            pass
        self.connection = None


class ListeningORM(orm.ORM):
    """django-q2's ORM broker whose idle wait ends as soon as a new envelope is committed.

    Set with ``Q_CLUSTER["broker_class"] = "jobs.runtime.broker.ListeningORM"`` (the default;
    ``Q_LISTEN=false`` goes back to django-q2's plain polling broker).
    """

    def __init__(self, list_key: str | None = None) -> None:
        super().__init__(list_key=list_key)
        self.listener = Listener(self.list_key, Conf.ORM)

    def __setstate__(self, state: Any) -> None:
        super().__setstate__(state)
        self.listener = Listener(self.list_key, Conf.ORM)

    def info(self) -> str:
        if not self._info:
            self._info = f"ORM {Conf.ORM} + LISTEN/NOTIFY"
        return self._info

    def dequeue(self) -> list[tuple[int, str]] | None:
        # Listen before looking, and forget what was announced before this claim: it
        # sees those envelopes. A commit after it ends the wait below.
        self.listener.ensure()
        self.listener.drain()
        tasks = _claim(self)
        if tasks is None:  # the queue was empty: where django-q2 sleeps
            self.listener.wait(Conf.POLL)
        return tasks
