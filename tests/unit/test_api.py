"""The HTTP contract with the store and queue mocked: status codes, headers, problem+json."""

from __future__ import annotations

import json
import uuid
from unittest import mock

import pytest

from jobs import services as real_services
from jobs.domain import Status
from jobs.exceptions import DatabaseUnavailable, InvalidInput, JobAlreadyFinished, JobNotFound, UnknownJobType
from tests.conftest import make_job

PROBLEM = "application/problem+json"


@pytest.fixture
def services():
    with mock.patch("jobs.api.views.services") as fake:
        fake.JOB_FIELDS = real_services.JOB_FIELDS
        yield fake


@pytest.fixture
def selectors():
    with mock.patch("jobs.api.views.selectors") as fake:
        yield fake


def post_json(api, path, body, **extra):
    return api.post(path, data=json.dumps(body), content_type="application/json", **extra)


@pytest.mark.parametrize("path", ["/jobs", "/job"])
def test_create__201_with_location_and_resource(api, services, fake_app, path):
    job = make_job(app_id=fake_app.id, params={"n": 100000}, metadata={"migration": "customers"})
    services.job_create.return_value = (job, True)
    response = post_json(
        api, path, {"type": "fibonacci", "params": {"n": 100000}, "metadata": {"migration": "customers"}}
    )
    assert response.status_code == 201
    assert response["Location"] == f"http://testserver/jobs/{job.id}"
    body = response.json()
    assert body["id"] == str(job.id)
    assert body["status"] == "queued"
    assert body["params"] == {"n": 100000}
    assert body["metadata"] == {"migration": "customers"}
    services.job_create.assert_called_once_with(
        app=fake_app,
        type="fibonacci",
        params={"n": 100000},
        metadata={"migration": "customers"},
        idempotency_key=None,
        unknown_fields=[],
    )


@pytest.mark.parametrize("path", ["/jobs/{id}", "/job/{id}"])
def test_get__200(api, selectors, fake_app, path):
    job = make_job(app_id=fake_app.id, status=Status.SUCCEEDED, result={"value": "55"})
    selectors.job_get.return_value = job
    response = api.get(path.format(id=job.id))
    assert response.status_code == 200
    assert response.json()["result"] == {"value": "55"}
    selectors.job_get.assert_called_once_with(app=fake_app, job_id=job.id)


def test_create__idempotency_key_goes_to_the_idempotent_service(api, services, fake_app):
    job = make_job(app_id=fake_app.id)
    services.job_create.return_value = (job, False)
    response = post_json(api, "/jobs", {"type": "fibonacci", "params": {"n": 1}}, HTTP_IDEMPOTENCY_KEY="abc-123")
    assert response.status_code == 201 and response["Idempotent-Replayed"] == "true"
    kwargs = services.job_create.call_args.kwargs
    assert kwargs["idempotency_key"] == "abc-123"


def test_create__reused_idempotency_key_is_422(api, services):
    from jobs.exceptions import IdempotencyKeyReused

    services.job_create.side_effect = IdempotencyKeyReused("used with a different request", job_id="x")
    response = post_json(api, "/jobs", {"type": "fibonacci", "params": {"n": 1}}, HTTP_IDEMPOTENCY_KEY="k")
    assert response.status_code == 422
    assert response["Content-Type"] == PROBLEM and response.json()["job_id"] == "x"


def test_get__unknown_id_is_404_problem(api, selectors):
    selectors.job_get.side_effect = JobNotFound()
    response = api.get(f"/jobs/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response["Content-Type"] == PROBLEM
    assert response.json()["status"] == 404


def test_get__malformed_id_is_404_without_store(api, selectors):
    response = api.get("/jobs/not-a-uuid")
    assert response.status_code == 404
    assert response["Content-Type"] == PROBLEM
    selectors.job_get.assert_not_called()


def test_missing_token__401_with_www_authenticate(api):
    api.credentials()
    response = api.get(f"/jobs/{uuid.uuid4()}")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response["Content-Type"] == PROBLEM


def test_bad_token__401(api):
    api.credentials(HTTP_AUTHORIZATION="Token nope")
    response = api.get("/jobs")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert "revoked" in response.json()["detail"]


def test_bearer_keyword_is_accepted(api, selectors):
    api.credentials(HTTP_AUTHORIZATION="Bearer good")
    selectors.job_list.return_value = []
    assert api.get("/jobs").status_code == 200


@pytest.mark.parametrize("method", ["delete", "put", "patch"])
def test_job__delete_put_patch_are_405_with_allow(api, method):
    response = getattr(api, method)(f"/jobs/{uuid.uuid4()}")
    assert response.status_code == 405
    assert "DELETE" not in response["Allow"]
    assert "GET" in response["Allow"]
    assert response["Content-Type"] == PROBLEM


def test_create__malformed_json_is_400(api, services):
    response = api.post("/jobs", data='{"type": ', content_type="application/json")
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    services.job_create.assert_not_called()


def test_create__not_json_is_415(api, services):
    response = api.post("/jobs", data="type=fibonacci", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert response["Content-Type"] == PROBLEM


def test_create__body_over_limit_is_413(api, services):
    big = {"type": "fibonacci", "params": {"n": 1}, "metadata": {"blob": "x" * (1024 * 1024)}}
    response = post_json(api, "/jobs", big)
    assert response.status_code == 413
    assert response["Content-Type"] == PROBLEM
    services.job_create.assert_not_called()


class _BodyThatStops:
    """A request body whose client stops sending half-way. gunicorn reads until it has
    what was asked for, so the application's read fails as a whole: like gunicorn's body
    deadline (TimeoutError) or a dropped connection (ConnectionResetError)."""

    def __init__(self, error: OSError) -> None:
        self.error = error

    def read(self, size: int = -1) -> bytes:
        raise self.error

    readline = read


@pytest.mark.parametrize(
    ("error", "status"), [(TimeoutError("the request body did not arrive"), 408), (ConnectionResetError(), 400)]
)
def test_create__body_that_stops_arriving_is_4xx_problem(api, services, error, status):
    body = b'{"type": "fibonacci", "params": {"n": 1}}'
    response = api.post(
        "/jobs",
        data=body,
        content_type="application/json",
        **{"wsgi.input": _BodyThatStops(error)},
    )
    assert response.status_code == status
    assert response["Content-Type"] == PROBLEM
    assert response.json()["status"] == status
    services.job_create.assert_not_called()


def test_unacceptable_accept_is_406(api):
    response = api.get("/jobs", HTTP_ACCEPT="application/xml")
    assert response.status_code == 406
    assert response["Content-Type"] == PROBLEM


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "type"),
        ({"type": 5, "params": []}, "params"),
        ({"type": "fibonacci", "metadata": "not an object"}, "metadata"),
        ({"type": "fibonacci", "metdata": {}}, "metdata"),
        ({"type": "fibonacci", "max_attempts": 0}, "max_attempts"),
        ({"type": "fibonacci", "timeout": 10**9}, "timeout"),
        ({"type": "fibonacci", "run_at": "yesterday"}, "run_at"),
    ],
)
def test_create__invalid_input_names_the_field(api, store, job_queue, body, field):
    response = post_json(api, "/jobs", body)
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    assert field in [error["field"] for error in response.json()["errors"]]
    store.fetch_one.assert_not_called()  # nothing written


def test_create__json_array_body_is_400(api, services):
    response = post_json(api, "/jobs", [1, 2])
    assert response.status_code == 400
    assert response.json()["errors"][0]["pointer"] == "#"


def test_create__domain_validation_errors_are_400_with_fields(api, services):
    services.job_create.side_effect = InvalidInput(
        {"params.n": ["Ensure this value is less than or equal to 1000000."]}
    )
    response = post_json(api, "/jobs", {"type": "fibonacci", "params": {"n": 10**7}})
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"field": "params.n", "pointer": "#/params/n", "detail": "Ensure this value is less than or equal to 1000000."}
    ]


def test_create__unknown_type_is_400(api, services):
    services.job_create.side_effect = UnknownJobType.named("nope", ["fibonacci", "pi"])
    response = post_json(api, "/jobs", {"type": "nope"})
    assert response.status_code == 400
    assert response.json()["errors"][0] == {
        "field": "type",
        "pointer": "#/type",
        "detail": "Unknown job type 'nope'; installed types: fibonacci, pi (see GET /job-types).",
    }


def test_database_down__503_with_retry_after(api, selectors):
    selectors.job_get.side_effect = DatabaseUnavailable("connection refused")
    response = api.get(f"/jobs/{uuid.uuid4()}")
    assert response.status_code == 503
    assert response["Retry-After"].isdigit()
    assert response["Content-Type"] == PROBLEM


def test_database_down_during_auth__503(api):
    with mock.patch("jobs.api.auth.selectors.app_for_token", side_effect=DatabaseUnavailable("down")):
        response = api.get("/jobs")
    assert response.status_code == 503


def test_cancel__running_is_202_terminal_is_409(api, services, fake_app):
    running = make_job(app_id=fake_app.id, status=Status.RUNNING, cancel_requested_at=make_job().created_at)
    services.job_cancel.return_value = running
    assert api.post(f"/jobs/{running.id}/cancel").status_code == 202
    services.job_cancel.return_value = make_job(app_id=fake_app.id, status=Status.CANCELLED)
    assert api.post(f"/jobs/{running.id}/cancel").status_code == 200
    services.job_cancel.side_effect = JobAlreadyFinished.cancel_refused("succeeded")
    response = api.post(f"/jobs/{running.id}/cancel")
    assert response.status_code == 409
    assert response.json()["status"] == 409
    assert response.json()["job_status"] == "succeeded"


def test_list__bad_filters_are_400(api, selectors):
    response = api.get("/jobs?status=sleeping&limit=0")
    assert response.status_code == 400
    fields = {error["field"] for error in response.json()["errors"]}
    assert fields == {"status", "limit"}
    assert api.get("/jobs?cursor=%%%").status_code == 400


def test_list__next_cursor_when_more(api, selectors, fake_app):
    jobs = [make_job(app_id=fake_app.id) for _ in range(3)]
    selectors.job_list.return_value = jobs
    response = api.get("/jobs?limit=2&metadata.migration=customers")
    body = response.json()
    assert len(body["results"]) == 2
    assert "cursor=" in body["next"]
    kwargs = selectors.job_list.call_args.kwargs
    assert kwargs["filters"].metadata == {"migration": "customers"} and kwargs["limit"] == 3


def test_unknown_path_is_404_problem(api):
    response = api.get("/nothing-here")
    assert response.status_code == 404
    assert response["Content-Type"] == PROBLEM


def test_job_types_lists_builtins_with_schema(api):
    body = api.get("/job-types").json()
    by_name = {t["name"]: t for t in body["results"]}
    assert {"fibonacci", "pi", "countdown"} <= set(by_name)
    schema = by_name["fibonacci"]["params_schema"]
    assert schema["properties"]["n"]["type"] == "integer"
    assert schema["properties"]["n"]["maximum"] == 1_000_000
    assert schema["required"] == ["n"]
    assert by_name["pi"]["description"]
