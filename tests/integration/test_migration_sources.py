"""Who may read a migrate_rows source, and what a source may never be: each source serves
only the applications JOBS_SOURCE_APPS names (checked at create and when the job runs),
the platform's own database is never read, and a target's answer is never echoed into the
job. Real PostgreSQL databases, real receivers, the real worker and the API."""

from __future__ import annotations

import json

import pytest
from django.db import connection

from jobs import selectors, services
from jobs.management.commands.demo_receiver import Receiver
from jobs.runtime.worker import execute_job
from tests.callback_receiver import Receiver as ScriptedReceiver
from tests.conftest import database_url
from tests.integration.conftest import new_app

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def customers(settings, source_database):
    """A table ``customers`` (ids 1 to 20) in the source database, readable by its reader role;
    the source ``legacy`` is open to the application ``etl`` only."""
    admin = source_database.admin()
    with admin.cursor() as cur:
        cur.execute(
            "CREATE TABLE customers (id integer PRIMARY KEY, email text NOT NULL);"
            "INSERT INTO customers SELECT i, 'c' || i || '@example.com' FROM generate_series(1, 20) AS i"
        )
    source_database.grant_select("customers")
    settings.JOBS_SOURCES = {"legacy": source_database.reader_url}
    settings.JOBS_SOURCE_APPS = {"legacy": ("etl",)}
    settings.JOBS_MIGRATION_TARGET_HOSTS = ["127.0.0.1"]
    settings.JOBS = {**settings.JOBS, "MIGRATION_TARGET_RETRIES": 0}
    yield
    with admin.cursor() as cur:
        cur.execute("DROP TABLE customers")
    admin.close()


def params(target_url: str, **overrides):
    body = {"source": "legacy", "table": "customers", "key": "id", "mapping": {"id": "id", "email": "email"}}
    return body | {"target_url": target_url} | overrides


def post_job(client, body):
    return client.post("/jobs", data=json.dumps(body), content_type="application/json")


def api_for(name: str):
    from rest_framework.test import APIClient

    app, token = new_app(name)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return app, client


def test_a_source_serves_only_the_applications_it_names_at_create(customers, settings):
    _, etl = api_for("etl")
    _, other = api_for(f"other-{id(settings)}")
    body = {"type": "migrate_rows", "params": params("http://127.0.0.1:9/import")}
    assert post_job(etl, body).status_code == 201
    refused = post_job(other, body)
    assert refused.status_code == 400 and refused["Content-Type"] == "application/problem+json"
    errors = {e["field"]: e["detail"] for e in refused.json()["errors"]}
    # Told nothing about the sources of other applications: not even that "legacy" exists.
    assert errors == {
        "params.source": "No source is open to this application: the operator names sources in JOBS_SOURCES "
        "and the applications that may use each in JOBS_SOURCE_APPS."
    }
    # With a source of its own, another application is told only its own.
    settings.JOBS_SOURCES = {**settings.JOBS_SOURCES, "mine": settings.JOBS_SOURCES["legacy"]}
    settings.JOBS_SOURCE_APPS = {**settings.JOBS_SOURCE_APPS, "mine": (f"other-{id(settings)}",)}
    errors = {e["field"]: e["detail"] for e in post_job(other, body).json()["errors"]}
    assert errors == {"params.source": "Unknown source; the sources this application may use are: mine (JOBS_SOURCES)."}
    # Re-runs, batches and schedules create jobs through the same check.
    batch = post_job_to(other, "/batches", {"jobs": [body]})
    assert batch.status_code == 400 and [e["field"] for e in batch.json()["errors"]] == ["jobs[0].params.source"]
    schedule = post_job_to(other, "/schedules", {"job": body, "every": 3600, "catch_up": "skip"})
    assert schedule.status_code == 400 and [e["field"] for e in schedule.json()["errors"]] == ["job.params.source"]


def post_job_to(client, path, body):
    return client.post(path, data=json.dumps(body), content_type="application/json")


def test_a_source_closed_to_the_jobs_application_since_the_create_fails_the_job_when_it_runs(customers, settings):
    etl, _ = api_for("etl")
    with Receiver() as receiver:
        job, _ = services.job_create(app=etl, type="migrate_rows", params=params(receiver.url))
        settings.JOBS_SOURCE_APPS = {"legacy": ("someone-else",)}
        assert execute_job(str(job.id)) == "failed"
        assert receiver.rows == {}  # not one row left the source
    failed = selectors.job_get(app=etl, job_id=job.id)
    assert failed.attempts == 1 and failed.error["type"] == "PermanentError"
    assert failed.error["message"] == (
        "source 'legacy': No source is open to this application: the operator names sources in "
        "JOBS_SOURCES and the applications that may use each in JOBS_SOURCE_APPS."
    )
    # Open to every application again ("*"): the same job's re-run copies the table.
    settings.JOBS_SOURCE_APPS = {"legacy": ("*",)}
    with Receiver() as receiver:
        again, _ = services.job_rerun(app=etl, job_id=job.id, overrides={"params": params(receiver.url)})
        assert execute_job(str(again.id)) == "succeeded"
        assert sorted(receiver.rows) == list(range(1, 21))


def test_the_platforms_own_database_is_never_a_source(settings):
    """The review's attack: the platform's own database configured as a source open to every
    application (what scripts/start did), and an application with jobs:write asking for the
    table of applications and its callback secrets. The job fails before reading a row."""
    victim, _ = new_app()
    secret = services.app_rotate_callback_secret(app_name=victim.name)
    attacker, _ = new_app()
    settings.JOBS_SOURCES = {"demo": database_url(connection.settings_dict)}
    settings.JOBS_SOURCE_APPS = {"demo": ("*",)}
    settings.JOBS_MIGRATION_TARGET_HOSTS = ["127.0.0.1"]
    with Receiver(key_field="name") as receiver:
        body = {
            "source": "demo",
            "table": "jobs_app",
            "key": "name",
            "mapping": {"name": "name", "secret": "callback_secret"},
            "target_url": receiver.url,
        }
        job, _ = services.job_create(app=attacker, type="migrate_rows", params=body)
        assert execute_job(str(job.id)) == "failed"
        assert receiver.rows == {} and receiver.batches == []
    failed = selectors.job_get(app=attacker, job_id=job.id)
    assert failed.attempts == 1 and failed.error["type"] == "PermanentError"
    assert failed.error["message"].startswith(
        "source 'demo' is the platform's own database (it holds the tables jobs_app, jobs_event, jobs_job, "
        "jobs_token): a source must never be"
    )
    assert secret not in json.dumps(failed.error)


def test_a_refusing_targets_answer_is_not_echoed_into_the_job(customers):
    """An allowed host may be an internal service: what it answers (an error page, a stack
    trace) must not reach the client through the job's error or its log."""
    etl, _ = api_for("etl")
    page = "<html>internal admin page: db password hunter2</html>"
    with ScriptedReceiver(status=422, body=page.encode()) as receiver:
        job, _ = services.job_create(app=etl, type="migrate_rows", params=params(receiver.url))
        assert execute_job(str(job.id)) == "failed"
    failed = selectors.job_get(app=etl, job_id=job.id)
    assert failed.error["message"] == "the target refused batch 1 with HTTP 422 (Unprocessable Entity)"
    lines = selectors.job_log_page(app=etl, job_id=job.id, after=0, limit=100).lines
    text = json.dumps([[line.message, line.fields] for line in lines]) + json.dumps(failed.error)
    assert "hunter2" not in text and "internal admin page" not in text
    assert any("HTTP 422 (Unprocessable Entity)" in line.message for line in lines)
    # A 5xx answer's body is not kept either (it is retried, then the attempt fails).
    with ScriptedReceiver(status=503, body=page.encode()) as receiver:
        retried, _ = services.job_create(app=etl, type="migrate_rows", params=params(receiver.url))
        assert execute_job(str(retried.id)) == "retrying"
    error = selectors.job_get(app=etl, job_id=retried.id).error
    lines = selectors.job_log_page(app=etl, job_id=retried.id, after=0, limit=100).lines
    text = json.dumps([[line.message, line.fields] for line in lines]) + json.dumps(error)
    assert "hunter2" not in text and "(HTTP 503)" in error["message"]


def test_a_target_allowed_by_host_and_port_is_reachable_on_that_port_only(customers, settings):
    _, client = api_for("etl")
    with Receiver() as receiver:
        port = int(receiver.url.rsplit(":", 1)[1])
        settings.JOBS_MIGRATION_TARGET_HOSTS = [f"127.0.0.1:{port}"]
        body = {"type": "migrate_rows", "params": params(f"http://127.0.0.1:{port}/import")}
        created = post_job(client, body)
        assert created.status_code == 201, created.content
        other = post_job(client, {"type": "migrate_rows", "params": params(f"http://127.0.0.1:{port + 1}/import")})
        assert other.status_code == 400
        assert {e["field"]: e["detail"] for e in other.json()["errors"]} == {
            "params.target_url": f"Migration targets may only go to the hosts JOBS_MIGRATION_TARGET_HOSTS lists "
            f"(127.0.0.1:{port})."
        }
        assert execute_job(created.json()["id"]) == "succeeded"
        assert sorted(receiver.rows) == list(range(1, 21))
        # Checked again when the job runs: the port closed since the create fails the job.
        again = post_job(client, body).json()
        settings.JOBS_MIGRATION_TARGET_HOSTS = [f"127.0.0.1:{port + 1}"]
        assert execute_job(again["id"]) == "failed"
        assert len(receiver.batches) == 1
