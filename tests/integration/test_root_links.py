"""``GET /``: links to every entry point the caller may use, as the OpenAPI document says."""

from __future__ import annotations

import uuid

import jsonschema
import pytest
from django.test import Client

from jobs import services
from jobs.api.schema import COMPONENTS, ROOT_LINKS

#: An address outside JOBS_METRICS_ALLOW (the test client's own, 127.0.0.1, is inside).
OUTSIDE = "203.0.113.5"


def root(*, address: str = OUTSIDE, token: str | None = None, client: Client | None = None) -> dict[str, str]:
    headers = {"HTTP_AUTHORIZATION": f"Token {token}"} if token else {}
    response = (client or Client(REMOTE_ADDR=address)).get("/", REMOTE_ADDR=address, **headers)
    assert response.status_code == 200, response.content
    body = response.json()
    jsonschema.validate(body, {**COMPONENTS["Root"], "components": {"schemas": COMPONENTS}})
    return body


def token(*scopes: str) -> str:
    issued, _ = services.token_issue(app_name=f"root-{uuid.uuid4().hex[:8]}", scopes=list(scopes) or None)
    return issued


@pytest.mark.django_db
def test_anyone_gets_the_resources_the_document_and_its_viewers():
    links = root()
    assert list(links) == list(ROOT_LINKS)
    paths = {name: url.removeprefix("http://testserver") for name, url in links.items()}
    assert paths == {
        "jobs": "/jobs",
        "batches": "/batches",
        "schedules": "/schedules",
        "job_types": "/job-types",
        "health": "/health",
        "ready": "/ready",
        "login": "/api-auth/login/",
        "schema": "/schema",
        "docs": "/docs",
        "redoc": "/redoc",
    }
    public = Client(REMOTE_ADDR=OUTSIDE)
    for name in ("health", "login", "schema", "docs", "redoc"):
        assert public.get(paths[name]).status_code == 200, name
    for name in ("jobs", "batches", "schedules"):
        assert public.get(paths[name]).status_code == 401, name  # a link to what a token opens


@pytest.mark.django_db
def test_a_token_without_admin_sees_no_metrics_or_dashboard_link():
    assert list(root(token=token())) == list(ROOT_LINKS)
    assert list(root(token=token("jobs:read"))) == list(ROOT_LINKS)


@pytest.mark.django_db
def test_an_admin_token_also_gets_metrics_and_the_dashboard():
    links = root(token=token("jobs:read", "admin"))
    assert links["metrics"] == "http://testserver/metrics" and links["dashboard"] == "http://testserver/dashboard/"
    admin = token("jobs:read", "admin")
    assert Client(REMOTE_ADDR=OUTSIDE).get("/metrics", HTTP_AUTHORIZATION=f"Token {admin}").status_code == 200


@pytest.mark.django_db
def test_an_address_allowed_to_scrape_gets_the_metrics_link_only(settings):
    settings.JOBS_METRICS_ALLOW = [f"{OUTSIDE}/32"]
    links = root()
    assert links["metrics"] == "http://testserver/metrics" and "dashboard" not in links
    assert Client(REMOTE_ADDR=OUTSIDE).get("/metrics").status_code == 200
    # Through a proxy the peer address proves nothing: no link, as /metrics itself refuses.
    proxied = Client(REMOTE_ADDR=OUTSIDE).get("/", HTTP_X_FORWARDED_FOR="198.51.100.7").json()
    assert "metrics" not in proxied


@pytest.mark.django_db
def test_a_browser_logged_in_with_an_admin_token_gets_the_dashboard_link():
    browser = Client(enforce_csrf_checks=True, REMOTE_ADDR=OUTSIDE)
    browser.get("/api-auth/login/")
    csrf = browser.cookies["csrftoken"].value
    admin = token("jobs:read", "admin")
    assert browser.post("/api-auth/login/", {"token": admin, "csrfmiddlewaretoken": csrf}).status_code == 302
    links = root(client=browser)
    assert links["dashboard"] == "http://testserver/dashboard/"
    assert browser.get("/dashboard/").status_code == 200


@pytest.mark.django_db
def test_a_token_that_is_sent_must_be_valid():
    response = Client(REMOTE_ADDR=OUTSIDE).get("/", HTTP_AUTHORIZATION="Token not-a-token")
    assert response.status_code == 401 and response["WWW-Authenticate"] == "Token"
    assert response.json()["detail"].startswith("The token is unknown or revoked")
