"""Every named query against the real database: transitions, fencing, triggers."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone
from django_q.signing import SignedPackage

from jobs import db, queue, selectors, services
from jobs.domain import Status
from jobs.exceptions import InvalidInput, JobAlreadyFinished, JobNotFound, StaleRun


class E(Exception):
    pass


class Boom(Exception):
    pass


def create(app, **kwargs):
    values = {"type": "fibonacci", "params": {"n": 10}, "metadata": {"k": "v"}} | kwargs
    return services.job_create(app=app, **values)[0]


#: The SQL type of every named parameter, so each query is prepared exactly as it runs.
PARAM_TYPES = {
    "after": "float8",
    "after_id": "int8",
    "app_id": "uuid",
    "attempt": "int4",
    "attempts": "int4",
    "before_created_at": "timestamptz",
    "before_id": "uuid",
    "batch_id": "uuid",
    "callback_id": "int8",
    "callback_url": "text",
    "checkpoint": "jsonb",
    "checkpoint_at": "timestamptz",
    "data": "text",
    "created_after": "timestamptz",
    "created_before": "timestamptz",
    "delay": "float8",
    "dropped": "int4",
    "event": "jsonb",
    "run_at": "timestamptz",
    "seconds": "int4",
    "total": "int4",
    "secret": "text",
    "envelope_key": "text",
    "expires_at": "timestamptz",
    "envelope_payload": "text",
    "error": "jsonb",
    "id": "uuid",
    "idempotency_key": "text",
    "jobs": "jsonb",
    "key": "text",
    "lease": "float8",
    "busy_hosts": "jsonb",
    "walk": "int4",
    "key_hash": "text",
    "lease_seconds": "float8",
    "levels": "text",
    "limit": "int4",
    "lines": "jsonb",
    "max_attempts": "int4",
    "max_lines": "int4",
    "max_running": "int4",
    "n": "int4",
    "max_unfinished": "int4",
    "metadata": "jsonb",
    "milestone": "bool",
    "name": "text",
    "notes": "jsonb",
    "params": "jsonb",
    "prefix": "text",
    "previous": "int8",
    "queue": "text",
    "progress": "jsonb",
    "ref": "text",
    "request_hash": "text",
    "rerun_of": "uuid",
    "result": "jsonb",
    "retry": "float8",
    "run_bounds": "float8[]",
    "status": "text",
    "statuses": "text",
    "timeout_seconds": "int4",
    "token_hash": "text",
    "wait_bounds": "float8[]",
    "app_name": "text",
    "scopes": "text",
    "window": "int4",
    "count_token": "bool",
    "address_key": "text",
    "token_id": "uuid",
    "type": "text",
    "worker": "text",
    # schedules (jobs/sql/schedules.sql)
    "before_event": "int8",
    "catch_up": "text",
    "created": "int4",
    "cron": "text",
    "ends_at": "timestamptz",
    "events": "jsonb",
    "every_seconds": "int4",
    "expected": "timestamptz",
    "failed_at": "timestamptz",
    "fire_time": "timestamptz",
    "job": "jsonb",
    "last_fire_at": "timestamptz",
    "last_job_id": "uuid",
    "max_schedules": "int4",
    "next_fire_at": "timestamptz",
    "schedule_id": "uuid",
    "starts_at": "timestamptz",
    "state": "text",
    "timezone": "text",
    "workers": "jsonb",
}


def as_prepared(sql: str) -> tuple[str, list[str]]:
    """``%(name)s`` placeholders as ``$n``, with the list of their names in order."""
    import re

    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return re.sub(r"%\(([a-z_]+)\)s", number, sql).replace("%%", "%"), names


#: Utility statements PostgreSQL cannot PREPARE; each is exercised by its own tests.
NOT_PREPARABLE = {"queue_listen": "LISTEN takes an identifier (tests/integration/test_broker.py)"}


@pytest.mark.parametrize("name", sorted(set(db.queries) - set(NOT_PREPARABLE)))
def test_every_named_query_prepares_against_the_real_schema(raw, name):
    """PREPARE makes PostgreSQL parse, resolve every table, column, function and type,
    and type-check the statement, without running it."""
    sql, names = as_prepared(db.queries[name])
    unknown = [n for n in names if n not in PARAM_TYPES]
    assert not unknown, f"declare the SQL type of {unknown} in PARAM_TYPES"
    types = ", ".join(PARAM_TYPES[n] for n in names)
    raw.execute(f"PREPARE checked ({types}) AS {sql}" if names else f"PREPARE checked AS {sql}")
    raw.execute("DEALLOCATE checked")


def test_migrations_created_tables_and_triggers(raw):
    raw.execute("SELECT tablename FROM pg_tables WHERE tablename LIKE 'jobs_%' ORDER BY 1")
    assert [r[0] for r in raw.fetchall()] == [
        "jobs_app",
        "jobs_batch",
        "jobs_batch_event",
        "jobs_callback",
        "jobs_event",
        "jobs_job",
        "jobs_log",
        "jobs_rate",
        "jobs_schedule",
        "jobs_schedule_event",
        "jobs_session",
        "jobs_token",
    ]
    raw.execute("SELECT tgname FROM pg_trigger WHERE tgname LIKE 'jobs_%' ORDER BY 1")
    names = {r[0] for r in raw.fetchall()}
    assert {"jobs_job_no_delete", "jobs_job_no_truncate", "jobs_event_no_delete", "jobs_event_no_truncate"} <= names


def test_the_database_knows_exactly_the_event_kinds_the_code_knows(raw, app):
    """jobs_event_kind_known lists EventKind's values: a new kind needs its migration."""
    import re

    from jobs.domain import EventKind

    raw.execute("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'jobs_event_kind_known'")
    [definition] = raw.fetchone()
    assert sorted(re.findall(r"'([a-z_]+)'", definition)) == sorted(kind.value for kind in EventKind)
    job, _ = services.job_create(app=app, type="fibonacci", params={"n": 1})
    with pytest.raises(IntegrityError, match="jobs_event_kind_known"), transaction.atomic():
        raw.execute("INSERT INTO jobs_event (job_id, kind, attempt, data) VALUES (%s, 'teleported', 0, '{}')", [job.id])


@pytest.mark.django_db(transaction=True)
def test_create__row_and_envelope_are_committed_together():
    """Seen from another connection once job_create returns: the job and its envelope."""
    import psycopg2
    from django.db import connection

    from tests.conftest import database_url
    from tests.integration.conftest import new_app

    app, _ = new_app()
    job = create(app)
    other = psycopg2.connect(database_url(connection.settings_dict))
    try:
        with other.cursor() as cur:
            cur.execute("SELECT status, envelope_id FROM jobs_job WHERE id = %s", [str(job.id)])
            assert cur.fetchone() == ("queued", job.envelope_id)
            cur.execute("SELECT payload FROM django_q_ormq WHERE id = %s", [job.envelope_id])
            assert SignedPackage.loads(cur.fetchone()[0])["args"] == (str(job.id),)
            cur.execute("SELECT array_agg(kind ORDER BY id) FROM jobs_event WHERE job_id = %s", [str(job.id)])
            assert cur.fetchone()[0] == ["created", "queued"]

            # A job insert that fails (no such application) commits no envelope either.
            cur.execute("SELECT count(*) FROM django_q_ormq")
            envelopes = cur.fetchone()[0]
            job_id = uuid.uuid4()
            with pytest.raises(DatabaseError):
                db.fetch_one(
                    "job_create",
                    id=job_id,
                    app_id=uuid.uuid4(),  # no such application: the job insert fails (foreign key)
                    type="fibonacci",
                    queue="default",
                    params={"n": 1},
                    metadata={},
                    max_attempts=1,
                    timeout_seconds=5,
                    run_at=None,
                    idempotency_key=None,
                    request_hash=None,
                    max_unfinished=0,
                    callback_url=None,
                    rerun_of=None,
                    checkpoint=None,
                    checkpoint_at=None,
                    schedule_id=None,
                    fire_time=None,
                    **queue.envelope(job_id, timeout=5),
                )
            other.rollback()  # a new snapshot
            cur.execute("SELECT count(*) FROM django_q_ormq")
            assert cur.fetchone()[0] == envelopes
    finally:
        other.close()


def test_create__envelope_carries_the_job(app, raw):
    job = create(app)
    raw.execute("SELECT payload, lock <= now() FROM django_q_ormq WHERE id = %s", [job.envelope_id])
    payload, visible = raw.fetchone()
    task = SignedPackage.loads(payload)
    assert task["func"] == "jobs.runtime.worker.execute_job"
    assert task["args"] == (str(job.id),)
    assert task["timeout"] == job.timeout_seconds
    assert visible
    assert job.status is Status.QUEUED and job.attempts == 0


def test_create__scheduled_with_delayed_envelope(app, raw):
    job = create(app, run_at=timezone.now() + timedelta(hours=1))
    assert job.status is Status.SCHEDULED and job.run_at is not None
    raw.execute("SELECT lock > now() + interval '3500 seconds' FROM django_q_ormq WHERE id = %s", [job.envelope_id])
    assert raw.fetchone()[0]
    assert services.job_claim(job_id=job.id, worker="w") is None


def test_params_and_metadata_round_trip_exactly(app):
    metadata = {"migration": "customers", "nested": {"list": [1, 2.5, None, True, "ç"]}, "empty": {}}
    job = create(app, metadata=metadata)
    again = selectors.job_get(app=app, job_id=job.id)
    assert again.metadata == metadata
    assert again.params == {"n": 10}


def test_claim__once_only_with_attempt_and_lease(app):
    job = create(app)
    claimed = services.job_claim(job_id=job.id, worker="host:1")
    assert claimed.status is Status.RUNNING and claimed.attempts == 1
    assert claimed.lease_expires_at > claimed.started_at
    assert claimed.worker == "host:1"
    assert services.job_claim(job_id=job.id, worker="host:2") is None


def test_heartbeat_progress_succeed(app):
    job = services.job_claim(job_id=create(app).id, worker="w")
    assert services.job_heartbeat(job=job) is False
    assert services.job_progress(job=job, percent=50.0, message="half", milestone=True) is False
    assert selectors.job_get(app=app, job_id=job.id).progress == {"percent": 50.0, "message": "half"}
    done = services.job_succeed(job=job, result={"value": "55"})
    assert done.status is Status.SUCCEEDED and done.result == {"value": "55"} and done.finished_at


def test_stale_attempt_writes_nothing(app, raw):
    job = services.job_claim(job_id=create(app).id, worker="w")
    raw.execute("SELECT count(*) FROM django_q_ormq")
    envelopes = raw.fetchone()[0]
    stale = job.__class__(**{**job.__dict__, "attempts": job.attempts + 7})
    for write in (
        lambda: services.job_heartbeat(job=stale),
        lambda: services.job_progress(job=stale, percent=1, message="x", milestone=False),
        lambda: services.job_succeed(job=stale, result=1),
        lambda: services.job_fail(job=stale, error=E("m"), retryable=True),
        lambda: services.job_fail(job=stale, error=E("m"), retryable=False),
    ):
        with pytest.raises(StaleRun):
            write()
    current = selectors.job_get(app=app, job_id=job.id)
    assert current.status is Status.RUNNING and current.result is None and current.progress is None
    raw.execute("SELECT count(*) FROM django_q_ormq")
    assert raw.fetchone()[0] == envelopes  # a stale retry leaves no stray envelope


def test_retry__scheduled_with_backoff_then_claimable_once_due(app, raw):
    job = services.job_claim(job_id=create(app).id, worker="w")
    retried = services.job_fail(job=job, error=Boom("m"), retryable=True)
    assert retried.status is Status.SCHEDULED and retried.run_at > retried.updated_at
    assert retried.envelope_id != job.envelope_id
    raw.execute("SELECT lock FROM django_q_ormq WHERE id = %s", [retried.envelope_id])
    assert raw.fetchone()[0] == retried.run_at  # invisible to clusters until the backoff ends
    assert services.job_claim(job_id=job.id, worker="w") is None  # backoff not elapsed
    # Move time instead of sleeping: the backoff is over.
    raw.execute("UPDATE jobs_job SET run_at = now() - interval '1 second' WHERE id = %s", [job.id])
    second = services.job_claim(job_id=job.id, worker="w")
    assert second.attempts == 2
    assert second.error == {"type": "Boom", "message": "m"}


def test_fail_after_last_attempt_keeps_each_error_in_history(app):
    job = create(app, max_attempts=2)
    for attempt in (1, 2):
        from django.db import connection

        with connection.cursor() as cur:
            cur.execute("UPDATE jobs_job SET run_at = now() - interval '1 second' WHERE id = %s", [job.id])
        running = services.job_claim(job_id=job.id, worker="w")
        assert running.attempts == attempt
        services.job_fail(job=running, error=E(f"try {attempt}"), retryable=True)
    final = selectors.job_get(app=app, job_id=job.id)
    assert final.status is Status.FAILED and final.error == {"type": "E", "message": "try 2"}
    events = selectors.job_events(app=app, job_id=job.id)
    kinds = [e.kind for e in events]
    assert kinds == ["created", "queued", "started", "retried", "started", "failed"]
    assert events[3].data["error"]["message"] == "try 1"


def test_cancel__queued_now__running_asked__finished_409(app):
    queued = create(app)
    assert services.job_cancel(app=app, job_id=queued.id).status is Status.CANCELLED
    assert services.job_claim(job_id=queued.id, worker="w") is None
    with pytest.raises(JobAlreadyFinished):
        services.job_cancel(app=app, job_id=queued.id)

    running = services.job_claim(job_id=create(app).id, worker="w")
    asked = services.job_cancel(app=app, job_id=running.id)
    assert asked.status is Status.RUNNING and asked.cancel_requested_at is not None
    assert services.job_heartbeat(job=running) is True
    assert services.job_cancelled(job=running).status is Status.CANCELLED


def test_other_apps_cannot_see_or_cancel(app):
    from tests.integration.conftest import new_app

    job = create(app)
    other, _ = new_app()
    with pytest.raises(JobNotFound):
        selectors.job_get(app=other, job_id=job.id)
    with pytest.raises(JobNotFound):
        selectors.job_events(app=other, job_id=job.id)
    with pytest.raises(JobNotFound):
        services.job_cancel(app=other, job_id=job.id)
    assert selectors.job_list(app=other) == []


def test_list__newest_first_filters_and_keyset(app):
    jobs = [create(app, metadata={"batch": str(i % 2)}) for i in range(5)]
    listed = selectors.job_list(app=app, limit=10)
    assert [j.id for j in listed] == [j.id for j in reversed(jobs)]
    page = selectors.job_list(app=app, limit=2)
    rest = selectors.job_list(app=app, limit=10, before=(page[-1].created_at, page[-1].id))
    assert [j.id for j in page + rest] == [j.id for j in listed]
    odd = selectors.job_list(app=app, filters=selectors.JobFilters(metadata={"batch": "1"}))
    assert {j.id for j in odd} == {jobs[1].id, jobs[3].id}
    services.job_cancel(app=app, job_id=jobs[0].id)
    assert [j.id for j in selectors.job_list(app=app, filters=selectors.JobFilters(status=Status.CANCELLED))] == [
        jobs[0].id
    ]


@pytest.mark.parametrize("table", ["jobs_job", "jobs_event", "jobs_app", "jobs_token", "jobs_callback"])
def test_delete_and_truncate_raise(app, raw, table):
    job = create(app)
    # A row in every table, so each row-level DELETE trigger has a row to fire on.
    raw.execute("INSERT INTO jobs_callback (job_id, url) VALUES (%s, 'http://127.0.0.1:9/hook')", [job.id])
    for statement in (f"DELETE FROM {table}", f"TRUNCATE {table} CASCADE"):
        with pytest.raises(DatabaseError, match="never deleted"), transaction.atomic():
            raw.execute(statement)


def test_events_are_append_only(app, raw):
    job = create(app)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        raw.execute("UPDATE jobs_event SET kind = 'x' WHERE job_id = %s", [job.id])


def test_terminal_state_is_final(app, raw):
    job = create(app)
    services.job_cancel(app=app, job_id=job.id)
    with pytest.raises(DatabaseError, match="can no longer change"), transaction.atomic():
        raw.execute("UPDATE jobs_job SET status = 'queued' WHERE id = %s", [job.id])


def test_token_revoke_and_lookup(db):
    token, record = services.token_issue(app_name=f"rev-{uuid.uuid4().hex[:8]}")
    assert selectors.app_for_token(token=token) is not None
    services.token_revoke(ref=record.prefix)
    assert selectors.app_for_token(token=token) is None
    assert selectors.app_for_token_id(token_id=record.id) is None
    assert any(t.id == record.id and t.revoked_at for t in selectors.token_list())


def test_stats_for_monitor(app):
    create(app)
    stats = selectors.platform_stats(latest=5)
    assert any(row["status"] == "queued" and row["type"] == "fibonacci" for row in stats["counts"])
    assert stats["oldest_queued_seconds"] >= 0
    assert len(stats["latest"]) <= 5


@pytest.mark.django_db(transaction=True)
def test_a_write_a_read_only_server_refuses_is_unavailable_and_retires_the_connection():
    """SQLSTATE 25006 (a standby after a failover, reached without target_session_attrs):
    DatabaseUnavailable, which workers wait out (db.retrying) and the API answers 503, and
    the connection is closed once this request or retry ends, never kept for CONN_MAX_AGE."""
    from django.db import connection

    from jobs.exceptions import DatabaseUnavailable
    from tests.integration.conftest import new_app

    app, _ = new_app()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION READ ONLY")
        with pytest.raises(DatabaseUnavailable):
            services.job_create(app=app, type="fibonacci", params={"n": 1})
    assert connection.close_at is not None and connection.close_at <= time.monotonic()
    attempts = []

    def create_once_writable():
        attempts.append(1)
        with transaction.atomic():
            if len(attempts) == 1:  # the first try reaches the "standby"
                with connection.cursor() as cursor:
                    cursor.execute("SET TRANSACTION READ ONLY")
            return services.job_create(app=app, type="fibonacci", params={"n": 1})

    _, created = db.retrying(create_once_writable, what="create", limit=5)
    assert created and len(attempts) == 2


@pytest.mark.django_db(transaction=True)
def test_the_concurrent_migration_can_run_again_and_rebuilds_an_index_a_failed_build_left_invalid():
    """0020 builds the jobs table's indexes CONCURRENTLY and validates the constraints the
    migrations before it added NOT VALID: a run that failed half-way is simply run again,
    and an index a failed build left INVALID (unusable, and IF NOT EXISTS would keep it) is
    dropped and built anew."""
    import importlib

    import psycopg2
    from django.db import connection

    statements = importlib.import_module("jobs.migrations.0020_indexes_and_checks").STATEMENTS
    settings_dict = connection.settings_dict
    raw = psycopg2.connect(
        dbname=settings_dict["NAME"],
        host=settings_dict["HOST"] or None,
        port=settings_dict["PORT"] or None,
        user=settings_dict["USER"] or None,
    )
    raw.autocommit = True
    try:
        with raw.cursor() as cursor:
            cursor.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'jobs_job_batch'::regclass")
            for statement in (*statements, *statements):  # each its own operation, twice
                cursor.execute(statement)
            cursor.execute(
                "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "WHERE c.relname IN ('jobs_job_batch', 'jobs_job_schedule_fire') ORDER BY 1"
            )
            assert cursor.fetchall() == [("jobs_job_batch", True), ("jobs_job_schedule_fire", True)]
            cursor.execute(
                "SELECT count(*) FROM pg_constraint WHERE conrelid::regclass::text LIKE 'jobs_%' AND NOT convalidated"
            )
            assert cursor.fetchone() == (0,)
    finally:
        raw.close()


def test_token_revoke_refuses_a_prefix_two_tokens_share(db):
    """Revoking by prefix must not pick one of several tokens at random."""
    _, record = services.token_issue(app_name=f"rev-{uuid.uuid4().hex[:8]}")
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO jobs_token (app_id, token_hash, prefix)"
            " SELECT app_id, %s, prefix FROM jobs_token WHERE id = %s",
            [uuid.uuid4().hex, record.id],
        )
    with pytest.raises(InvalidInput) as ambiguous:
        services.token_revoke(ref=record.prefix)
    assert "matches 2 tokens" in ambiguous.value.errors["token"][0]
    assert not any(t.revoked_at for t in selectors.token_list() if t.prefix == record.prefix)


@pytest.mark.parametrize("result", [float("nan"), float("inf"), {"x": [1, float("-inf")]}])
def test_succeed_refuses_a_result_json_cannot_hold_and_writes_nothing(app, result):
    """PostgreSQL's jsonb refuses NaN and infinities: caught before the write, as a
    ValueError the worker turns into an InvalidResult failure."""
    job = services.job_claim(job_id=create(app).id, worker="w")
    with pytest.raises(ValueError):
        services.job_succeed(job=job, result=result)
    assert selectors.job_get(app=app, job_id=job.id).status is Status.RUNNING


def test_a_negative_running_cap_is_refused_naming_the_field(app):
    with pytest.raises(InvalidInput) as refused:
        services.app_set_max_running(app_name=app.name, max_running=-1)
    assert list(refused.value.errors) == ["max_running"]
