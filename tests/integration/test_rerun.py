"""POST /jobs/{id}/rerun against the real database: a new job like the old one, linked
both ways, the old one untouched; resume carries the checkpoint; the create rules apply."""

from __future__ import annotations

import uuid

import pytest
from django.db import DatabaseError, connection, transaction
from rest_framework.test import APIClient

from jobs import selectors, services
from jobs.domain import Status
from tests.integration.conftest import new_app, second_waits_for_first


def client(token: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return api


def finished(app, *, status="failed", checkpoint=None, **create):
    """A job of ``app`` that ran one attempt (storing ``checkpoint``) and ended ``status``."""
    values = {"type": "fibonacci", "params": {"n": 10}, "metadata": {"migration": "m-1"}} | create
    job = services.job_create(app=app, **values)[0]
    running = services.job_claim(job_id=job.id, worker="w")
    if checkpoint is not None:
        services.job_checkpoint(job=running, state=checkpoint, event=True)
    if status == "failed":
        return services.job_fail(job=running, error=ConnectionError("target down"), retryable=False)
    if status == "cancelled":
        return services.job_cancelled(job=running)
    return services.job_succeed(job=running, result={"ok": True})


def row(job_id) -> dict:
    with connection.cursor() as cur:
        cur.execute("SELECT to_jsonb(j) FROM jobs_job j WHERE id = %s", [job_id])
        return cur.fetchone()[0]


def test_a_rerun_is_a_new_job_like_the_old_one_linked_both_ways(db, settings):
    settings.JOBS_CALLBACK_ALLOWED_HOSTS = ["hooks.example.com"]
    app, token = new_app()
    old = finished(app, max_attempts=2, timeout=77, callback_url="https://hooks.example.com/x")
    before = row(old.id)

    answer = client(token).post(f"/jobs/{old.id}/rerun", {}, format="json")
    assert answer.status_code == 201, answer.content
    new = answer.json()
    assert answer["Location"] == new["url"] and new["id"] != str(old.id)
    assert new["rerun_of"] == str(old.id) and new["status"] == "queued" and new["attempts"] == 0
    expected = {"type": "fibonacci", "params": {"n": 10}, "metadata": {"migration": "m-1"}, "queue": "default"}
    assert {name: new[name] for name in expected} == expected
    assert new["max_attempts"] == 2 and new["timeout"] == 77
    assert new["callback_url"] == "https://hooks.example.com/x"
    assert new["checkpoint"] is None and new["error"] is None

    # The old job: a 'rerun' event naming the new one, its row exactly as it was.
    events = selectors.job_events(app=app, job_id=old.id)
    assert events[-1].kind == "rerun" and events[-1].data == {"job": new["id"], "resumed": False}
    assert events[-1].attempt == 1
    assert row(old.id) == before
    created = selectors.job_events(app=app, job_id=uuid.UUID(new["id"]))[0]
    assert created.kind == "created"
    assert created.data == {"type": "fibonacci", "rerun_of": str(old.id), "resumed": False}
    # Still frozen: a finished job never changes.
    with pytest.raises(DatabaseError, match="can no longer change"), transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("UPDATE jobs_job SET status = 'queued' WHERE id = %s", [old.id])


def test_resume_carries_the_checkpoint_over(db):
    app, token = new_app()
    old = finished(app, checkpoint={"last_id": 9000})
    stored = selectors.job_get(app=app, job_id=old.id)
    new = client(token).post(f"/job/{old.id}/rerun", {"resume": True}, format="json").json()
    assert new["checkpoint"]["state"] == {"last_id": 9000}
    assert new["checkpoint"]["at"] == client(token).get(f"/jobs/{old.id}").json()["checkpoint"]["at"]
    # Its first attempt starts from it.
    claimed = services.job_claim(job_id=uuid.UUID(new["id"]), worker="w")
    assert claimed.attempts == 1 and claimed.checkpoint == {"last_id": 9000}
    assert claimed.checkpoint_at == stored.checkpoint_at
    assert selectors.job_events(app=app, job_id=old.id)[-1].data == {"job": new["id"], "resumed": True}
    # Without resume, the same old job re-runs from scratch.
    fresh = client(token).post(f"/jobs/{old.id}/rerun", {"resume": False}, format="json").json()
    assert fresh["checkpoint"] is None


def test_resume_of_a_job_that_stored_no_checkpoint_starts_from_scratch(db):
    app, token = new_app()
    old = finished(app, status="cancelled")
    new = client(token).post(f"/jobs/{old.id}/rerun", {"resume": True}, format="json").json()
    assert new["checkpoint"] is None and new["rerun_of"] == str(old.id)


def test_overrides_are_checked_exactly_as_on_create(db):
    app, token = new_app()
    old = finished(app, status="succeeded")
    api = client(token)
    new = api.post(
        f"/jobs/{old.id}/rerun", {"params": {"n": 12}, "metadata": {"run": 2}, "max_attempts": 4}, format="json"
    ).json()
    assert new["params"] == {"n": 12} and new["metadata"] == {"run": 2} and new["max_attempts"] == 4
    bad = api.post(
        f"/jobs/{old.id}/rerun",
        {
            "params": {"n": -1},
            "metadata": [],
            "max_attempts": 0,
            "resume": "yes",
            "timeout": 0,
            "type": "pi",
            "queue": "nowhere",
            "callback_url": "ftp://x",
        },
        format="json",
    )
    assert bad.status_code == 400 and bad["Content-Type"] == "application/problem+json"
    assert {error["field"] for error in bad.json()["errors"]} == {
        "params.n",
        "metadata",
        "max_attempts",
        "resume",
        "timeout",
        "type",
        "queue",
        "callback_url",
    }
    assert api.post(f"/jobs/{old.id}/rerun", [1], format="json").status_code == 400
    assert len(selectors.job_events(app=app, job_id=old.id)) == 5  # created, queued, started, succeeded, rerun


@pytest.mark.parametrize("state", ["queued", "running", "scheduled"])
def test_an_unfinished_job_is_a_409(db, state):
    app, token = new_app()
    job = services.job_create(app=app, type="fibonacci", params={"n": 1})[0]
    if state == "running":
        services.job_claim(job_id=job.id, worker="w")
    if state == "scheduled":
        running = services.job_claim(job_id=job.id, worker="w")
        services.job_fail(job=running, error=ConnectionError("x"), retryable=True)
    answer = client(token).post(f"/jobs/{job.id}/rerun", {}, format="json")
    assert answer.status_code == 409 and answer["Content-Type"] == "application/problem+json"
    body = answer.json()
    assert body["type"] == "urn:jobplatform:problem:conflict" and body["job_status"] == state


def test_another_applications_job_or_an_unknown_id_is_a_404(db):
    owner, _ = new_app()
    old = finished(owner)
    _, stranger = new_app()
    for path in (f"/jobs/{old.id}/rerun", f"/jobs/{uuid.uuid4()}/rerun", "/jobs/nope/rerun"):
        answer = client(stranger).post(path, {}, format="json")
        assert answer.status_code == 404 and answer["Content-Type"] == "application/problem+json"
    # An admin token reads every application's jobs but re-runs only its own, like cancel.
    admin, _ = services.token_issue(app_name=f"ops-{uuid.uuid4().hex[:8]}", scopes=["admin", "jobs:write"])
    assert client(admin).post(f"/jobs/{old.id}/rerun", {}, format="json").status_code == 404


def test_idempotency_key_works_as_on_create(db):
    app, token = new_app()
    old = finished(app, checkpoint={"n": 1})
    api = client(token)
    first = api.post(f"/jobs/{old.id}/rerun", {"resume": True}, format="json", HTTP_IDEMPOTENCY_KEY="rerun-1")
    again = api.post(f"/jobs/{old.id}/rerun", {"resume": True}, format="json", HTTP_IDEMPOTENCY_KEY="rerun-1")
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"] and again["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    other = api.post(f"/jobs/{old.id}/rerun", {"resume": False}, format="json", HTTP_IDEMPOTENCY_KEY="rerun-1")
    assert other.status_code == 422 and other.json()["job_id"] == first.json()["id"]
    # A create with the same key is a different request too.
    body = {"type": "fibonacci", "params": {"n": 10}}
    create = api.post("/jobs", body, format="json", HTTP_IDEMPOTENCY_KEY="rerun-1")
    assert create.status_code == 422
    kinds = [e.kind for e in selectors.job_events(app=app, job_id=old.id)]
    assert kinds.count("rerun") == 1
    bad_key = api.post(f"/jobs/{old.id}/rerun", {}, format="json", HTTP_IDEMPOTENCY_KEY="é")
    assert bad_key.status_code == 400 and bad_key.json()["errors"][0]["field"] == "Idempotency-Key"


def test_scopes_and_the_applications_cap_apply_as_on_create(db, settings):
    app, _ = new_app()
    old = finished(app)
    reader, _ = services.token_issue(app_name=app.name, scopes=["jobs:read"])
    refused = client(reader).post(f"/jobs/{old.id}/rerun", {}, format="json")
    assert refused.status_code == 403 and refused.json()["required_scope"] == "jobs:write"
    settings.JOBS = {**settings.JOBS, "MAX_UNFINISHED_PER_APP": 1}
    writer, _ = services.token_issue(app_name=app.name, scopes=["jobs:write"])
    services.job_create(app=app, type="fibonacci", params={"n": 1})
    capped = client(writer).post(f"/jobs/{old.id}/rerun", {}, format="json")
    assert capped.status_code == 429 and capped.json()["type"] == "urn:jobplatform:problem:too-many-unfinished-jobs"
    assert [e.kind for e in selectors.job_events(app=app, job_id=old.id)][-1] == "failed"  # no rerun recorded


def test_a_rerun_of_a_rerun_links_to_its_own_predecessor(db):
    app, _ = new_app()
    first = finished(app)
    second, _ = services.job_rerun(app=app, job_id=first.id)
    running = services.job_claim(job_id=second.id, worker="w")
    services.job_fail(job=running, error=ValueError("again"), retryable=False)
    third, created = services.job_rerun(app=app, job_id=second.id, overrides={"max_attempts": 5})
    assert created and third.rerun_of == second.id and second.rerun_of == first.id
    assert third.status is Status.QUEUED and third.max_attempts == 5


def test_a_rerun_names_another_callback_or_queue_once_the_old_ones_are_gone(db, settings):
    """The deployment changed since the job ran: its callback host left the allow-list and
    its queue left JOBS_QUEUES. As it was, the job cannot be re-run (400, each named); with
    other values (or null, the default) it can."""
    settings.JOBS_CALLBACK_ALLOWED_HOSTS = ["hooks.example.com"]
    settings.JOBS_QUEUES = ["default", "reports"]
    app, token = new_app()
    old = finished(app, queue="reports", timeout=30, callback_url="https://hooks.example.com/x")
    settings.JOBS_CALLBACK_ALLOWED_HOSTS = ["new-hooks.example.com"]
    settings.JOBS_QUEUES = ["default"]
    api = client(token)
    refused = api.post(f"/jobs/{old.id}/rerun", {}, format="json")
    assert refused.status_code == 400, refused.content
    assert {error["field"] for error in refused.json()["errors"]} == {"queue", "callback_url"}
    answer = api.post(
        f"/jobs/{old.id}/rerun",
        {"queue": None, "callback_url": "https://new-hooks.example.com/y", "timeout": 90},
        format="json",
    )
    assert answer.status_code == 201, answer.content
    new = answer.json()
    assert (new["queue"], new["callback_url"], new["timeout"]) == ("default", "https://new-hooks.example.com/y", 90)
    without = api.post(f"/jobs/{old.id}/rerun", {"queue": "default", "callback_url": None}, format="json")
    assert without.status_code == 201 and without.json()["callback_url"] is None


@pytest.mark.django_db(transaction=True)
def test_entries_added_to_a_finished_jobs_history_commit_in_id_order(settings):
    """A callback's delivery being recorded holds the finished job's history; a re-run
    adding its entry meanwhile waits, so its entry's id comes after the delivery's and a
    reader following the history with after= sees both."""
    settings.JOBS_CALLBACK_ALLOWED_HOSTS = ["hooks.example.com"]
    app, _ = new_app()
    old = finished(app, callback_url="https://hooks.example.com/x")
    [taken] = services.callbacks_take(limit=1, lease=60)

    def record_delivery():
        services.callback_delivered(callback_id=taken["id"], attempts=taken["attempts"], status=200)

    [answer] = second_waits_for_first(record_delivery, lambda: services.job_rerun(app=app, job_id=old.id))
    new, created = answer
    assert created, answer
    events = selectors.job_events(app=app, job_id=old.id)
    assert [event.kind for event in events[-2:]] == ["callback", "rerun"], events
    assert events[-1].data["job"] == str(new.id)
