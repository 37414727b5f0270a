"""Integration tests: the real PostgreSQL (DATABASE_URL or the embedded server)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg2
import pytest
from rest_framework.test import APIClient

from jobs import selectors, services
from jobs.domain import App
from tests.conftest import database_url


def new_app(name: str | None = None) -> tuple[App, str]:
    token, _ = services.token_issue(app_name=name or f"app-{uuid.uuid4().hex[:12]}")
    app = selectors.app_for_token(token=token)
    assert app is not None
    return app, token


#: Callbacks that would be due now.
PARK_CALLBACKS = "UPDATE jobs_callback SET due_at = 'infinity' WHERE delivered_at IS NULL AND gave_up_at IS NULL"
#: Active schedules.
PARK_SCHEDULES = "UPDATE jobs_schedule SET next_fire_at = 'infinity' WHERE state = 'active'"


def park_committed(request: pytest.FixtureRequest, *statements: str) -> None:
    """Rows committed before this test (by transactional tests, or by earlier runs on a
    database kept with --reuse-db, as the mutmut run does) are not this test's: the
    ``statements`` park them in the test's own transaction, rolled back after it, so what a
    maintenance pass counts is this test's. Transactional tests cope with them themselves."""
    marker = request.node.get_closest_marker("django_db")
    if "transactional_db" in request.fixturenames or (marker and (marker.kwargs.get("transaction") or marker.args)):
        return
    request.getfixturevalue("db")
    from django.db import connection

    with connection.cursor() as cur:
        for statement in statements:
            cur.execute(statement)


@pytest.fixture
def app_and_token(db) -> tuple[App, str]:
    return new_app()


@pytest.fixture
def app(app_and_token) -> App:
    return app_and_token[0]


@pytest.fixture
def api(app_and_token) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {app_and_token[1]}")
    return client


@pytest.fixture
def raw(db):
    """A cursor for assertions on raw table state (the test's own transaction)."""
    from django.db import connection

    with connection.cursor() as cursor:
        yield cursor


@dataclass(frozen=True)
class SourceDatabase:
    """A database of its own beside the test database (never the platform's: migrate_rows
    refuses that), with a login role that may read only what a test grants it."""

    name: str
    role: str
    admin_url: str
    reader_url: str

    def admin(self) -> Any:
        conn = psycopg2.connect(self.admin_url)
        conn.autocommit = True
        return conn

    def grant_select(self, *tables: str) -> None:
        """Let the reader role read ``tables`` (names as SQL already quoted where needed)."""
        conn = self.admin()
        try:
            with conn.cursor() as cur:
                for table in tables:
                    cur.execute(f'GRANT SELECT ON {table} TO "{self.role}"')
        finally:
            conn.close()


@pytest.fixture(scope="session")
def source_database(django_db_setup) -> Iterator[SourceDatabase]:
    from django.db import connection

    settings_dict = connection.settings_dict
    name = f"{settings_dict['NAME']}_source"[:63]
    role = f"{name}_reader"[:63]
    password = uuid.uuid4().hex
    admin_url = database_url(settings_dict, name)
    reader = {**settings_dict, "USER": role, "PASSWORD": password}
    conn = psycopg2.connect(database_url(settings_dict, settings_dict["NAME"]))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            cur.execute(f'DROP ROLE IF EXISTS "{role}"')
            cur.execute(f'CREATE DATABASE "{name}"')
            cur.execute(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'")
            cur.execute(f'REVOKE ALL ON DATABASE "{name}" FROM PUBLIC')
            cur.execute(f'GRANT CONNECT ON DATABASE "{name}" TO "{role}"')
        yield SourceDatabase(name=name, role=role, admin_url=admin_url, reader_url=database_url(reader, name))
    finally:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            cur.execute(f'DROP ROLE IF EXISTS "{role}"')
        conn.close()


def second_waits_for_first(first, second) -> list:
    """A race made deterministic: ``first()`` runs in a transaction left
    open while ``second()`` runs on another connection; the second must wait for the first
    to commit (and then see it), not count without it. Returns what the second returned, or
    the exception it raised."""
    from django.db import connection, transaction

    answers: list = []
    second_pid: list[int] = []
    connected = threading.Event()

    def run_second():
        try:
            with connection.cursor() as cur:
                cur.execute("SELECT pg_backend_pid()")
                second_pid.append(cur.fetchone()[0])
            connected.set()
            answers.append(second())
        except Exception as exc:  # its answer, asserted by the caller
            answers.append(exc)
        finally:
            connected.set()
            connection.close()

    with transaction.atomic():
        first()  # not committed yet
        thread = threading.Thread(target=run_second)
        thread.start()
        assert connected.wait(10) and second_pid, answers
        waiting = 0
        for _ in range(300):  # until the second waits for a lock (advisory, row, …), or is over
            with connection.cursor() as cur:
                cur.execute("SELECT count(*) FROM pg_locks WHERE NOT granted AND pid = %s", second_pid)
                waiting = cur.fetchone()[0]
            if waiting or not thread.is_alive():
                break
            threading.Event().wait(0.1)
        assert waiting == 1 and thread.is_alive(), f"the second did not wait: {answers}"
    thread.join(timeout=30)
    return answers
