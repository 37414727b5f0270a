"""Errors that say how to fix them: the text a client reads, through the real API."""

from __future__ import annotations

import json
import uuid

import pytest
from rest_framework.test import APIClient

from jobs import services
from jobs.conf import settings
from jobs.exceptions import UnknownJobType, listing
from jobs.registry import registry

PROBLEM = "application/problem+json"
HEADER = "`Authorization: Token <token>` (or `Authorization: Bearer <token>`)"


def post_job(api, body):
    return api.post("/jobs", data=json.dumps(body), content_type="application/json")


def field_error(response, field: str) -> str:
    assert response.status_code == 400 and response["Content-Type"] == PROBLEM, response.content
    return next(error["detail"] for error in response.json()["errors"] if error["field"] == field)


def test_an_unknown_type_lists_the_installed_types_and_points_at_job_types(api):
    installed = listing(registry.names())  # the names that fit, "and N more" for the rest
    assert field_error(post_job(api, {"type": "sleep"}), "type") == (
        f"Unknown job type 'sleep'; installed types: {installed} (see GET /job-types)."
    )
    assert field_error(post_job(api, {"params": {}}), "type") == (
        f"A job type is required; installed types: {installed} (see GET /job-types)."
    )


def test_hundreds_of_installed_types_are_named_in_a_bounded_message():
    names = [f"type-number-{i:03d}" for i in range(300)]
    [message] = UnknownJobType.named("x" * 500, names).errors["type"]
    assert len(message) <= settings.ERROR_ECHO_MAX
    assert message.startswith(f"Unknown job type '{'x' * 39}…'; installed types: type-number-000, type-number-001")
    shown = message.count("type-number-")
    assert message.endswith(f" and {300 - shown} more (see GET /job-types).") and 3 <= shown < 300


def test_an_unknown_parameter_names_the_parameters_the_type_accepts(api):
    response = post_job(api, {"type": "fibonacci", "params": {"n": 5, "digits": 3}})
    assert field_error(response, "params.digits") == "Unknown parameter; fibonacci accepts: n."
    response = post_job(api, {"type": "countdown", "params": {"secs": 5}})
    assert field_error(response, "params.secs") == "Unknown parameter; countdown accepts: seconds."


def test_every_fault_of_the_params_is_named_at_once_and_each_field_once(api):
    def faults(params):
        response = post_job(api, {"type": "fibonacci", "params": params})
        assert response.status_code == 400 and response["Content-Type"] == PROBLEM, response.content
        return {error["field"]: error["detail"] for error in response.json()["errors"]}

    unknown = "Unknown parameter; fibonacci accepts: n."
    # n's range is checked beside the unknown m: one answer, not one per fix.
    assert faults({"n": -1, "m": 2}) == {
        "params.m": unknown,
        "params.n": "Ensure this value is greater than or equal to 0.",
    }
    assert faults({"m": 2}) == {"params.m": unknown, "params.n": "This field is required."}
    # A JSON-type error is named once, for its type, beside the other faults.
    assert faults({"n": "5", "m": 2}) == {"params.m": unknown, "params.n": "Must be an integer."}
    response = post_job(api, {"type": "countdown", "params": {"seconds": 0, "secs": 5}})
    assert field_error(response, "params.seconds") == "Ensure this value is greater than or equal to 1."
    assert field_error(response, "params.secs") == "Unknown parameter; countdown accepts: seconds."


@pytest.mark.parametrize(
    ("authorization", "detail"),
    [
        (None, f"No token was sent: send the header {HEADER}."),
        ("{token}", f"The Authorization header does not start with `Token ` or `Bearer `: send {HEADER}."),
        ("Basic dXNlcjpwYXNz", f"The Authorization header does not start with `Token ` or `Bearer `: send {HEADER}."),
        (
            "Token not-a-token",
            f"The token is unknown or revoked: send a valid one as {HEADER}; `manage.py issue_token` issues one.",
        ),
        ("Token", f"The Authorization header must hold exactly one token after its keyword: send {HEADER}."),
        ("Bearer a b", f"The Authorization header must hold exactly one token after its keyword: send {HEADER}."),
    ],
    ids=["missing", "no-keyword", "other-scheme", "unknown", "keyword-only", "two-tokens"],
)
def test_each_401_says_what_was_wrong_and_which_header_to_send(app_and_token, authorization, detail):
    client = APIClient()
    if authorization is not None:
        client.credentials(HTTP_AUTHORIZATION=authorization.format(token=app_and_token[1]))
    for path in ("/jobs", "/job-types", f"/jobs/{uuid.uuid4()}/events"):
        response = client.get(path)
        assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"
        assert response["Content-Type"] == PROBLEM and response.json()["detail"] == detail


def test_a_revoked_token_is_told_apart_from_a_missing_one(app_and_token):
    _, token = app_and_token
    services.token_revoke(ref=token[:10])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = client.get("/jobs")
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"
    assert response.json()["detail"].startswith("The token is unknown or revoked: send a valid one as ")


@pytest.mark.parametrize(
    ("content_type", "detail"),
    [
        (
            "",
            "The request has no Content-Type: send the body as JSON with the header `Content-Type: application/json`.",
        ),
        (
            "application/x-www-form-urlencoded",
            "Unsupported media type 'application/x-www-form-urlencoded': "
            "send the body as JSON with the header `Content-Type: application/json`.",
        ),
        (
            "text/" + "x" * 300,
            f"Unsupported media type '{('text/' + 'x' * 300)[:59]}…': "
            "send the body as JSON with the header `Content-Type: application/json`.",
        ),
    ],
    ids=["none", "form", "long"],
)
def test_a_body_not_sent_as_json_is_415_saying_to_send_application_json(api, content_type, detail):
    body = '{"type": "fibonacci", "params": {"n": 5}}'
    # "": what the server passes on when the request has no Content-Type header.
    response = api.generic("POST", "/jobs", data=body, content_type=content_type)
    assert response.status_code == 415 and response["Content-Type"] == PROBLEM
    assert response.json()["detail"] == detail


def test_cancelling_a_finished_job_says_it_finished_and_what_can_be_cancelled(api, app):
    job = post_job(api, {"type": "fibonacci", "params": {"n": 5}}).json()
    running = services.job_claim(job_id=uuid.UUID(job["id"]), worker="test:1")
    assert running is not None
    services.job_succeed(job=running, result={"value": "5"})
    response = api.post(f"/jobs/{job['id']}/cancel")
    assert response.status_code == 409 and response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["detail"] == (
        "The job has already finished (succeeded); only queued, scheduled or running jobs can be cancelled."
    )
    assert body["job_status"] == "succeeded"


def test_every_endpoint_that_needs_a_token_says_which_header_to_send():
    """Every route of the API whose view needs a token answers the fixed 401 texts (its
    view is an AuthenticatedApi), so a new endpoint cannot fall back to DRF's own."""
    from rest_framework.permissions import IsAuthenticated

    from jobs.api.base import AuthenticatedApi
    from jobs.api.urls import urlpatterns

    needing = {
        str(route.pattern): route.callback.view_class
        for route in urlpatterns
        if IsAuthenticated in getattr(route.callback.view_class, "permission_classes", [])
    }
    assert len(needing) >= 10, needing
    assert [path for path, view in needing.items() if not issubclass(view, AuthenticatedApi)] == []


@pytest.mark.parametrize("method", ["get", "post"])
def test_a_trailing_slash_is_told_the_path_without_it(api, method):
    job_id = uuid.uuid4()
    for path, bare in (("/jobs/", "/jobs"), (f"/jobs/{job_id}/", f"/jobs/{job_id}"), ("/job-types//", "/job-types")):
        response = getattr(api, method)(path)
        assert response.status_code == 404 and response["Content-Type"] == PROBLEM
        body = response.json()
        assert body["detail"] == f"Not found: the API's paths take no trailing slash; use {bare} instead."
        assert body["instance"] == path
    # A path that does not exist without the slash either is a plain 404.
    assert getattr(api, method)("/nothing-here/").json()["detail"] == "Not found."
    assert getattr(api, method)("/nothing-here").json()["detail"] == "Not found."


def test_delete_says_what_to_do_instead_and_keeps_the_allow_header(api):
    job = post_job(api, {"type": "fibonacci", "params": {"n": 5}}).json()
    batch = api.post(
        "/batches",
        data=json.dumps({"jobs": [{"type": "fibonacci", "params": {"n": 5}}]}),
        content_type="application/json",
    ).json()
    schedule = api.post(
        "/schedules",
        data=json.dumps({"job": {"type": "fibonacci", "params": {"n": 5}}, "every": 60, "catch_up": "skip"}),
        content_type="application/json",
    ).json()
    stop = "Jobs are never deleted: to stop this one, cancel it with POST"
    expected = {
        f"/jobs/{job['id']}": f"{stop} /jobs/{job['id']}/cancel.",
        f"/job/{job['id']}": f"{stop} /job/{job['id']}/cancel.",
        f"/batches/{batch['id']}": "Batches are never deleted: to stop this one's jobs, cancel it with "
        f"POST /batches/{batch['id']}/cancel.",
        f"/schedules/{schedule['id']}": f"A schedule is never deleted: end it with PATCH /schedules/{schedule['id']} "
        'and the body {"state": "ended"}.',
    }
    for path, detail in expected.items():
        response = api.delete(path)
        assert response.status_code == 405 and response["Content-Type"] == PROBLEM, response.content
        assert response.json()["detail"] == detail
        assert "GET" in response["Allow"] and "DELETE" not in response["Allow"]
    # Other methods a resource does not take: DRF's words, and the methods it takes.
    assert api.put(f"/jobs/{job['id']}").json()["detail"] == 'Method "PUT" not allowed; this URL takes GET.'
    assert api.get(f"/jobs/{job['id']}/cancel").json()["detail"] == 'Method "GET" not allowed; this URL takes POST.'
    answer = api.put(f"/schedules/{schedule['id']}")
    assert (
        answer.status_code == 405 and answer.json()["detail"] == 'Method "PUT" not allowed; this URL takes GET, PATCH.'
    )


def test_an_accept_the_api_cannot_serve_says_what_it_can(api):
    response = api.get("/jobs", HTTP_ACCEPT="application/xml")
    assert response.status_code == 406 and response["Content-Type"] == PROBLEM
    assert response.json()["detail"] == (
        "The API answers in JSON (application/json; errors in application/problem+json): "
        "send Accept: application/json, or leave Accept out."
    )


def test_the_api_documentation_pages_answer_errors_as_problems_and_serve_any_accept(api):
    """/docs and /redoc are pages for browsers: any Accept gets the page; a method they do
    not take is a problem+json body (their HTML renderer wrote it as plain text)."""
    for path in ("/docs", "/redoc"):
        page = api.get(path, HTTP_ACCEPT="application/xml")
        assert page.status_code == 200 and page["Content-Type"].startswith("text/html"), path
        refused = api.post(path)
        assert refused.status_code == 405 and refused["Content-Type"] == PROBLEM, path
        assert json.loads(refused.content)["detail"] == 'Method "POST" not allowed; this URL takes GET.'


def test_catch_up_of_the_wrong_kind_is_not_called_missing(api):
    body = {"job": {"type": "fibonacci", "params": {"n": 5}}, "every": 60}
    missing = api.post("/schedules", data=json.dumps(body), content_type="application/json")
    assert field_error(missing, "catch_up").startswith("Required: what fire times missed")
    wrong = api.post("/schedules", data=json.dumps({**body, "catch_up": True}), content_type="application/json")
    assert field_error(wrong, "catch_up").startswith("Must be 'once' or 'skip': what fire times missed")


def test_an_unknown_field_of_a_body_names_the_fields_it_accepts(api):
    job_fields = "type, queue, params, metadata, max_attempts, timeout, run_at, callback_url"
    response = post_job(api, {"type": "fibonacci", "params": {"n": 5}, "colour": "red", "prio": 1})
    assert field_error(response, "colour") == f"Unknown field; a job accepts: {job_fields}."
    assert field_error(response, "prio") == f"Unknown field; a job accepts: {job_fields}."

    def post(path, body):
        return api.post(path, data=json.dumps(body), content_type="application/json")

    response = post("/batches", {"jobs": [{"type": "fibonacci", "params": {"n": 5}, "colour": 1}], "size": 1})
    assert field_error(response, "size") == "Unknown field; a batch accepts: jobs, metadata, callback_url."
    assert field_error(response, "jobs[0].colour") == f"Unknown field; a job accepts: {job_fields}."
    response = post("/schedules", {"job": {"type": "fibonacci", "params": {"n": 5}, "colour": 1}, "every": 60, "x": 1})
    assert field_error(response, "x") == (
        "Unknown field; a schedule accepts: name, job, cron, timezone, every, catch_up, metadata, starts_at, ends_at."
    )
    assert field_error(response, "job.colour") == (
        "Unknown field; a schedule's job accepts: type, queue, params, metadata, max_attempts, timeout, callback_url."
    )
    job = post_job(api, {"type": "fibonacci", "params": {"n": 5}}).json()
    running = services.job_claim(job_id=uuid.UUID(job["id"]), worker="test:1")
    assert running is not None
    services.job_succeed(job=running, result={"value": "5"})
    response = post(f"/jobs/{job['id']}/rerun", {"type": "pi"})
    assert field_error(response, "type") == (
        "Unknown field; a re-run accepts: params, metadata, max_attempts, timeout, queue, callback_url, resume."
    )
