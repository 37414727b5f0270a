"""Token scopes on the real database: 403 naming the missing scope, 200 with it, admin reads."""

from __future__ import annotations

import io
import json
import uuid

import psycopg2.errors
import pytest
from django.core.management import CommandError, call_command
from django.db import IntegrityError, transaction
from django.test import Client
from rest_framework.test import APIClient

from jobs import selectors, services
from jobs.domain import App, Scope
from tests.integration.conftest import new_app

PROBLEM = "application/problem+json"


def client_for(app_name: str, *scopes: str) -> tuple[APIClient, App]:
    token, _ = services.token_issue(app_name=app_name, scopes=scopes or None)
    app = selectors.app_for_token(token=token)
    assert app is not None
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client, app


def create(client: APIClient) -> object:
    return client.post(
        "/jobs", data=json.dumps({"type": "fibonacci", "params": {"n": 5}}), content_type="application/json"
    )


@pytest.fixture
def job_id(db) -> tuple[str, str]:
    """A job of a fresh application, with that application's name."""
    name = f"owner-{uuid.uuid4().hex[:8]}"
    owner, _ = client_for(name)
    response = create(owner)
    assert response.status_code == 201
    return response.json()["id"], name


def assert_missing_scope(response, scope: str) -> None:
    assert response.status_code == 403, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["type"] == "urn:jobplatform:problem:insufficient-scope"
    assert body["required_scope"] == scope and scope in body["detail"]
    assert "WWW-Authenticate" not in response  # 403, not an authentication problem


def reads(client: APIClient, job: str) -> dict[str, object]:
    return {
        "GET /jobs": client.get("/jobs"),
        "GET /jobs/{id}": client.get(f"/jobs/{job}"),
        "GET /job/{id}": client.get(f"/job/{job}"),
        "GET /jobs/{id}/events": client.get(f"/jobs/{job}/events"),
        "GET /job-types": client.get("/job-types"),
    }


def test_default_token_has_read_and_write(db):
    client, app = client_for(f"app-{uuid.uuid4().hex[:8]}")
    assert app.scopes == {Scope.READ, Scope.WRITE}
    job = create(client).json()["id"]
    assert all(r.status_code == 200 for r in reads(client, job).values())


def test_read_only_token_reads_and_cannot_create_or_cancel(db):
    name = f"reader-{uuid.uuid4().hex[:8]}"
    writer, _ = client_for(name)
    job = create(writer).json()["id"]
    reader, app = client_for(name, "jobs:read")
    assert app.scopes == {Scope.READ}
    for what, response in reads(reader, job).items():
        assert response.status_code == 200, what
    assert_missing_scope(create(reader), "jobs:write")
    assert_missing_scope(reader.post(f"/jobs/{job}/cancel"), "jobs:write")
    assert_missing_scope(reader.post(f"/job/{job}/cancel"), "jobs:write")
    assert writer.get(f"/jobs/{job}").json()["status"] == "queued"  # the refused cancel changed nothing


def test_write_only_token_creates_and_cancels_and_cannot_read(db):
    writer, _ = client_for(f"writer-{uuid.uuid4().hex[:8]}", "jobs:write")
    created = create(writer)
    assert created.status_code == 201
    job = created.json()["id"]
    for what, response in reads(writer, job).items():
        assert response.status_code == 403, what
        assert_missing_scope(response, "jobs:read")
    assert writer.post(f"/jobs/{job}/cancel").status_code == 200


def test_401_stays_for_missing_unknown_and_revoked_tokens(db):
    client, app = client_for(f"app-{uuid.uuid4().hex[:8]}", "jobs:read")
    services.token_revoke(ref=str(app.token_id))
    anonymous = APIClient()
    unknown = APIClient()
    unknown.credentials(HTTP_AUTHORIZATION="Token jp_not-a-token")
    for who in (client, anonymous, unknown):
        for response in (who.get("/jobs"), create(who)):
            assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"


def test_another_applications_job_is_still_404_for_a_non_admin(job_id):
    job, _ = job_id
    for scopes in ((), ("jobs:read",), ("jobs:read", "jobs:write")):
        other, _ = client_for(f"other-{uuid.uuid4().hex[:8]}", *scopes)
        for path in (f"/jobs/{job}", f"/jobs/{job}/events"):
            assert other.get(path).status_code == 404
        can_write = not scopes or "jobs:write" in scopes
        assert other.post(f"/jobs/{job}/cancel").status_code == (404 if can_write else 403)
        assert job not in [j["id"] for j in other.get("/jobs").json()["results"]]


def test_app_filter_is_403_for_a_non_admin(job_id):
    _, owner_name = job_id
    client, _ = client_for(owner_name)
    assert_missing_scope(client.get("/jobs", {"app": owner_name}), "admin")
    assert_missing_scope(client.get("/jobs", {"app": ""}), "admin")


def test_admin_reads_any_applications_job_and_lists_all_or_one(job_id):
    job, owner_name = job_id
    second, _ = client_for(f"second-{uuid.uuid4().hex[:8]}")
    second_job = create(second).json()["id"]
    admin, app = client_for(f"ops-{uuid.uuid4().hex[:8]}", "jobs:read", "admin")
    assert app.is_admin
    fetched = admin.get(f"/jobs/{job}")
    assert fetched.status_code == 200 and fetched.json()["id"] == job
    assert [e["kind"] for e in admin.get(f"/jobs/{job}/events").json()["events"]][:1] == ["created"]
    everything = [j["id"] for j in admin.get("/jobs", {"limit": 500}).json()["results"]]
    assert job in everything and second_job in everything  # without ?app=: every application's jobs
    only_owner = admin.get("/jobs", {"app": owner_name, "limit": 500}).json()["results"]
    assert [j["id"] for j in only_owner] == [job]
    assert admin.get("/jobs", {"app": "no-such-app"}).json() == {"results": [], "next": None}
    assert admin.get("/jobs", {"app": "x" * 101}).status_code == 400


def test_admin_paging_keeps_the_app_filter(job_id):
    _, owner_name = job_id
    owner, _ = client_for(owner_name)
    assert create(owner).status_code == 201
    admin, _ = client_for(f"ops-{uuid.uuid4().hex[:8]}", "jobs:read", "admin")
    first = admin.get("/jobs", {"app": owner_name, "limit": 1}).json()
    assert f"app={owner_name}" in first["next"]
    second = admin.get(first["next"]).json()
    assert len(second["results"]) == 1 and second["next"] is None


def test_admin_without_write_cannot_create_and_admin_does_not_cancel_others_jobs(job_id):
    job, _ = job_id
    admin, _ = client_for(f"ops-{uuid.uuid4().hex[:8]}", "jobs:read", "admin")
    assert_missing_scope(create(admin), "jobs:write")
    writing_admin, _ = client_for(f"ops-{uuid.uuid4().hex[:8]}", "jobs:read", "jobs:write", "admin")
    assert writing_admin.post(f"/jobs/{job}/cancel").status_code == 404  # admin reads; it does not act for others
    assert writing_admin.get(f"/jobs/{job}").json()["status"] == "queued"


def test_admin_alone_still_needs_jobs_read(job_id):
    job, _ = job_id
    admin, _ = client_for(f"ops-{uuid.uuid4().hex[:8]}", "admin")
    assert_missing_scope(admin.get(f"/jobs/{job}"), "jobs:read")


def test_browsable_api_with_a_read_only_session_renders(db):
    """The browsable API checks POST permission to decide whether to show a form: a 403
    there must hide the form, not break the page."""
    name = f"reader-{uuid.uuid4().hex[:8]}"
    token, _ = services.token_issue(app_name=name, scopes=["jobs:read"])
    browser = Client()
    browser.get("/api-auth/login/")
    assert browser.post("/api-auth/login/", {"token": token, "next": "/jobs"}).status_code == 302
    page = browser.get("/jobs", HTTP_ACCEPT="text/html")
    assert page.status_code == 200 and b"<h1>Jobs</h1>" in page.content
    refused = browser.post(
        "/jobs",
        data=json.dumps({"type": "fibonacci", "params": {"n": 1}}),
        content_type="application/json",
        HTTP_X_CSRFTOKEN=browser.cookies["csrftoken"].value,
    )
    assert_missing_scope(refused, "jobs:write")


# -- the commands and the column ------------------------------------------------------------
def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_issue_token_scope_options_and_list_tokens_shows_them(db):
    name = f"ops-{uuid.uuid4().hex[:8]}"
    token = run("issue_token", name, "--scope", "jobs:read", "--scope", "admin", "--quiet").strip()
    app = selectors.app_for_token(token=token)
    assert app is not None and app.scopes == {Scope.READ, Scope.ADMIN}
    default_token = run("issue_token", f"{name}-2", "--quiet").strip()
    assert selectors.app_for_token(token=default_token).scopes == {Scope.READ, Scope.WRITE}
    listing = {line.split()[2]: line for line in run("list_tokens").splitlines()[1:]}
    assert listing[name].rstrip().endswith("admin jobs:read")
    assert listing[f"{name}-2"].rstrip().endswith("jobs:read jobs:write")
    assert "SCOPES" in run("list_tokens").splitlines()[0]
    assert "scopes admin jobs:read" in run("issue_token", f"{name}-3", "--scope", "admin", "--scope", "jobs:read")


def test_issue_token_refuses_an_unknown_scope(db):
    with pytest.raises(CommandError, match="invalid choice"):
        run("issue_token", "x", "--scope", "jobs:delete")


def test_token_issue_service_refuses_unknown_or_no_scopes(db):
    from jobs.exceptions import InvalidInput

    with pytest.raises(InvalidInput) as unknown:
        services.token_issue(app_name="x", scopes=["jobs:read", "root"])
    assert "'root'" in unknown.value.errors["scopes"][0]
    with pytest.raises(InvalidInput) as empty:
        services.token_issue(app_name="x", scopes=[])
    assert "at least one" in empty.value.errors["scopes"][0]


@pytest.mark.parametrize("scopes", ["{root}", "{}", "{jobs:read,NULL}"])
def test_the_database_refuses_unknown_scopes(raw, scopes):
    app, _ = new_app()
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        raw.execute(
            "INSERT INTO jobs_token (app_id, token_hash, prefix, scopes) VALUES (%s, %s, 'x', %s::text[])",
            [app.id, uuid.uuid4().hex, scopes],
        )
    assert isinstance(caught.value.__cause__, psycopg2.errors.CheckViolation)


def test_existing_tokens_get_the_default_scopes(raw):
    app, _ = new_app()
    raw.execute(
        "INSERT INTO jobs_token (app_id, token_hash, prefix) VALUES (%s, %s, 'x') RETURNING scopes",
        [app.id, uuid.uuid4().hex],
    )
    assert sorted(raw.fetchone()[0]) == ["jobs:read", "jobs:write"]
