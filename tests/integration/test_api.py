"""The API through DRF's test client on the real database."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from django.test import Client
from rest_framework.test import APIClient

from jobs import services
from tests.integration.conftest import new_app

PROBLEM = "application/problem+json"


def post_job(api, body, path="/jobs"):
    return api.post(path, data=json.dumps(body), content_type="application/json")


@pytest.mark.parametrize("path", ["/jobs", "/job"])
def test_create_and_read_back(api, raw, path):
    body = {"type": "fibonacci", "params": {"n": 100000}, "metadata": {"migration": "customers"}}
    created = post_job(api, body, path)
    assert created.status_code == 201
    job = created.json()
    assert created["Location"] == job["url"]
    raw.execute("SELECT status FROM jobs_job WHERE id = %s", [job["id"]])
    assert raw.fetchone()[0] == "queued"  # the row is there when 201 is answered
    for read_path in (f"/jobs/{job['id']}", f"/job/{job['id']}"):
        fetched = api.get(read_path).json()
        assert fetched["params"] == body["params"] and fetched["metadata"] == body["metadata"]
        assert fetched["status"] == "queued" and fetched["attempts"] == 0
        for stamp in ("created_at", "updated_at"):
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", fetched[stamp])
        assert fetched["started_at"] is None and fetched["finished_at"] is None


def test_every_type_through_the_same_endpoint(api):
    for body in (
        {"type": "fibonacci", "params": {"n": 10}},
        {"type": "pi", "params": {"digits": 10}},
        {"type": "countdown", "params": {"seconds": 1}},
    ):
        response = post_job(api, body)
        assert response.status_code == 201, response.content
        assert api.get(response["Location"]).json()["type"] == body["type"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "fibonacci", "params": {"n": 1_000_001}}, "params.n"),
        ({"type": "fibonacci", "params": {}}, "params.n"),
        ({"type": "pi", "params": {"digits": 0}}, "params.digits"),
        ({"type": "countdown", "params": {"seconds": 3601}}, "params.seconds"),
        ({"type": "nope", "params": {}}, "type"),
        ({"type": "fibonacci", "params": {"n": 1}, "metadata": ["x"]}, "metadata"),
        ({"type": "fibonacci", "params": {"n": 1}, "metadata": {"b": "x" * 70000}}, "metadata"),
        ({"type": "fibonacci", "params": {"n": 1}, "metadata": {"a": "\u0000"}}, "metadata.a"),
    ],
)
def test_invalid_create_is_400_naming_the_field_and_stores_nothing(api, raw, body, field):
    raw.execute("SELECT count(*) FROM jobs_job")
    before = raw.fetchone()[0]
    response = post_job(api, body)
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    assert field in [e["field"] for e in response.json()["errors"]]
    raw.execute("SELECT count(*) FROM jobs_job")
    assert raw.fetchone()[0] == before


@pytest.mark.parametrize(
    "raw_body",
    ['{"type": "fibonacci", "params": {"n": 1}, "metadata": {"x": NaN}}', '{"a": 1e999}', "[" * 100000 + "]" * 100000],
)
def test_hostile_json_is_400_never_500(api, raw_body):
    response = api.post("/jobs", data=raw_body, content_type="application/json")
    assert response.status_code == 400, response.content


def test_another_apps_job_is_404_same_body_as_unknown(api):
    job = post_job(api, {"type": "fibonacci", "params": {"n": 1}}).json()
    _, other_token = new_app()
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Token {other_token}")
    theirs = other.get(f"/jobs/{job['id']}")
    unknown_id = str(uuid.uuid4())
    unknown = other.get(f"/jobs/{unknown_id}")
    assert theirs.status_code == unknown.status_code == 404
    assert {**theirs.json(), "instance": None} == {**unknown.json(), "instance": None}
    assert other.get(f"/jobs/{job['id']}/events").status_code == 404
    assert other.post(f"/jobs/{job['id']}/cancel").status_code == 404
    assert other.get("/jobs").json()["results"] == []


def test_revoked_token_is_refused_on_next_request(db):
    _, token = new_app()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/jobs").status_code == 200
    services.token_revoke(ref=token[:10])
    response = client.get("/jobs")
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"


def test_cancel_and_events(api):
    job = post_job(api, {"type": "countdown", "params": {"seconds": 5}}).json()
    cancelled = api.post(f"/jobs/{job['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = api.post(f"/jobs/{job['id']}/cancel")
    assert again.status_code == 409 and again["Content-Type"] == PROBLEM
    assert again.json()["job_status"] == "cancelled" and "already finished (cancelled)" in again.json()["detail"]
    events = api.get(f"/jobs/{job['id']}/events").json()["events"]
    assert [e["kind"] for e in events] == ["created", "queued", "cancelled"]


def test_events_come_a_page_at_a_time_oldest_first(api, app):
    """A long job's history (a checkpoint entry every 10 s of a day's migration is
    thousands) is paged: ``limit``, ``next`` and ``Link``, ``after`` for what came since;
    past the last entry an empty page, never a 404 of a job that exists."""
    job = post_job(api, {"type": "countdown", "params": {"seconds": 5}}).json()
    running = services.job_claim(job_id=uuid.UUID(job["id"]), worker="test:1")
    for percent in (25, 50, 75):
        services.job_progress(job=running, percent=percent, message="", milestone=True)
    every = api.get(f"/jobs/{job['id']}/events").json()
    kinds = [e["kind"] for e in every["events"]]
    assert kinds == ["created", "queued", "started", "progress", "progress", "progress"] and every["next"] is None
    first = api.get(f"/jobs/{job['id']}/events?limit=4")
    assert first.status_code == 200 and [e["kind"] for e in first.json()["events"]] == kinds[:4]
    assert first["Link"] == f'<{first.json()["next"]}>; rel="next"'
    second = api.get(first.json()["next"]).json()
    assert second["events"] == every["events"][4:] and second["next"] is None
    last_id = every["events"][-1]["id"]
    assert api.get(f"/jobs/{job['id']}/events?after={last_id}").json()["events"] == []
    services.job_succeed(job=running, result=None)
    since = api.get(f"/jobs/{job['id']}/events?after={last_id}").json()["events"]
    assert [e["kind"] for e in since] == ["succeeded"]
    for query, field in (("limit=0", "limit"), ("after=-1", "after"), ("limit=501", "limit"), ("page=2", "page")):
        bad = api.get(f"/jobs/{job['id']}/events?{query}")
        assert bad.status_code == 400 and bad["Content-Type"] == PROBLEM, query
        assert [e["field"] for e in bad.json()["errors"]] == [field], query
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Token {new_app()[1]}")
    assert other.get(f"/jobs/{job['id']}/events?after={last_id}").status_code == 404


@pytest.mark.parametrize("method", ["delete", "put", "patch"])
def test_no_deletes_or_rewrites(api, method):
    job = post_job(api, {"type": "fibonacci", "params": {"n": 1}}).json()
    response = getattr(api, method)(f"/jobs/{job['id']}")
    assert response.status_code == 405 and "DELETE" not in response["Allow"]
    assert api.get(f"/jobs/{job['id']}").status_code == 200


def test_list_pagination(api):
    ids = [post_job(api, {"type": "fibonacci", "params": {"n": i}}).json()["id"] for i in range(3)]
    first = api.get("/jobs?limit=2").json()
    second = api.get(first["next"]).json()
    assert [j["id"] for j in first["results"] + second["results"]] == list(reversed(ids))
    assert second["next"] is None


def test_job_types_and_health(api):
    names = [t["name"] for t in api.get("/job-types").json()["results"]]
    assert {"fibonacci", "pi", "countdown"} <= set(names)
    anonymous = APIClient()
    health = anonymous.get("/health")
    assert health.status_code == 200 and health.json()["database"] == "ok"
    assert anonymous.get("/job-types").status_code == 401


def test_browsable_api_login_with_token_keeps_csrf(db):
    _, token = new_app()
    browser = Client(enforce_csrf_checks=True)
    page = browser.get("/jobs", HTTP_ACCEPT="text/html")
    assert page.status_code == 401
    form = browser.get("/api-auth/login/?next=/jobs")
    assert form.status_code == 200 and b"Application token" in form.content
    csrf = browser.cookies["csrftoken"].value
    bad = browser.post("/api-auth/login/", {"token": "wrong", "csrfmiddlewaretoken": csrf})
    assert bad.status_code == 400
    assert browser.post("/api-auth/login/", {"token": token}).status_code == 403  # no CSRF token
    login = browser.post("/api-auth/login/", {"token": token, "next": "/jobs", "csrfmiddlewaretoken": csrf})
    assert login.status_code == 302 and login["Location"] == "/jobs"
    assert token not in browser.cookies["sessionid"].value
    listing = browser.get("/jobs", HTTP_ACCEPT="text/html")
    assert listing.status_code == 200 and b"<h1>Jobs</h1>" in listing.content
    body = json.dumps({"type": "fibonacci", "params": {"n": 5}})
    # A session-authenticated POST without the CSRF token is refused…
    assert browser.post("/jobs", data=body, content_type="application/json").status_code == 403
    # …and accepted with it.
    ok = browser.post(
        "/jobs", data=body, content_type="application/json", HTTP_X_CSRFTOKEN=browser.cookies["csrftoken"].value
    )
    assert ok.status_code == 201


def test_browsable_api_static_files_are_served(db):
    """The browsable API's CSS/JS come from WhiteNoise, so it works under gunicorn too."""
    from django.test import Client

    response = Client().get("/static/rest_framework/js/jquery-3.7.1.min.js")
    assert response.status_code == 200


def test_login_page_during_a_database_outage_is_503(db, monkeypatch):
    """A plain Django view (the log-in form) also answers 503, not 500, when the database is down."""
    from jobs import selectors
    from jobs.exceptions import DatabaseUnavailable

    def down(**kwargs):
        raise DatabaseUnavailable("connection refused")

    monkeypatch.setattr(selectors, "app_for_token", down)
    response = Client().post("/api-auth/login/", {"token": "anything"})
    assert response.status_code == 503
    assert response["Retry-After"].isdigit() and response["Content-Type"] == PROBLEM


def test_a_create_on_a_read_only_server_is_503_not_500(api):
    """A standby refuses writes (SQLSTATE 25006): the database cannot take the job now,
    which the client should retry, not a server error."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SET transaction_read_only = on")  # as on a standby, for this transaction
    response = post_job(api, {"type": "fibonacci", "params": {"n": 1}})
    assert response.status_code == 503, response.content
    assert response["Retry-After"].isdigit() and response.json()["type"].endswith("database-unavailable")


@pytest.mark.parametrize("query", ["type=%00", "metadata.x=%00", "metadata.%00=1"])
def test_nul_in_list_filters_is_400_not_500(api, query):
    response = api.get(f"/jobs?{query}")
    assert response.status_code == 400 and response["Content-Type"] == PROBLEM


def test_polling_with_if_none_match_gets_304_until_the_job_changes(api):
    job = post_job(api, {"type": "countdown", "params": {"seconds": 5}}).json()
    first = api.get(f"/jobs/{job['id']}")
    etag = first["ETag"]
    unchanged = api.get(f"/jobs/{job['id']}", HTTP_IF_NONE_MATCH=etag)
    assert unchanged.status_code == 304 and unchanged.content == b"" and unchanged["ETag"] == etag
    services.job_claim(job_id=uuid.UUID(job["id"]), worker="w")  # the job moves on
    changed = api.get(f"/jobs/{job['id']}", HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed.json()["status"] == "running" and changed["ETag"] != etag


def test_list_filters_each_narrow_the_results(api):
    """Every filter is applied: type, status and metadata, alone and together."""
    fib = [
        post_job(api, {"type": "fibonacci", "params": {"n": 1}, "metadata": {"batch": "a"}}).json() for _ in range(2)
    ]
    count = post_job(api, {"type": "countdown", "params": {"seconds": 1}, "metadata": {"batch": "b"}}).json()
    api.post(f"/jobs/{fib[0]['id']}/cancel")

    def ids(query: str) -> set[str]:
        response = api.get(f"/jobs?{query}")
        assert response.status_code == 200, response.content
        return {job["id"] for job in response.json()["results"]}

    assert ids("type=countdown") == {count["id"]}
    assert ids("type=fibonacci") == {fib[0]["id"], fib[1]["id"]}
    assert ids("status=cancelled") == {fib[0]["id"]}
    assert ids("metadata.batch=b") == {count["id"]}
    assert ids("type=fibonacci&status=queued") == {fib[1]["id"]}
    assert ids("type=pi") == set()


def test_run_at_in_the_future_schedules_the_job_and_no_worker_runs_it_before(api, raw):
    from datetime import UTC, datetime, timedelta

    from jobs.runtime.worker import execute_job

    run_at = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    created = post_job(api, {"type": "fibonacci", "params": {"n": 1}, "run_at": run_at.isoformat()})
    assert created.status_code == 201, created.content
    job = created.json()
    assert job["status"] == "scheduled"
    assert abs(datetime.fromisoformat(job["run_at"]) - run_at) < timedelta(seconds=1)
    raw.execute(
        "SELECT q.lock FROM django_q_ormq q JOIN jobs_job j ON j.envelope_id = q.id WHERE j.id = %s", [job["id"]]
    )
    assert raw.fetchone()[0] >= run_at - timedelta(seconds=1)  # no cluster takes the envelope before run_at
    assert execute_job(job["id"]) == "skipped"  # an early delivery does not run it either
    assert api.get(f"/jobs/{job['id']}").json()["status"] == "scheduled"


def test_run_at_in_the_past_queues_the_job_at_once(api):
    created = post_job(api, {"type": "fibonacci", "params": {"n": 1}, "run_at": "2020-01-01T00:00:00Z"})
    assert created.status_code == 201 and created.json()["status"] == "queued"
