"""migrate_rows against real parts in one process: a real PostgreSQL source (tables in a
database of their own beside the test database, read through the type's own read-only
connection as a role that may only read them), a real local HTTP
receiver, and the real worker (execute_job), the API and the commands."""

from __future__ import annotations

import json
import threading
import time
import uuid

import psycopg2
import pytest
import requests
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from jobs import selectors, services
from jobs.domain import Status
from jobs.jobtypes import migrate_rows as mr
from jobs.management.commands.demo_receiver import Receiver
from jobs.runtime.worker import execute_job
from tests.callback_receiver import Receiver as ScriptedReceiver
from tests.integration.conftest import new_app

pytestmark = pytest.mark.django_db(transaction=True)

ROWS = 2_000


@pytest.fixture
def source(settings, source_database):
    """Tables committed in a source database of their own (never the platform's: the type
    refuses that), read by its own read-only connection as a role that may only SELECT them:
    ``t`` (bigint key, 2,000 rows, every kind of value), ``odd`` (names needing quotes),
    ``loose`` (a key that is not unique), ``words`` (a text key)."""
    suffix = uuid.uuid4().hex[:8]
    names = {"t": f"mr_{suffix}", "odd": f"Odd Table {suffix}", "loose": f"mr_loose_{suffix}", "words": f"w_{suffix}"}
    admin = source_database.admin()
    with admin.cursor() as cur:
        cur.execute(
            f"""CREATE TABLE {names["t"]} (id bigint PRIMARY KEY, email text NOT NULL, region text NOT NULL,
                    balance numeric(10, 2), seen timestamptz, ref uuid, tags jsonb, n integer);
                INSERT INTO {names["t"]} SELECT i, 'User.' || i || '@Example.COM', (ARRAY['eu', 'us'])[i % 2 + 1],
                    i / 100.0, timestamptz '2020-01-01 00:00+00' + i * interval '1 hour',
                    md5(i::text)::uuid, jsonb_build_object('i', i), CASE WHEN i % 7 = 0 THEN NULL ELSE i END
                FROM generate_series(1, {ROWS}) AS i;
                CREATE TABLE "{names["odd"]}" ("Mixed Key" integer PRIMARY KEY, "Some Column" text);
                INSERT INTO "{names["odd"]}" SELECT i, 'v' || i FROM generate_series(1, 30) AS i;
                CREATE TABLE {names["loose"]} (id integer NOT NULL, v text);
                CREATE TABLE {names["words"]} (word text PRIMARY KEY, v integer);
                INSERT INTO {names["words"]} SELECT 'w' || lpad(i::text, 4, '0'), i FROM generate_series(1, 45) AS i"""
        )
    source_database.grant_select(*(f'"{name}"' for name in names.values()))
    settings.JOBS_SOURCES = {"legacy": source_database.reader_url}
    settings.JOBS_SOURCE_APPS = {"legacy": ("*",)}
    settings.JOBS_MIGRATION_TARGET_HOSTS = ["127.0.0.1"]
    settings.JOBS = {**settings.JOBS, "MIGRATION_TARGET_BACKOFF": 0.05, "MIGRATION_TARGET_RETRIES": 2}
    yield names
    with admin.cursor() as cur:
        for name in names.values():
            cur.execute(f'DROP TABLE IF EXISTS "{name}"')
    admin.close()


def migrate(app, target_url: str, **params):
    body = {"source": "legacy", "key": "id", "mapping": {"id": "id", "email": "email"}, "target_url": target_url}
    return services.job_create(app=app, type="migrate_rows", params=body | params)[0]


def job_of(app, job):
    return selectors.job_get(app=app, job_id=job.id)


def log_of(app, job) -> list:
    return selectors.job_log_page(app=app, job_id=job.id, after=0, limit=10_000).lines


def make_due(job_id) -> None:
    with connection.cursor() as cur:
        cur.execute("UPDATE jobs_job SET run_at = now() - interval '1 second' WHERE id = %s", [job_id])


def test_a_table_is_copied_row_by_row_into_the_new_shape(source):
    app, _ = new_app()
    with Receiver() as receiver:
        mapping = {"id": "id", "email": "email", "balance": "balance", "seen": "seen", "ref": "ref", "tags": "tags"}
        mapping |= {"n": "n", "n_text": "n"}
        job = migrate(
            app,
            f"{receiver.url}/import",
            table=source["t"],
            mapping=mapping,
            transforms={"email": "lower", "n_text": "text"},
            batch_size=300,
        )
        assert execute_job(str(job.id)) == "succeeded"
    done = job_of(app, job)
    assert done.result == {
        "rows": ROWS,
        "batches": 7,
        "last_key": ROWS,
        "resumed_after": None,
        "rows_this_attempt": ROWS,
        "keyset": f"legacy:public.{source['t']}(id)",
    }
    assert sorted(receiver.rows) == list(range(1, ROWS + 1)) and receiver.duplicates == 0
    assert receiver.rows[7] == {
        "id": 7,
        "email": "user.7@example.com",
        "balance": "0.07",
        "seen": "2020-01-01T07:00:00+00:00",
        "ref": str(uuid.UUID("8f14e45fceea167a5a36dedd4bea2543")),
        "tags": {"i": 7},
        "n": None,
        "n_text": None,
    }
    assert receiver.rows[8]["n"] == 8 and receiver.rows[8]["n_text"] == "8"
    assert [(b["first"], b["last"], b["rows"]) for b in receiver.batches][-2:] == [(1501, 1800, 300), (1801, 2000, 200)]
    assert done.checkpoint == {"last_key": ROWS, "rows_done": ROWS, "batches_done": 7, "keyset": done.result["keyset"]}
    lines = log_of(app, job)
    assert [line.message for line in lines][:2] == [
        f"starting: {ROWS} rows of legacy:public.{source['t']}(id) to 127.0.0.1",
        "batch 1 sent",
    ]
    assert lines[-1].message == f"finished: {ROWS} rows in 7 batches"
    assert (
        lines[3].fields["first_key"] == 601 and lines[3].fields["last_key"] == 900 and lines[3].fields["status"] == 200
    )


def test_where_equals_filters_with_a_parameter_and_a_value_read_as_the_columns_type(source):
    app, _ = new_app()
    with Receiver() as receiver:
        job = migrate(app, receiver.url, table=source["t"], where_equals={"region": "eu", "n": "40"})
        assert execute_job(str(job.id)) == "succeeded"
    assert list(receiver.rows) == [40]
    # A value that cannot be the column's type fails the job at once, saying so.
    bad = migrate(app, receiver.url, table=source["t"], where_equals={"n": "forty"})
    assert execute_job(str(bad.id)) == "failed"
    error = job_of(app, bad).error
    assert error["type"] == "PermanentError" and error["message"].startswith("where_equals does not fit its columns:")
    assert "forty" in error["message"] and job_of(app, bad).attempts == 1


def test_names_are_quoted_identifiers_and_text_keys_page_in_their_own_order(source):
    app, _ = new_app()
    with Receiver(key_field="k") as receiver:
        odd = migrate(
            app, receiver.url, table=source["odd"], key="Mixed Key", mapping={"k": "Mixed Key", "v": "Some Column"}
        )
        assert execute_job(str(odd.id)) == "succeeded"
    assert receiver.rows[30] == {"k": 30, "v": "v30"} and len(receiver.rows) == 30
    with Receiver(key_field="word") as receiver:
        words = migrate(app, receiver.url, table=source["words"], key="word", mapping={"word": "word"}, batch_size=10)
        assert execute_job(str(words.id)) == "succeeded"
    assert list(receiver.rows) == [f"w{i:04d}" for i in range(1, 46)]
    assert job_of(app, words).checkpoint["last_key"] == "w0045"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"table": "missing_table"}, "table public.missing_table does not exist on source 'legacy'"),
        ({"table": "x; DROP TABLE jobs_job"}, "table public.x; DROP TABLE jobs_job does not exist on source"),
        ({"schema": "elsewhere"}, "does not exist on source 'legacy' (or its user may not read it)"),
        ({"mapping": {"a": "emial", "b": "nope"}}, "has no column emial, nope; its columns: id, email, region"),
        ({"key": "seen", "mapping": {"a": "id"}}, "key column seen is timestamp with time zone; a key must be one of"),
        ({"key": "region", "mapping": {"a": "id"}}, "key column region must be NOT NULL with a unique index"),
        ({"mapping": {"b": "balance"}, "transforms": {"b": "lower"}}, "transform 'lower' of b needs a text column"),
        ({"where_equals": {"colour": "red"}}, "has no column colour"),
    ],
)
def test_a_table_or_column_that_does_not_fit_fails_the_job_at_once(source, params, message):
    app, _ = new_app()
    params = {"table": source["t"], **params}
    job = migrate(app, "http://127.0.0.1:9/never", **params)
    assert execute_job(str(job.id)) == "failed"
    failed = job_of(app, job)
    assert failed.attempts == 1 and failed.error["type"] == "PermanentError"
    assert message in failed.error["message"], failed.error
    with connection.cursor() as cur:
        cur.execute("SELECT to_regclass('jobs_job') IS NOT NULL")
        assert cur.fetchone()[0]


def test_a_key_that_is_not_unique_is_refused(source):
    app, _ = new_app()
    job = migrate(app, "http://127.0.0.1:9/never", table=source["loose"], mapping={"v": "v"})
    assert execute_job(str(job.id)) == "failed"
    assert "key column id must be NOT NULL with a unique index on it alone" in job_of(app, job).error["message"]


def test_the_source_connection_is_read_only_and_bounded(source, settings, source_database):
    settings.JOBS = {**settings.JOBS, "MIGRATION_STATEMENT_TIMEOUT": 1.5}
    params = {"source": "legacy", "table": source["t"], "key": "id", "mapping": {"e": "email"}}
    plan = mr.Plan.from_params(params | {"target_url": "http://127.0.0.1/", "batch_size": 5})
    reader = mr.Source(plan, dsn=source_database.reader_url, job_id="test")
    try:
        with reader.connection.cursor() as cur:
            cur.execute("SHOW statement_timeout")
            assert cur.fetchone()[0] == "1500ms"
            cur.execute("SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()")
            assert cur.fetchone()[0] == "jobplatform migrate_rows test"
            with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):
                cur.execute(f"DELETE FROM {source['t']}")
        reader.connection.rollback()
        with reader.connection.cursor() as cur, pytest.raises(psycopg2.errors.QueryCanceled):
            cur.execute("SELECT pg_sleep(3)")
        reader.connection.rollback()
        assert reader.page(after=1995) and [r["id"] for r in reader.page(after=1995)] == [1996, 1997, 1998, 1999, 2000]
        assert reader.remaining(after=1990) == (10, True)
        # Each page ends its transaction: nothing is held between batches.
        assert reader.connection.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE
    finally:
        reader.close()
    admin = source_database.admin()
    with admin.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {source['t']}")
        assert cur.fetchone()[0] == ROWS
    admin.close()


def test_a_target_down_for_a_while_is_retried_within_the_attempt(source):
    app, _ = new_app()
    with Receiver(outage_after=600, outage_seconds=0.1) as receiver:
        job = migrate(app, receiver.url, table=source["t"], batch_size=300)
        assert execute_job(str(job.id)) == "succeeded"
    assert job_of(app, job).attempts == 1 and len(receiver.rows) == ROWS and receiver.duplicates == 0
    warnings = [line for line in log_of(app, job) if line.level == "warning"]
    assert warnings and warnings[0].message == "batch 3: HTTP 503; retry 1 of 2 in 0.05 s"
    assert warnings[0].fields["status"] == 503 and warnings[0].fields["retry"] == 1


def test_the_next_attempt_resumes_after_the_last_acknowledged_batch_with_the_same_keys(source):
    app, _ = new_app()
    with Receiver(outage_after=900, outage_seconds=3600) as receiver:
        job = migrate(app, receiver.url, table=source["t"], batch_size=300)
        assert execute_job(str(job.id)) == "retrying"
        between = job_of(app, job)
        assert between.status is Status.SCHEDULED and between.checkpoint["last_key"] == 900
        assert between.error["type"] == "TargetUnavailable"
        assert between.error["message"].endswith(
            "after 3 tries (HTTP 503); a next attempt, if any is left, continues after key 900; once none is, "
            'POST /jobs/{id}/rerun with {"resume": true} does'
        )
        refused = [b for b in receiver.batches if b["status"] == 503]
        assert len(refused) == 3 and {b["first"] for b in refused} == {901}

        receiver.fail_for(0)
        make_due(job.id)
        assert execute_job(str(job.id)) == "succeeded"
    done = job_of(app, job)
    assert done.attempts == 2 and done.result["resumed_after"] == 900 and done.result["rows_this_attempt"] == 1100
    assert sorted(receiver.rows) == list(range(1, ROWS + 1)) and receiver.duplicates == 0
    sent = [b for b in receiver.batches if b["status"] == 200]
    assert sum(b["rows"] for b in sent) == ROWS  # nothing before the checkpoint was sent again
    # The refused batch went again with the same Idempotency-Key.
    assert {b["key"] for b in refused} == {sent[3]["key"]} and sent[3]["first"] == 901
    second = [line for line in log_of(app, job) if line.attempt == 2]
    assert second[0].message == "resuming after key 900 (900 rows in 3 batches already sent)"
    assert second[0].fields == {"last_key": 900, "rows_done": 900, "batches_done": 3, "rows_left": 1100}
    assert second[1].message == "batch 4 sent" and second[1].fields["first_key"] == 901


def test_a_batch_acknowledged_but_not_checkpointed_is_sent_again_with_its_key_and_stored_once(source):
    """A crash between the target's 2xx and the checkpoint: the next attempt repeats that
    one batch, with the same Idempotency-Key, and a receiver that honours it stores it once."""
    app, _ = new_app()
    with Receiver() as receiver:
        job = migrate(app, receiver.url, table=source["t"], batch_size=500)
        real_checkpoint = mr.JobContext.checkpoint
        calls = []

        def crash_on_second(ctx, state):
            calls.append(state)
            if len(calls) == 2:
                raise ConnectionResetError("the worker died here")
            real_checkpoint(ctx, state)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(mr.JobContext, "checkpoint", crash_on_second)
            assert execute_job(str(job.id)) == "retrying"
        make_due(job.id)
        assert execute_job(str(job.id)) == "succeeded"
    assert sorted(receiver.rows) == list(range(1, ROWS + 1)) and receiver.duplicates == 0
    replayed = [b for b in receiver.batches if b["replayed"]]
    assert [(b["first"], b["last"]) for b in replayed] == [(501, 1000)]
    assert replayed[0]["key"] == receiver.batches[1]["key"]


@pytest.mark.parametrize(("status", "location"), [(422, None), (404, None), (302, "http://127.0.0.1:9/elsewhere")])
def test_a_refusal_fails_the_job_at_once_with_the_receivers_status(source, status, location):
    app, _ = new_app()
    with ScriptedReceiver(status=status, location=location) as receiver:
        job = migrate(app, receiver.url, table=source["t"])
        assert execute_job(str(job.id)) == "failed"
    failed = job_of(app, job)
    assert failed.attempts == 1 and failed.error["type"] == "PermanentError"
    assert failed.error["message"].startswith(f"the target refused batch 1 with HTTP {status}")
    assert len(receiver.received) == 1  # not retried, and a redirect not followed
    sent = receiver.received[0]
    assert sent["headers"]["Idempotency-Key"].startswith("migrate-")
    assert sent["headers"]["Jobplatform-Job"] == str(job.id)
    assert json.loads(sent["body"])["batch"]["first_key"] == 1


def test_a_target_that_does_not_answer_in_time_is_a_retryable_failure(source, settings):
    settings.JOBS = {**settings.JOBS, "MIGRATION_TARGET_TIMEOUT": 0.2, "MIGRATION_TARGET_RETRIES": 1}
    app, _ = new_app()
    with ScriptedReceiver(delay=5) as receiver:
        job = migrate(app, receiver.url, table=source["t"])
        started = time.monotonic()
        assert execute_job(str(job.id)) == "retrying"
        assert time.monotonic() - started < 3
    error = job_of(app, job).error
    assert error["type"] == "TargetUnavailable" and "TimeoutError" in error["message"]
    # Nothing listens: refused connections are retried the same way.
    closed = migrate(app, "http://127.0.0.1:9/", table=source["t"])
    assert execute_job(str(closed.id)) == "retrying"
    assert "ConnectionRefusedError" in job_of(app, closed).error["message"]


def test_a_cancel_wakes_the_wait_between_sends(source, settings):
    settings.JOBS = {**settings.JOBS, "MIGRATION_TARGET_BACKOFF": 30.0, "HEARTBEAT_INTERVAL": 0.1}
    app, _ = new_app()
    with ScriptedReceiver(status=503) as receiver:
        job = migrate(app, receiver.url, table=source["t"])
        outcome = []
        worker = threading.Thread(target=lambda: outcome.append(execute_job(str(job.id))))
        worker.start()
        deadline = time.monotonic() + 10
        while receiver.arrived == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # now in its 30 s wait
        started = time.monotonic()
        services.job_cancel(app=app, job_id=job.id)
        worker.join(timeout=10)
    assert outcome == ["cancelled"] and time.monotonic() - started < 5
    assert receiver.arrived == 1 and job_of(app, job).status is Status.CANCELLED


def test_the_api_names_what_is_wrong_with_a_migration_at_create(source, api):
    body = {
        "type": "migrate_rows",
        "params": {
            "source": "crm",
            "table": "t",
            "key": "id",
            "mapping": {"id": 5},
            "target_url": "http://10.1.2.3/import",
            "transforms": {"id": "lower", "x": "upper"},
        },
    }
    response = api.post("/jobs", data=json.dumps(body), content_type="application/json")
    assert response.status_code == 400 and response["Content-Type"] == "application/problem+json"
    errors = {e["field"]: e["detail"] for e in response.json()["errors"]}
    wrong_host = "Migration targets may only go to the hosts JOBS_MIGRATION_TARGET_HOSTS lists (127.0.0.1)."
    assert errors == {  # every fault at once: the JSON type as the schema says, beside the others
        "params.mapping.id": "Must be a string.",
        "params.source": "Unknown source; the sources this application may use are: legacy (JOBS_SOURCES).",
        "params.target_url": wrong_host,
    }
    body["params"]["mapping"] = {"id": "id"}
    response = api.post("/jobs", data=json.dumps(body), content_type="application/json")
    errors = {e["field"]: e["detail"] for e in response.json()["errors"]}
    assert errors == {
        "params.source": "Unknown source; the sources this application may use are: legacy (JOBS_SOURCES).",
        "params.target_url": "Migration targets may only go to the hosts JOBS_MIGRATION_TARGET_HOSTS lists "
        "(127.0.0.1).",
    }
    assert response.json()["errors"][0]["pointer"] == "#/params/source"
    types = {t["name"]: t for t in api.get("/job-types").json()["results"]}
    assert types["migrate_rows"]["params_schema"]["properties"]["mapping"]["additionalProperties"]["type"] == "string"


# -- the demo commands ---------------------------------------------------------------------------
def test_create_demo_source_makes_its_table_in_a_database_of_its_own_that_only_its_role_reads(
    settings, tmp_path, monkeypatch
):
    """The walkthrough's source: a database beside the platform's, a role that may read its
    demo tables and nothing else (not the platform's tables, not a write), which
    migrate_rows reads as the source ``demo`` (scripts/start's)."""
    from io import StringIO

    from jobs.services import demo_source

    monkeypatch.setattr(demo_source, "PASSWORD_FILE", tmp_path / "demo-source-password")
    source = demo_source.demo_source()
    assert source.database == f"{connection.settings_dict['NAME']}_demo" and source.role.endswith("_demo_reader")
    try:
        out = StringIO()
        call_command("create_demo_source", "--rows", "1000", "--table", "demo_it", stdout=out)
        assert out.getvalue().startswith(
            f"table demo_it: 1000 rows (key: id, 1 to 1000) in the database {source.database}"
        )
        admin = psycopg2.connect(**{**connection.get_connection_params(), "dbname": source.database})
        with admin.cursor() as cur:
            cur.execute("SELECT count(*), min(id), max(id), count(DISTINCT region) FROM demo_it")
            assert cur.fetchone() == (1000, 1, 1000, 4)
            cur.execute("SELECT email, full_name, region, balance::text, active FROM demo_it WHERE id = 10")
            assert cur.fetchone() == ("Customer.10@Example.COM", "Customer 10", "apac", "791.90", False)
        admin.close()
        with connection.cursor() as cur:  # nothing in the platform's database
            cur.execute("SELECT to_regclass('demo_it') IS NULL")
            assert cur.fetchone() == (True,)
        with pytest.raises(CommandError, match=r"exists in .*_demo; --replace drops it first"):
            call_command("create_demo_source", "--rows", "5", "--table", "demo_it")
        call_command("create_demo_source", "--rows", "5", "--table", "demo_it", "--replace", stdout=StringIO())

        out = StringIO()
        call_command("create_demo_source", "--print-source-url", stdout=out)
        url = out.getvalue().strip()
        password = (tmp_path / "demo-source-password").read_text().strip()
        assert url.startswith(f"postgres://{source.role}:{password}@") and url.endswith(f"/{source.database}")
        reader = psycopg2.connect(url)
        reader.autocommit = True
        with reader.cursor() as cur:
            cur.execute("SELECT count(*) FROM demo_it")
            assert cur.fetchone() == (5,)
            cur.execute("SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user")
            assert cur.fetchone() == (False, False, False)
            with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):
                cur.execute("DELETE FROM demo_it")
        reader.close()
        # The same role on the platform's database: it reads none of the platform's tables.
        platform = psycopg2.connect(url.rsplit("/", 1)[0] + "/" + connection.settings_dict["NAME"])
        with platform.cursor() as cur, pytest.raises(psycopg2.errors.InsufficientPrivilege):
            cur.execute("SELECT callback_secret FROM jobs_app")
        platform.close()

        # migrate_rows reads it as scripts/start configures it.
        settings.JOBS_SOURCES = {"demo": url}
        settings.JOBS_SOURCE_APPS = {"demo": ("*",)}
        settings.JOBS_MIGRATION_TARGET_HOSTS = ["127.0.0.1"]
        app, _ = new_app()
        with Receiver() as receiver:
            job, _ = services.job_create(
                app=app,
                type="migrate_rows",
                params={
                    "source": "demo",
                    "table": "demo_it",
                    "key": "id",
                    "mapping": {"id": "id", "email": "email"},
                    "target_url": receiver.url,
                },
            )
            assert execute_job(str(job.id)) == "succeeded"
        assert sorted(receiver.rows) == [1, 2, 3, 4, 5]
    finally:
        with connection.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{source.database}" WITH (FORCE)')
            cur.execute(f'DROP ROLE IF EXISTS "{source.role}"')


def test_the_demo_receiver_stores_rows_by_key_and_honours_idempotency_keys():
    with Receiver() as receiver:
        batch = {"rows": [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}], "batch": {"number": 1}}
        first = requests.post(receiver.url, json=batch, headers={"Idempotency-Key": "k1"}, timeout=5)
        again = requests.post(receiver.url, json=batch, headers={"Idempotency-Key": "k1"}, timeout=5)
        other = requests.post(receiver.url, json=batch, headers={"Idempotency-Key": "k2"}, timeout=5)
        assert (first.status_code, first.json()) == (200, {"replayed": False, "stored": 2})
        assert (again.status_code, again.json()) == (200, {"replayed": True, "stored": 0})
        assert other.json() == {"replayed": False, "stored": 2}  # another key: stored again, counted
        assert requests.post(receiver.url, json=batch, timeout=5).status_code == 400
        assert requests.post(receiver.url, data=b"{", headers={"Idempotency-Key": "k3"}, timeout=5).status_code == 400
        receiver.fail_for(5)
        assert requests.post(receiver.url, json=batch, headers={"Idempotency-Key": "k4"}, timeout=5).status_code == 503
        summary = requests.get(receiver.url, timeout=5).json()
    assert summary == {
        "rows": 2,
        "min_key": 1,
        "max_key": 2,
        "batches": 4,
        "stored": 2,
        "replayed": 1,
        "refused": 1,
        "duplicates": 2,
    }
