"""ListeningORM against the real PostgreSQL: the trigger, the wake-up, the poll fallback, reconnection.

No test here measures speed. Where a test must tell "woken by the notification" from
"found by the poll", the poll interval is set to a minute and the test only asks that
the wait ended within half of it.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator

import psycopg2
import pytest
from django.db import connection, connections
from django_q.brokers import orm
from django_q.conf import Conf

from jobs.runtime import broker as broker_module
from jobs.runtime.broker import APPLICATION_NAME, ListeningORM
from tests.conftest import database_url

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

LONG_POLL = 60.0


def raw_connection() -> psycopg2.extensions.connection:
    """A connection of its own that commits each statement (NOTIFY is sent at commit)."""
    conn = psycopg2.connect(database_url(connection.settings_dict))
    conn.autocommit = True
    return conn


def insert_envelope(key: str, *, delay: float = 0.0) -> int:
    conn = raw_connection()
    try:
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO django_q_ormq (key, payload, lock) "
                "VALUES (%s, 'payload', now() + make_interval(secs => %s)) RETURNING id",
                [key, delay],
            )
            return cur.fetchone()[0]
    finally:
        conn.close()


def backend_of(broker: ListeningORM) -> int:
    return broker.listener.connection.get_backend_pid()


def application_name_of(backend: int) -> str | None:
    conn = raw_connection()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT application_name FROM pg_stat_activity WHERE pid = %s", [backend])
            row = cur.fetchone()
            return row[0] if row else None
    finally:
        conn.close()


@pytest.fixture
def key() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def broker(key) -> Iterator[ListeningORM]:
    instance = ListeningORM(list_key=key)
    yield instance
    instance.listener.close()
    connections.close_all()


@pytest.fixture
def long_poll(monkeypatch) -> None:
    monkeypatch.setattr(Conf, "POLL", LONG_POLL)


def dequeue_while(broker: ListeningORM, action) -> tuple[object, float]:
    """Call ``broker.dequeue()`` with ``action`` run at the start of its idle wait; return
    what it returned and how long it took."""
    real_wait = broker.listener.wait

    def wait(timeout: float) -> bool:
        action()
        return real_wait(timeout)

    broker.listener.wait = wait  # type: ignore[method-assign]
    started = time.monotonic()
    try:
        return broker.dequeue(), time.monotonic() - started
    finally:
        broker.listener.wait = real_wait  # type: ignore[method-assign]


def test_the_claim_is_django_q2s_with_its_idle_sleep_replaced():
    assert broker_module._claim.__code__ is orm.ORM.dequeue.__code__
    # The name rebound must be the one django-q2's dequeue really calls when idle.
    assert "sleep" in orm.ORM.dequeue.__code__.co_names
    assert broker_module._claim.__globals__["sleep"] is not orm.sleep


def test_dequeue_returns_a_waiting_envelope_and_locks_it(broker, key):
    envelope_id = insert_envelope(key)
    tasks = broker.dequeue()
    assert tasks == [(envelope_id, "payload")]
    with connection.cursor() as cur:
        cur.execute("SELECT lock > now() + interval '1 second' FROM django_q_ormq WHERE id = %s", [envelope_id])
        assert cur.fetchone()[0], "claimed envelopes are locked for Q_RETRY like django-q2 does"
    assert broker.listener.connected


def test_a_committed_envelope_wakes_the_idle_broker(broker, key, long_poll):
    envelope_ids: list[int] = []
    result, took = dequeue_while(broker, lambda: envelope_ids.append(insert_envelope(key)))
    assert result is None, "the queue was empty when the broker looked"
    assert took < LONG_POLL / 2, "the notification, not the one-minute poll, ended the wait"
    assert broker.dequeue() == [(envelope_ids[0], "payload")]


def test_a_notification_sent_during_the_claim_is_not_missed(broker, key, long_poll, monkeypatch):
    """An envelope committed after the claim looked but before the wait began still ends the wait."""
    real_claim = broker_module._claim
    envelope_ids: list[int] = []

    def claim_then_commit(self):
        tasks = real_claim(self)
        envelope_ids.append(insert_envelope(key))
        return tasks

    monkeypatch.setattr(broker_module, "_claim", claim_then_commit)
    started = time.monotonic()
    assert broker.dequeue() is None
    assert time.monotonic() - started < LONG_POLL / 2
    monkeypatch.setattr(broker_module, "_claim", real_claim)
    assert broker.dequeue() == [(envelope_ids[0], "payload")]


def test_other_keys_and_later_envelopes_do_not_wake_it(broker, key, monkeypatch):
    monkeypatch.setattr(Conf, "POLL", 0.5)
    broker.listener.ensure()
    insert_envelope(f"{key}-other")  # another cluster's queue
    insert_envelope(key, delay=3600)  # due in an hour: found by the poll when due
    assert broker.listener.wait(0.5) is False
    insert_envelope(key)
    assert broker.listener.wait(LONG_POLL) is True


def test_without_notifications_the_poll_still_finds_envelopes(broker, key, monkeypatch):
    monkeypatch.setattr(Conf, "POLL", 0.2)
    with connection.cursor() as cur:
        cur.execute("ALTER TABLE django_q_ormq DISABLE TRIGGER django_q_ormq_notify")
    try:
        envelope_ids: list[int] = []
        result, _ = dequeue_while(broker, lambda: envelope_ids.append(insert_envelope(key)))
        assert result is None
        assert broker.dequeue() == [(envelope_ids[0], "payload")]
    finally:
        with connection.cursor() as cur:
            cur.execute("ALTER TABLE django_q_ormq ENABLE TRIGGER django_q_ormq_notify")


def test_a_dropped_listener_polls_then_reconnects_and_wakes_again(broker, key, long_poll, monkeypatch):
    monkeypatch.setattr(broker_module, "RECONNECT_INTERVAL", 0.0)
    broker.listener.ensure()
    old_backend = backend_of(broker)
    assert application_name_of(old_backend) == f"{APPLICATION_NAME} {os.getpid()}"

    def terminate() -> None:
        conn = raw_connection()
        try:
            conn.cursor().execute("SELECT pg_terminate_backend(%s)", [old_backend])
        finally:
            conn.close()

    # The broker notices the dropped connection in its wait and goes on (no exception).
    result, took = dequeue_while(broker, terminate)
    assert result is None and took < LONG_POLL / 2
    assert not broker.listener.connected

    # Its next dequeue listens again, on a new connection, and is woken again.
    envelope_ids: list[int] = []
    result, took = dequeue_while(broker, lambda: envelope_ids.append(insert_envelope(key)))
    assert result is None and took < LONG_POLL / 2
    assert backend_of(broker) != old_backend
    assert broker.dequeue() == [(envelope_ids[0], "payload")]


def test_while_the_listener_cannot_connect_it_polls(broker, key, monkeypatch):
    monkeypatch.setattr(Conf, "POLL", 0.2)

    def refuse() -> None:
        raise psycopg2.OperationalError("connection refused")

    monkeypatch.setattr(broker.listener, "_connect", refuse)
    assert broker.dequeue() is None
    assert not broker.listener.connected
    envelope_id = insert_envelope(key)
    assert broker.dequeue() == [(envelope_id, "payload")]


def test_a_connection_inherited_from_another_process_is_left_alone(broker, key, long_poll):
    """After fork the listener belongs to the parent: the child opens its own."""
    broker.listener.ensure()
    inherited = broker.listener.connection
    try:
        broker.listener.pid = -1  # as seen from a forked child
        assert not broker.listener.connected
        assert broker.listener.ensure()
        assert broker.listener.connection is not inherited
        assert not inherited.closed, "the parent's connection must not be closed by the child"
        assert backend_of(broker) != inherited.get_backend_pid()
    finally:
        inherited.close()


def test_the_broker_survives_pickling_without_its_connection(broker, key):
    """django-q2 hands the broker to its processes; a spawned one gets a fresh listener."""
    import pickle

    broker.listener.ensure()
    copy = pickle.loads(pickle.dumps(broker))
    assert copy.list_key == key and copy.listener.connection is None


def test_the_trigger_sends_one_notification_per_key_at_commit(key):
    listener = raw_connection()
    try:
        with listener.cursor() as cur:
            cur.execute("SELECT jobs_ormq_channel(%s)", [key])
            channel = cur.fetchone()[0]
            cur.execute(f'LISTEN "{channel}"')
        writer = psycopg2.connect(database_url(connection.settings_dict))
        try:
            with writer.cursor() as cur:
                cur.execute(
                    "INSERT INTO django_q_ormq (key, payload, lock) SELECT %s, 'p', now() FROM generate_series(1, 3)",
                    [key],
                )
                cur.execute("INSERT INTO django_q_ormq (key, payload, lock) VALUES (%s, 'p', now())", [key])
            time.sleep(0.2)
            listener.poll()
            assert listener.notifies == [], "nothing is sent before the commit"
            writer.commit()
        finally:
            writer.close()
        deadline = time.monotonic() + 30
        while not listener.notifies and time.monotonic() < deadline:
            time.sleep(0.05)
            listener.poll()
        assert [n.channel for n in listener.notifies] == [channel], "identical notifications fold into one"
    finally:
        listener.close()


def test_channels_fit_any_key_length():
    with connection.cursor() as cur:
        cur.execute("SELECT jobs_ormq_channel(%s)", ["k" * 100])
        channel = cur.fetchone()[0]
        cur.execute("SELECT pg_notify(jobs_ormq_channel(%s), '')", ["k" * 100])
    assert len(channel) <= 63


def test_the_products_job_create_wakes_the_idle_broker(broker, key, long_poll, settings):
    """The statement that creates a job (envelope in a CTE) sends the notification."""
    from jobs import services
    from tests.integration.conftest import new_app

    app, _ = new_app()
    settings.Q_CLUSTER = {**settings.Q_CLUSTER, "name": key}  # the default queue's envelope key
    jobs: list = []
    result, took = dequeue_while(
        broker, lambda: jobs.append(services.job_create(app=app, type="fibonacci", params={"n": 3}, metadata={})[0])
    )
    assert result is None and took < LONG_POLL / 2
    [(envelope_id, _payload)] = broker.dequeue()
    assert envelope_id == jobs[0].envelope_id


def test_listening_again_does_not_wait_for_the_poll(broker, key, long_poll, monkeypatch):
    """A listener that could not connect retries inside the idle wait, and once it is back the
    broker looks at the queue at once (what was committed meanwhile was not announced to it)."""
    monkeypatch.setattr(broker_module, "RECONNECT_INTERVAL", 0.2)
    real_connect = broker.listener._connect
    attempts: list[int] = []

    def refuse_once():
        attempts.append(1)
        if len(attempts) == 1:
            raise psycopg2.OperationalError("connection refused")
        return real_connect()

    monkeypatch.setattr(broker.listener, "_connect", refuse_once)
    started = time.monotonic()
    assert broker.dequeue() is None
    assert time.monotonic() - started < LONG_POLL / 2
    assert len(attempts) == 2 and broker.listener.connected
