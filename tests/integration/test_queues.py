"""Named queues: a job names its queue, its envelope carries that queue's cluster key."""

from __future__ import annotations

import json

import pytest
from django_q.signing import SignedPackage

from jobs import queue, services


@pytest.fixture
def queues(settings):
    settings.JOBS_QUEUES = ["default", "high"]


def envelope_key(raw, job_id) -> str:
    """The cluster key of the job's current envelope, once it is checked to deliver this job."""
    raw.execute(
        "SELECT q.key, q.payload FROM django_q_ormq q JOIN jobs_job j ON j.envelope_id = q.id WHERE j.id = %s",
        [job_id],
    )
    key, payload = raw.fetchone()
    assert SignedPackage.loads(payload)["args"] == (str(job_id),)
    return key


def test_a_job_waits_on_the_queue_it_names(api, raw, queues, settings):
    base = settings.Q_CLUSTER["name"]
    urgent = api.post(
        "/jobs",
        data=json.dumps({"type": "fibonacci", "params": {"n": 1}, "queue": "high"}),
        content_type="application/json",
    ).json()
    plain = api.post(
        "/jobs", data=json.dumps({"type": "fibonacci", "params": {"n": 1}}), content_type="application/json"
    ).json()
    assert (urgent["queue"], plain["queue"]) == ("high", "default")
    assert envelope_key(raw, urgent["id"]) == f"{base}.high" == queue.queue_key("high")
    assert envelope_key(raw, plain["id"]) == base


def test_an_unknown_queue_is_400_naming_the_queues(api, queues):
    response = api.post(
        "/jobs",
        data=json.dumps({"type": "fibonacci", "params": {"n": 1}, "queue": "nope"}),
        content_type="application/json",
    )
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["field"] == "queue" and "default, high" in error["detail"]


def test_retry_and_rescue_keep_the_queue(app, raw, queues, settings):
    job, _ = services.job_create(app=app, type="fibonacci", params={"n": 1}, queue="high")
    running = services.job_claim(job_id=job.id, worker="w")
    retried = services.job_fail(job=running, error=RuntimeError("x"), retryable=True)
    assert envelope_key(raw, retried.id) == f"{settings.Q_CLUSTER['name']}.high"
    raw.execute("UPDATE jobs_job SET run_at = now() - interval '1 second' WHERE id = %s", [job.id])
    again = services.job_claim(job_id=job.id, worker="w")
    raw.execute("UPDATE jobs_job SET lease_expires_at = now() - interval '1 second' WHERE id = %s", [job.id])
    assert services.jobs_rescue_expired(limit=10) >= 1
    assert again.queue == "high" and envelope_key(raw, job.id) == f"{settings.Q_CLUSTER['name']}.high"


def test_deferral_and_redelivery_keep_the_queue(app, raw, queues, settings):
    """Every path that writes a new envelope (create, retry, rescue, defer, redeliver)
    sends it to the job's own queue, carrying the job."""
    high = f"{settings.Q_CLUSTER['name']}.high"
    services.app_set_max_running(app_name=app.name, max_running=1)
    first, _ = services.job_create(app=app, type="fibonacci", params={"n": 1}, queue="high")
    second, _ = services.job_create(app=app, type="fibonacci", params={"n": 1}, queue="high")
    services.job_claim(job_id=first.id, worker="w")
    assert services.job_claim(job_id=second.id, worker="w") is None
    assert services.job_defer(job_id=second.id)
    assert envelope_key(raw, second.id) == high
    raw.execute("DELETE FROM django_q_ormq WHERE id = (SELECT envelope_id FROM jobs_job WHERE id = %s)", [second.id])
    raw.execute("UPDATE jobs_job SET enqueued_at = now() - interval '1 hour' WHERE id = %s", [second.id])
    assert services.jobs_redeliver_lost(limit=100, retry=settings.Q_CLUSTER["retry"]) >= 1
    assert envelope_key(raw, second.id) == high


def test_the_list_filters_by_queue(api, queues):
    urgent = api.post(
        "/jobs",
        data=json.dumps({"type": "fibonacci", "params": {"n": 1}, "queue": "high"}),
        content_type="application/json",
    ).json()
    api.post("/jobs", data=json.dumps({"type": "fibonacci", "params": {"n": 1}}), content_type="application/json")
    listed = api.get("/jobs?queue=high").json()["results"]
    assert [job["id"] for job in listed] == [urgent["id"]]
