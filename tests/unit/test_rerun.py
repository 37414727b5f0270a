"""Re-runs and log pages with the store mocked: the rerun service's checks and what it
asks the store for, the two views' answers (status, headers, problem+json)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from unittest import mock

import pytest

from jobs import selectors as real_selectors
from jobs import services
from jobs.domain import LogLine, Status
from jobs.exceptions import IdempotencyKeyReused, InvalidInput, JobNotFinished, JobNotFound
from jobs.services.lifecycle import JobOrigin
from tests.conftest import make_job
from tests.unit.test_services import job_row as services_job_row

PROBLEM = "application/problem+json"
AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def job_row(**overrides):
    """A query row of a job, finished (``failed``) unless ``status`` says otherwise."""
    return services_job_row(**{"status": "failed", **overrides})


# -- the service --------------------------------------------------------------------------
def test_rerun_creates_with_the_old_jobs_fields_and_links_it(store, job_queue, fake_app):
    old = job_row(
        app_id=fake_app.id, params={"n": 7}, metadata={"m": 1}, max_attempts=4, timeout_seconds=60, attempts=4
    )
    old.update(checkpoint={"at": 3}, checkpoint_at=AT)
    store.fetch_one.side_effect = [old, {"id": old["id"]}, job_row(status="queued", rerun_of=old["id"])]

    job, created = services.job_rerun(app=fake_app, job_id=old["id"], resume=True)

    assert created and job.rerun_of == old["id"]
    (lookup, lookup_args), (lock, lock_args), (insert, insert_args) = [
        (c.args[0], c.kwargs) for c in store.fetch_one.call_args_list
    ]
    assert lookup == "job_get" and lookup_args == {"id": old["id"], "app_id": fake_app.id}
    # the old job's history is held while the 'rerun' entry is added, in one transaction
    assert lock == "job_lock_history" and lock_args == {"id": old["id"]}
    store.atomic.assert_called_once()
    assert insert == "job_create"
    assert insert_args["rerun_of"] == old["id"]
    assert insert_args["checkpoint"] == {"at": 3} and insert_args["checkpoint_at"] == AT
    assert insert_args["params"] == {"n": 7} and insert_args["metadata"] == {"m": 1}
    assert insert_args["max_attempts"] == 4 and insert_args["timeout_seconds"] == 60
    assert insert_args["queue"] == "default" and insert_args["idempotency_key"] is None


def test_rerun_without_resume_starts_without_the_checkpoint(store, job_queue, fake_app):
    old = job_row(app_id=fake_app.id)
    old.update(checkpoint={"at": 3}, checkpoint_at=AT)
    store.fetch_one.side_effect = [old, {"id": old["id"]}, job_row(status="queued")]
    services.job_rerun(app=fake_app, job_id=old["id"], overrides={"params": {"n": 3}})
    insert_args = store.fetch_one.call_args.kwargs
    assert insert_args["checkpoint"] is None and insert_args["checkpoint_at"] is None
    assert insert_args["params"] == {"n": 3}


def test_rerun_of_an_unknown_job_is_not_found_and_of_an_unfinished_one_a_conflict(store, job_queue, fake_app):
    store.fetch_one.return_value = None
    with pytest.raises(JobNotFound):
        services.job_rerun(app=fake_app, job_id=uuid.uuid4())
    store.fetch_one.return_value = job_row(status="running")
    with pytest.raises(JobNotFinished) as info:
        services.job_rerun(app=fake_app, job_id=uuid.uuid4())
    assert info.value.context == {"job_status": "running"}
    job_queue.envelope.assert_not_called()


def test_rerun_names_every_fault_at_once_and_stores_nothing(store, job_queue, fake_app):
    store.fetch_one.return_value = job_row()
    with pytest.raises(InvalidInput) as info:
        services.job_rerun(
            app=fake_app,
            job_id=uuid.uuid4(),
            overrides={"params": {"n": -1}, "max_attempts": 0},
            resume="yes",
            idempotency_key="a b",
            unknown_fields=["queue"],
        )
    assert set(info.value.errors) == {"params.n", "max_attempts", "resume", "Idempotency-Key", "queue"}
    assert store.fetch_one.call_count == 1  # the lookup only


def test_an_idempotency_key_tells_a_rerun_from_a_create_and_from_another_rerun(store, job_queue, fake_app):
    request = services.job_request_validate({"type": "fibonacci", "params": {"n": 10}})
    first, second = uuid.uuid4(), uuid.uuid4()
    fingerprints = {
        request.fingerprint(),
        JobOrigin(rerun_of=first, resume=False).fingerprint(request),
        JobOrigin(rerun_of=first, resume=True).fingerprint(request),
        JobOrigin(rerun_of=second, resume=False).fingerprint(request),
    }
    assert len(fingerprints) == 4
    # The key already names a create with the same fields: the re-run is refused (422).
    old = job_row(app_id=fake_app.id, params={"n": 10}, timeout_seconds=request.timeout)
    earlier = job_row(status="queued", idempotency_key="k", request_hash=request.fingerprint())
    store.fetch_one.side_effect = [old, earlier]
    with pytest.raises(IdempotencyKeyReused):
        services.job_rerun(app=fake_app, job_id=old["id"], idempotency_key="k")
    assert [c.args[0] for c in store.fetch_one.call_args_list] == ["job_get", "job_get_by_idempotency_key"]


# -- the views ----------------------------------------------------------------------------
def post_json(api, path, body, **extra):
    return api.post(path, data=json.dumps(body), content_type="application/json", **extra)


@pytest.fixture
def rerun():
    with mock.patch("jobs.api.rerun.services") as fake:
        fake.RERUN_FIELDS = services.RERUN_FIELDS
        fake.RERUN_OVERRIDES = services.RERUN_OVERRIDES
        yield fake.job_rerun


@pytest.mark.parametrize("path", ["/jobs/{id}/rerun", "/job/{id}/rerun"])
def test_rerun_view__201_location_and_what_it_passes(api, rerun, fake_app, path):
    old_id = uuid.uuid4()
    job = make_job(app_id=fake_app.id, rerun_of=old_id)
    rerun.return_value = (job, True)
    response = post_json(
        api, path.format(id=old_id), {"params": {"n": 1}, "resume": True, "other": 1}, HTTP_IDEMPOTENCY_KEY="k"
    )
    assert response.status_code == 201 and response["Location"] == f"http://testserver/jobs/{job.id}"
    assert response.json()["rerun_of"] == str(old_id) and "Idempotent-Replayed" not in response
    rerun.assert_called_once_with(
        app=fake_app,
        job_id=old_id,
        overrides={"params": {"n": 1}},
        resume=True,
        idempotency_key="k",
        unknown_fields=["other"],
    )


def test_rerun_view__replayed_and_the_problems(api, rerun, fake_app):
    rerun.return_value = (make_job(), False)
    assert post_json(api, f"/jobs/{uuid.uuid4()}/rerun", {})["Idempotent-Replayed"] == "true"
    rerun.side_effect = JobNotFinished("The job is running.", job_status="running")
    conflict = post_json(api, f"/jobs/{uuid.uuid4()}/rerun", {})
    assert conflict.status_code == 409 and conflict["Content-Type"] == PROBLEM
    assert conflict.json()["job_status"] == "running"
    assert post_json(api, "/jobs/not-a-uuid/rerun", {}).status_code == 404
    assert post_json(api, f"/jobs/{uuid.uuid4()}/rerun", "a string").status_code == 400


@pytest.fixture
def log_page():
    with mock.patch("jobs.api.joblog.selectors") as fake:
        yield fake.job_log_page


def lines(*ids: int) -> list[LogLine]:
    return [LogLine(id=i, attempt=1, at=AT, level="info", message=f"line {i}", fields={}) for i in ids]


def test_logs_view__a_page_with_next_link_etag_and_retry_after(api, log_page, fake_app):
    job = make_job(app_id=fake_app.id, status=Status.RUNNING, attempts=1, log_lines=3)
    log_page.return_value = real_selectors.LogPage(job, lines(4, 5, 6))
    response = api.get(f"/jobs/{job.id}/logs?limit=2&after=3&level=info")
    assert response.status_code == 200
    body = response.json()
    assert [line["id"] for line in body["results"]] == [4, 5]
    assert body["next"] == f"http://testserver/jobs/{job.id}/logs?limit=2&after=5&level=info"
    assert response["Link"] == f'<{body["next"]}>; rel="next"'
    assert response["Retry-After"] == "2" and response["ETag"]
    assert body["status"] == "running" and body["total"] == 3 and body["dropped"] == 0
    kwargs = log_page.call_args.kwargs
    assert (
        kwargs["after"] == 3
        and kwargs["limit"] == 3
        and [str(level) for level in kwargs["levels"]]
        == [
            "info",
            "warning",
            "error",
        ]
    )
    again = api.get(f"/jobs/{job.id}/logs?limit=2&after=3&level=info", HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304 and again["Retry-After"] == "2"


def test_logs_view__finished_job_no_retry_after_and_unknown_parameters_are_400(api, log_page, fake_app):
    job = make_job(app_id=fake_app.id, status=Status.SUCCEEDED)
    log_page.return_value = real_selectors.LogPage(job, lines(1))
    response = api.get(f"/jobs/{job.id}/logs")
    assert response.status_code == 200 and "Retry-After" not in response and response.json()["next"] is None
    bad = api.get(f"/jobs/{job.id}/logs?after=1.5&levle=info")
    assert bad.status_code == 400 and bad["Content-Type"] == PROBLEM
    assert {error["field"] for error in bad.json()["errors"]} == {"after", "levle"}
    log_page.side_effect = JobNotFound()
    assert api.get(f"/jobs/{job.id}/logs").status_code == 404
