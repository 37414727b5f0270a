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
