"""The OpenAPI document at /schema: valid OpenAPI 3.1, every route of the project in it,
every error a problem+json, the create body a union over the registered job types (the
same schemas /job-types shows), and its viewers served without internet."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from openapi_spec_validator import validate
from rest_framework import serializers
from rest_framework.test import APIClient

from jobs import services
from jobs.registry import JobType, registry

PROBLEM = "application/problem+json"

#: Routes the document leaves out, and why: the document itself and its two viewers (HTML
#: pages about the API, not part of it), and the browsable API's log-in and log-out form
#: (an HTML form for people in a browser, posted with a CSRF token and answered with a
#: redirect; a program authenticates with a token and never calls them).
NOT_DOCUMENTED = {"/schema", "/docs", "/redoc", "/api-auth/login/", "/api-auth/logout/"}
#: HTML pages for people in a browser (a session, not a token): the dashboard.
NOT_DOCUMENTED |= {
    "/dashboard",
    "/dashboard/",
    "/dashboard/jobs/",
    "/dashboard/jobs/{job_id}/",
    "/dashboard/schedules/",
    "/dashboard/batches/",
    "/dashboard/batches/{batch_id}/",
}
#: The job page's own log feed (its script's, for the browser's session).
NOT_DOCUMENTED |= {"/dashboard/jobs/{job_id}/logs"}


@pytest.fixture
def document(db) -> dict:
    response = APIClient().get("/schema")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("application/vnd.oai.openapi+json")
    return response.json()


def routes(resolver: URLResolver | None = None, prefix: str = "") -> list[tuple[str, URLPattern]]:
    """Every URL pattern of the project, with its full route, walking the resolver."""
    found: list[tuple[str, URLPattern]] = []
    for entry in (resolver or get_resolver()).url_patterns:
        route = prefix + str(entry.pattern)
        if isinstance(entry, URLResolver):
            found.extend(routes(entry, route))
        else:
            found.append((route, entry))
    return found


def as_openapi_path(route: str) -> str:
    """``jobs/<str:job_id>`` → ``/jobs/{job_id}``."""
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)


def test_the_document_is_valid_openapi_3_1(document):
    assert document["openapi"].startswith("3.1.")
    validate(document)  # raises on any violation of the OpenAPI 3.1 specification


def test_every_route_and_method_of_the_project_is_in_the_document(document):
    documented = document["paths"]
    missing = []
    for route, pattern in routes():
        path = as_openapi_path(route)
        if path in NOT_DOCUMENTED:
            continue
        view = getattr(pattern.callback, "view_class", None)
        methods = [m for m in ("get", "post", "put", "patch", "delete") if view and hasattr(view, m)]
        assert methods, f"{path}: not a class-based view; document it or say why not"
        missing += [f"{method.upper()} {path}" for method in methods if method not in documented.get(path, {})]
    assert missing == []
    # Sanity: the walk sees the nested routes and the exclusions exist.
    paths = {as_openapi_path(route) for route, _ in routes()}
    assert {"/jobs/{job_id}/events", "/job/{job_id}/cancel", "/health"} <= paths
    assert NOT_DOCUMENTED <= paths
    assert not (NOT_DOCUMENTED & set(documented))


def operations(document: dict):
    for path, methods in document["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def test_every_error_answer_is_a_problem_json_body(document):
    for path, method, operation in operations(document):
        for code, response in operation["responses"].items():
            if int(code) >= 400:
                assert response["content"] == {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}, (
                    path,
                    method,
                    code,
                )
    problem = document["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail"}
    assert problem["properties"]["errors"]["items"] == {"$ref": "#/components/schemas/FieldError"}


def test_token_operations_document_401_406_and_503_with_their_headers(document):
    for path, method, operation in operations(document):
        codes = operation["responses"]
        if path in ("/health", "/ready"):
            assert operation["security"] == [{}], path  # no token needed
            continue
        if path == "/":
            # No token needed; one that is sent is checked (and may add links).
            assert {} in operation["security"] and {"tokenAuth": []} in operation["security"]
        # /metrics answers in whichever format Prometheus asks: never 406.
        expected = {"401", "503"} if path == "/metrics" else {"401", "406", "503"}
        assert expected <= set(codes), (path, method)
        assert "WWW-Authenticate" in codes["401"]["headers"]
        assert codes["503"]["headers"]["Retry-After"]["schema"] == {"type": "integer"}


def test_token_and_bearer_are_alternative_security_schemes(document):
    schemes = document["components"]["securitySchemes"]
    assert schemes["tokenAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": schemes["tokenAuth"]["description"],
    }
    assert schemes["bearerAuth"]["type"] == "http" and schemes["bearerAuth"]["scheme"] == "bearer"
    create = document["paths"]["/jobs"]["post"]
    # One requirement per scheme: either is enough (one object with both would mean both at once).
    assert {"tokenAuth": []} in create["security"] and {"bearerAuth": []} in create["security"]


@pytest.mark.parametrize("keyword", ["Token", "Bearer"])
def test_both_documented_token_forms_are_accepted(db, keyword):
    from tests.integration.conftest import new_app

    _, token = new_app()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{keyword} {token}")
    assert client.get("/jobs").status_code == 200


def job_types_shown(db) -> dict[str, dict]:
    from tests.integration.conftest import new_app

    _, token = new_app()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return {t["name"]: t["params_schema"] for t in client.get("/job-types").json()["results"]}


def test_the_create_body_is_a_union_over_the_registered_types_with_their_params(db, document):
    schemas = document["components"]["schemas"]
    union = schemas["JobCreate"]
    assert union["discriminator"]["propertyName"] == "type"
    shown = job_types_shown(db)
    assert set(union["discriminator"]["mapping"]) == set(registry.names()) == set(shown)
    assert len(union["oneOf"]) == len(registry.names())
    for name, target in union["discriminator"]["mapping"].items():
        assert {"$ref": target} in union["oneOf"]
        variant = schemas[target.rsplit("/", 1)[1]]
        assert variant["properties"]["type"] == {"const": name}
        # The very schema /job-types publishes (and the create service validates against).
        assert variant["properties"]["params"] == shown[name] == registry.get(name).params_schema()
        # Only the fields the API accepts, and nothing else.
        assert set(variant["properties"]) == set(services.JOB_FIELDS)
        assert variant["additionalProperties"] is False
        assert variant["required"] == ["type", "params"]
    create = document["paths"]["/jobs"]["post"]
    assert create["requestBody"] == {
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JobCreate"}}},
        "required": True,
    }


def test_a_new_job_type_appears_in_the_document_and_in_job_types_with_no_other_code(db, monkeypatch):
    monkeypatch.setattr(registry, "_types", dict(registry._types))  # restored after the test

    @registry.register
    class Throwaway(JobType):
        """A type registered by this test only."""

        name = "throwaway_for_schema_test"

        class Params(serializers.Serializer):
            rounds = serializers.IntegerField(min_value=3, max_value=7)

    document = APIClient().get("/schema").json()
    variant = document["components"]["schemas"]["JobCreate_throwaway_for_schema_test"]
    assert variant["properties"]["params"]["properties"]["rounds"] == {
        "type": "integer",
        "minimum": 3,
        "maximum": 7,
    }
    assert document["components"]["schemas"]["JobCreate"]["discriminator"]["mapping"][Throwaway.name]
    assert job_types_shown(db)[Throwaway.name] == variant["properties"]["params"]
    validate(document)


def test_the_http_rules_of_the_api_are_in_the_document(document):
    paths = document["paths"]
    create = paths["/jobs"]["post"]
    assert [p["name"] for p in create["parameters"] if p["in"] == "header"] == ["Idempotency-Key"]
    assert {"Location", "Idempotent-Replayed"} <= set(create["responses"]["201"]["headers"])
    assert {"400", "408", "413", "415", "422"} <= set(create["responses"])
    detail = paths["/jobs/{job_id}"]["get"]
    assert [p["name"] for p in detail["parameters"] if p["in"] == "header"] == ["If-None-Match"]
    for code in ("200", "304"):
        assert {"ETag", "Retry-After"} <= set(detail["responses"][code]["headers"])
    assert "content" not in detail["responses"]["304"]
    listing = paths["/jobs"]["get"]
    assert "Link" in listing["responses"]["200"]["headers"]
    query = {p["name"]: p for p in listing["parameters"] if p["in"] == "query"}
    assert set(query) == {
        "status",
        "type",
        "queue",
        "batch",
        "app",
        "created_after",
        "created_before",
        "limit",
        "cursor",
    }
    assert query["status"]["style"] == "form" and query["status"]["explode"] is False
    assert query["batch"]["schema"]["format"] == "uuid"
    assert "metadata.<key>=<value>" in listing["description"] and "403" in listing["responses"]
    cancel = paths["/jobs/{job_id}/cancel"]["post"]
    assert {"200", "202", "404", "409"} <= set(cancel["responses"])


LOCAL_URL = re.compile(r"""(?:src|href|spec-url)=["']([^"']+)["']""")


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_the_docs_pages_use_only_this_servers_own_files(db, page):
    """No CDN: every file the page loads comes from this server, and is served."""
    client = Client()
    response = client.get(page)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    urls = LOCAL_URL.findall(html)
    assert urls, html
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), f"{page} loads {url} from elsewhere"
    assert "://" not in html
    static = [url for url in urls if url.startswith("/static/")]
    assert static  # Swagger UI's / Redoc's own bundle
    for url in urls:
        fetched = client.get(url)
        assert fetched.status_code == 200, url
        body = b"".join(fetched.streaming_content) if fetched.streaming else fetched.content
        assert body, url


def test_swagger_uis_start_up_script_is_local_and_sends_nothing_out(db):
    script = Client().get("/docs?script=")
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    text = script.content.decode()
    assert '"validatorUrl": null' in text  # no badge from validator.swagger.io
    assert "://" not in text


def test_drf_spectacular_builds_the_document_without_a_warning(db, tmp_path):
    """A view whose answers drf-spectacular has to guess (an undeclared serializer, a clash
    of operation ids) makes it warn; --fail-on-warn turns that into an error."""
    from django.core.management import call_command

    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "openapi.yaml"))
    assert (tmp_path / "openapi.yaml").read_text().startswith("openapi: 3.1.0")
