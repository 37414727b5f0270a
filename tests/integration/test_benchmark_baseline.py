"""The benchmark's bare-Django baseline (benchmarks/baseline.py) answers as the platform
does, on the real schema: a baseline that answers every request with an error measures
nothing (its create did, unnoticed, from the day job_create took the re-run's parameters
until the run refused such figures)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from django.test import RequestFactory

from benchmarks import baseline
from jobs import selectors
from tests.integration.conftest import new_app

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


def request(method: str, path: str, token: str, body: dict | None = None):
    factory = RequestFactory()
    headers = {"HTTP_AUTHORIZATION": f"Token {token}"}
    if method == "POST":
        return factory.post(path, data=json.dumps(body), content_type="application/json", **headers)
    return factory.get(path, **headers)


def test_the_baselines_create_stores_the_job_the_api_would_and_its_read_returns_it():
    app, token = new_app()
    body = {"type": "fibonacci", "params": {"n": 1000}, "metadata": {"migration": "m7"}}
    created = baseline.jobs(request("POST", "/jobs", token, body))
    assert created.status_code == 201, created.content
    answer = json.loads(created.content)
    job = selectors.job_get(app=app, job_id=uuid.UUID(answer["id"]))
    assert (job.type, job.params, job.metadata, job.status.value) == (
        "fibonacci",
        {"n": 1000},
        {"migration": "m7"},
        "queued",
    )
    assert [e.kind for e in selectors.job_events(app=app, job_id=job.id)] == ["created", "queued"]

    read = baseline.job(request("GET", f"/jobs/{job.id}", token), job.id)
    assert read.status_code == 200, read.content
    assert json.loads(read.content)["id"] == str(job.id)


def test_the_baseline_refuses_an_unknown_token_and_a_job_of_another_application():
    _, token = new_app()
    _, other = new_app()
    job = json.loads(baseline.jobs(request("POST", "/jobs", token, {"type": "fibonacci", "params": {"n": 1}})).content)
    assert baseline.jobs(request("POST", "/jobs", "nope", {"type": "fibonacci"})).status_code == 401
    assert baseline.job(request("GET", "/", other), uuid.UUID(job["id"])).status_code == 404


def test_the_baseline_stays_bare_django():
    """It shares job_create's parameters through jobs.inserts, which imports neither DRF nor
    the services: a heavier baseline would flatter every ratio, memory included."""
    code = (
        "import sys, django; django.setup(); import benchmarks.baseline; "
        "print(sorted(m for m in ('rest_framework', 'jobs.services', 'jobs.registry') if m in sys.modules))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "benchmarks.baseline_settings", "SECRET_KEY": "bare"}
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
