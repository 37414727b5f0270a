"""JSON log lines as production writes them: one per request, one per job transition,
never a token, no line per 401."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import uuid

import pytest
from django.test import Client
from pythonjsonlogger.json import JsonFormatter

from jobs import services
from jobs.logs import RequestIdFilter, logging_config
from jobs.runtime.worker import execute_job
from tests.integration.conftest import new_app

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def json_logs():
    """A root handler as LOG_FORMAT=json configures it (its formatter and filter, built
    from jobs.logs.logging_config), writing to a buffer; returns a function reading the
    lines written so far, each parsed as JSON. django.request's filter is the settings' own."""
    config = logging_config(log_format="json", level="INFO", q_level="WARNING")
    formatter_config = dict(config["formatters"]["json"])
    assert formatter_config.pop("()") == "pythonjsonlogger.json.JsonFormatter"
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter(**formatter_config))
    assert config["handlers"]["console"]["filters"] == ["request_id"]
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)

    def lines() -> list[dict]:
        lines.text = buffer.getvalue()
        return [json.loads(line) for line in lines.text.splitlines() if line.strip()]  # every line is JSON

    lines.text = ""
    yield lines
    root.removeHandler(handler)


def request_lines(records: list[dict]) -> list[dict]:
    return [r for r in records if r["logger"] == "jobs.requests"]


def test_one_line_per_request_with_its_fields(json_logs):
    app, token = new_app()
    response = Client().get("/jobs", HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 200
    (line,) = request_lines(json_logs())
    assert line["method"] == "GET" and line["route"] == "job-list" and line["status"] == 200
    assert isinstance(line["duration"], float) and 0 <= line["duration"] < 10
    assert line["app"] == app.name and line["level"] == "INFO"
    assert re.fullmatch(r"[0-9a-f]{32}", line["request_id"])
    assert response["X-Request-ID"] == line["request_id"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+\+00:00", line["timestamp"])


@pytest.mark.parametrize(
    ("sent", "kept"),
    [("abc-123.4:5", True), ("4f6c0d0e-4c2b-4ad0-9a7e-2f1d3c5b6a79", True), ("two words", False), ("x" * 200, False)],
)
def test_an_incoming_request_id_is_kept_when_sane(json_logs, sent, kept):
    response = Client().get("/health", HTTP_X_REQUEST_ID=sent)
    (line,) = request_lines(json_logs())
    assert (response["X-Request-ID"] == sent) is kept
    assert line["request_id"] == response["X-Request-ID"]


def test_no_token_in_any_line_and_no_line_for_a_401(json_logs):
    _, token = new_app()
    secret_header, secret_query = f"hdr{uuid.uuid4().hex}", f"qry{uuid.uuid4().hex}"
    client = Client()
    unauthorized = client.get(f"/jobs?token={secret_query}", HTTP_AUTHORIZATION=f"Token {secret_header}")
    missing = client.get(f"/jobs/{uuid.uuid4()}?token={secret_query}", HTTP_AUTHORIZATION=f"Token {token}")
    bad = client.post(
        f"/jobs?token={secret_query}", data="{", content_type="application/json", HTTP_AUTHORIZATION=f"Token {token}"
    )
    assert (unauthorized.status_code, missing.status_code, bad.status_code) == (401, 404, 400)
    records = json_logs()
    for secret in (secret_header, secret_query, token):
        assert secret not in json_logs.text
    assert [r["status"] for r in request_lines(records)] == [401, 404, 400]
    warnings = [r for r in records if r["logger"] == "django.request"]
    # The 404 and the 400 keep their warning (with the request's id); the 401 has none.
    assert [r["status_code"] for r in warnings] == [404, 400]
    assert warnings[0]["request_id"] == missing["X-Request-ID"]
    assert not any("Unauthorized" in r["message"] for r in records)


def test_one_line_per_job_transition(json_logs):
    app, _ = new_app()
    job, _ = services.job_create(app=app, type="fibonacci", params={"n": 10})
    execute_job(str(job.id))
    lines = [r for r in json_logs() if r["logger"] == "jobs.transitions"]
    assert [r["transition"] for r in lines] == ["queued", "started", "succeeded"]
    for line in lines:
        assert line["job_id"] == str(job.id) and line["job_type"] == "fibonacci" and line["level"] == "INFO"
    created, started, succeeded = lines
    assert created["attempt"] == 0 and created["worker"] is None and created["duration"] is None
    assert started["attempt"] == succeeded["attempt"] == 1
    assert started["worker"] == succeeded["worker"] and started["worker"].endswith(f":{os.getpid()}")
    assert isinstance(succeeded["duration"], float) and 0 <= succeeded["duration"] < 10


def test_a_retry_and_a_rescue_are_transitions_too(json_logs):
    app, _ = new_app()
    job, _ = services.job_create(app=app, type="fibonacci", params={"n": 10})
    assert services.job_claim(job_id=job.id, worker="lost-host:1") is not None
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("UPDATE jobs_job SET lease_expires_at = now() - interval '1 second' WHERE id = %s", [job.id])
    services.jobs_rescue_expired(limit=1000)
    (rescued,) = [r for r in json_logs() if r["logger"] == "jobs.transitions" and r["job_id"] == str(job.id)][1:]
    assert rescued["transition"] == "rescued" and rescued["level"] == "WARNING"
    assert rescued["worker"] == "lost-host:1" and rescued["attempt"] == 1 and rescued["job_type"] == "fibonacci"
