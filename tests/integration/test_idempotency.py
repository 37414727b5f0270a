"""Idempotency-Key on POST /jobs: a retried create never makes a second job."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from rest_framework.test import APIClient

from jobs import services
from jobs.services import lifecycle
from tests.integration.conftest import new_app


def post(api, body, key):
    return api.post("/jobs", data=json.dumps(body), content_type="application/json", HTTP_IDEMPOTENCY_KEY=key)


BODY = {"type": "fibonacci", "params": {"n": 10}, "metadata": {"batch": 7}}


def test_same_key_same_body_returns_the_first_job(api, raw):
    first = post(api, BODY, "import-2026-11-27-batch-7")
    again = post(api, BODY, "import-2026-11-27-batch-7")
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again["Location"] == first["Location"]
    assert again["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first
    raw.execute("SELECT count(*) FROM jobs_job WHERE idempotency_key = %s", ["import-2026-11-27-batch-7"])
    assert raw.fetchone()[0] == 1


def test_same_key_other_body_is_422(api):
    first = post(api, BODY, "key-1").json()
    response = post(api, {**BODY, "params": {"n": 11}}, "key-1")
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    assert "different request" in response.json()["detail"]
    assert response.json()["job_id"] == first["id"]  # which job the key belongs to


def test_same_key_with_a_run_at_returns_the_first_job(api):
    """A scheduled create is fingerprinted like any other (its run_at included)."""
    when = (datetime.now(UTC) + timedelta(days=10)).replace(microsecond=0)
    with_time = {**BODY, "run_at": when.isoformat()}
    first = post(api, with_time, "scheduled-1")
    again = post(api, with_time, "scheduled-1")
    assert first.status_code == again.status_code == 201, first.content
    assert again.json()["id"] == first.json()["id"]
    later = {**BODY, "run_at": (when + timedelta(hours=1)).isoformat()}
    assert post(api, later, "scheduled-1").status_code == 422


def test_keys_belong_to_one_application(api):
    first = post(api, BODY, "shared-key").json()
    _, other_token = new_app()
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Token {other_token}")
    second = post(other, BODY, "shared-key")
    assert second.status_code == 201 and second.json()["id"] != first["id"]


def test_without_a_key_each_post_is_a_new_job(api):
    ids = {api.post("/jobs", data=json.dumps(BODY), content_type="application/json").json()["id"] for _ in range(2)}
    assert len(ids) == 2


def test_invalid_key_is_400(api):
    response = post(api, BODY, "x" * 300)
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "Idempotency-Key"


def test_concurrent_duplicate_loses_the_race_gracefully(app, monkeypatch):
    """Two requests with one key pass the first lookup together; the unique index decides."""
    request = {"app": app, "type": "fibonacci", "params": {"n": 3}, "metadata": {}}
    winner, _ = services.job_create(idempotency_key="race", **request)
    real_lookup = lifecycle._job_for_idempotency_key
    calls = []

    def lookup_misses_once(*args):
        calls.append(args)
        return None if len(calls) == 1 else real_lookup(*args)

    monkeypatch.setattr(lifecycle, "_job_for_idempotency_key", lookup_misses_once)
    job, created = services.job_create(idempotency_key="race", **request)
    assert (job.id, created) == (winner.id, False)
    assert len(calls) == 2
