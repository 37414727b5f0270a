"""Prepared statements (``db.fetch_one_prepared``) outlive a change of their table.

A prepared ``SELECT *`` fails once its table gains a column ("cached plan must not
change result type"), which is what an upgrade does while the old release's clusters
keep their connections (docs/operations.md, Upgrades). The statement is prepared again.
"""

from __future__ import annotations

import psycopg2
import pytest
from django.db import DatabaseError, connection, transaction

from jobs import db, services
from jobs.runtime.worker import worker_name
from tests.conftest import database_url
from tests.integration.conftest import new_app

QUERY = "prepared_probe"


@pytest.fixture
def probe(monkeypatch):
    """A named query over a temporary table of this connection."""
    monkeypatch.setitem(db.queries, QUERY, "SELECT * FROM prepared_probe WHERE id = %(id)s")
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMP TABLE prepared_probe (id int PRIMARY KEY, name text)")
        cursor.execute("INSERT INTO prepared_probe VALUES (1, 'one')")
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS prepared_probe")
        cursor.execute("SELECT 1 FROM pg_prepared_statements WHERE name = %s", [QUERY])
        if cursor.fetchone():
            cursor.execute(f"DEALLOCATE {QUERY}")
    db._prepared.get(connection.connection, {}).pop(QUERY, None)


def add_column() -> None:
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE prepared_probe ADD COLUMN added text DEFAULT 'new'")


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_the_statement_is_prepared_again_and_run(probe):
    assert db.fetch_one_prepared(QUERY, id=1) == {"id": 1, "name": "one"}
    add_column()
    assert db.fetch_one_prepared(QUERY, id=1) == {"id": 1, "name": "one", "added": "new"}
    assert db.fetch_one_prepared(QUERY, id=1) == {"id": 1, "name": "one", "added": "new"}


def test_inside_a_transaction_the_error_aborts_it_and_the_next_call_prepares_again(db, probe):
    assert db_fetch() == {"id": 1, "name": "one"}
    add_column()
    with pytest.raises(DatabaseError, match="cached plan must not change result type"):
        with transaction.atomic():  # a savepoint: the error aborts it, not the test
            db_fetch()
    assert db_fetch() == {"id": 1, "name": "one", "added": "new"}


def db_fetch():
    return db.fetch_one_prepared(QUERY, id=1)


@pytest.mark.django_db(transaction=True)
def test_a_worker_finishes_its_job_after_a_migration_added_a_column_to_jobs():
    """The real case: ``job_finish`` prepared by a worker, a column added to ``jobs_job``
    by another connection (the new release's migrate), the worker's next finish."""
    app, _ = new_app()

    def run_one():
        job, _ = services.job_create(app=app, type="fibonacci", params={"n": 5}, metadata={})
        claimed = services.job_claim(job_id=job.id, worker=worker_name())
        return services.job_succeed(job=claimed, result={"value": 5})

    assert run_one().status == "succeeded"  # job_finish is now prepared on this connection
    other = psycopg2.connect(database_url(connection.settings_dict, connection.settings_dict["NAME"]))
    other.autocommit = True
    try:
        with other.cursor() as cursor:
            cursor.execute("ALTER TABLE jobs_job ADD COLUMN prepared_probe_added text")
        finished = run_one()
        assert finished.status == "succeeded"
        assert finished.result == {"value": 5}
    finally:
        with other.cursor() as cursor:
            cursor.execute("ALTER TABLE jobs_job DROP COLUMN IF EXISTS prepared_probe_added")
        other.close()


@pytest.mark.django_db(transaction=True)
def test_a_statement_discarded_from_the_session_is_prepared_again(probe):
    """``DISCARD ALL`` (what a pooler in session mode runs between clients) drops every
    prepared statement; here ``DEALLOCATE`` drops it (``DISCARD ALL`` would drop the
    temporary table too)."""
    assert db_fetch() == {"id": 1, "name": "one"}
    with connection.cursor() as cursor:
        cursor.execute(f"DEALLOCATE {QUERY}")
    assert db_fetch() == {"id": 1, "name": "one"}
