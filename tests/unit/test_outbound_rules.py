"""The rules for what the platform itself calls and reads, without a network: allowed
hosts with or without a port (callbacks and migration targets share one rule), and which
applications may use each migration source (JOBS_SOURCE_APPS)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from jobs.conf import host_list, source_apps
from jobs.exceptions import InvalidInput
from jobs.jobtypes import migrate_rows as mr
from jobs.registry import registry
from jobs.services.callbacks import http_url_problem, url_problem


def problem(url: str, allowed: list[str]) -> str | None:
    return http_url_problem(url, allowed=allowed, setting="X_HOSTS", subject="Calls", why_no_credentials="no")


# -- hosts, and hosts with a port ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://127.0.0.1:9000/hook", ["127.0.0.1:9000"]),
        ("http://LOCALHOST:9000/", ["localhost:9000"]),
        ("http://hooks.example.com/x", ["hooks.example.com:80"]),  # the scheme's default port
        ("https://hooks.example.com/x", ["hooks.example.com:443"]),
        ("http://[::1]:9000/x", ["[::1]:9000"]),
        ("http://hooks.example.com:8443/x", ["hooks.example.com"]),  # a bare host: any port
        ("http://[::1]:1/x", ["::1"]),
        ("http://[::1]:1/x", ["[::1]"]),
    ],
)
def test_an_allowed_host_and_port(url, allowed):
    assert problem(url, allowed) is None


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("http://127.0.0.1:9001/hook", ["127.0.0.1:9000"]),
        ("http://127.0.0.1/hook", ["127.0.0.1:9000"]),  # port 80
        ("https://hooks.example.com/x", ["hooks.example.com:80"]),
        ("http://127.0.0.1:5432/", ["127.0.0.1:9000", "localhost:9000"]),  # the database next door
        ("http://[::1]:9001/x", ["[::1]:9000"]),
        ("http://127.0.0.2:9000/", ["127.0.0.1:9000"]),
    ],
)
def test_a_port_that_is_not_listed_is_refused(url, allowed):
    assert problem(url, allowed) == f"Calls may only go to the hosts X_HOSTS lists ({', '.join(allowed)})."


def test_callbacks_use_the_same_rule_with_ports(settings):
    settings.JOBS_CALLBACK_ALLOWED_HOSTS = ["127.0.0.1:9000"]
    assert url_problem("http://127.0.0.1:9000/hook") is None
    assert "JOBS_CALLBACK_ALLOWED_HOSTS lists (127.0.0.1:9000)" in url_problem("http://127.0.0.1:6379/")


def test_host_lists_take_ports_and_refuse_what_is_not_a_host():
    assert host_list(" CRM.internal:8080, ,api.example.com, [::1]:9000 ,::1") == [
        "crm.internal:8080",
        "api.example.com",
        "[::1]:9000",
        "::1",
    ]
    for raw in ("h:0", "h:65536", "h:x", "h:", ":80", "[::1", "a b", "http://h/"):
        with pytest.raises(ImproperlyConfigured, match="JOBS_MIGRATION_TARGET_HOSTS"):
            host_list(raw, variable="JOBS_MIGRATION_TARGET_HOSTS")


# -- which applications may use a source ---------------------------------------------------------
SOURCES = {"legacy": "postgres://r:pw@db/legacy", "billing": "postgres://r:pw@db/billing"}


def test_source_apps_name_the_applications_of_each_source():
    assert source_apps("legacy=etl,reports billing=*", sources=SOURCES) == {
        "legacy": ("etl", "reports"),
        "billing": ("*",),
    }
    assert source_apps("", sources={}) == source_apps(None, sources={}) == {}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("legacy=etl", "source 'billing' of JOBS_SOURCES names no application: give billing=app1,app2"),
        ("legacy=etl billing", "entry 2 must be source=app1,app2"),
        ("legacy=etl billing= ", "entry 2 must be source=app1,app2"),
        ("legacy=etl billing=a,,b", "source 'billing' lists an empty application name"),
        ("legacy=etl billing=*,etl", "source 'billing': * stands alone"),
        ("legacy=etl legacy=x billing=*", "source 'legacy' is named twice"),
        ("legacy=etl billing=* crm=etl", "source 'crm' is not in JOBS_SOURCES"),
    ],
)
def test_a_mistake_in_the_source_apps_is_refused_at_start_up(raw, message):
    with pytest.raises(ImproperlyConfigured) as info:
        source_apps(raw, sources=SOURCES)
    assert message in str(info.value) and "pw" not in str(info.value)


@pytest.fixture
def configured(settings):
    settings.JOBS_SOURCES = SOURCES
    settings.JOBS_SOURCE_APPS = {"legacy": ("etl", "reports"), "billing": ("*",)}
    settings.JOBS_MIGRATION_TARGET_HOSTS = ["crm.internal"]


PARAMS = {
    "source": "legacy",
    "table": "customers",
    "key": "id",
    "mapping": {"id": "id"},
    "target_url": "http://crm.internal/import",
}


def source_errors(app_name: str | None, source: str) -> list[str] | None:
    try:
        registry.get("migrate_rows").validate_params({**PARAMS, "source": source}, app=app(app_name))
    except InvalidInput as exc:
        return exc.errors.get("params.source")
    return None


def app(name: str | None):
    import uuid

    from jobs.domain import App

    return None if name is None else App(id=uuid.uuid4(), name=name, token_id=uuid.uuid4())


def test_each_application_sees_only_the_sources_open_to_it(configured, settings):
    assert mr.sources_for("etl") == ["billing", "legacy"]
    assert mr.sources_for("someone") == ["billing"]
    assert source_errors("etl", "legacy") is None and source_errors("reports", "billing") is None
    assert source_errors("someone", "legacy") == [
        "Unknown source; the sources this application may use are: billing (JOBS_SOURCES)."
    ]
    settings.JOBS_SOURCE_APPS = {"legacy": ("etl",), "billing": ("etl",)}
    assert source_errors("someone", "legacy") == [
        "No source is open to this application: the operator names sources in JOBS_SOURCES and the "
        "applications that may use each in JOBS_SOURCE_APPS."
    ]
    # A source JOBS_SOURCE_APPS does not name is open to no application.
    settings.JOBS_SOURCE_APPS = {}
    assert source_errors("etl", "legacy")[0].startswith("No source is open to this application")


def test_without_an_application_only_the_sources_existence_is_checked(configured):
    """The worker re-checks a job's params without its application (the type's run checks
    that); the message names no source."""
    assert source_errors(None, "legacy") is None
    assert source_errors(None, "crm") == ["Unknown source: no source of that name is configured (JOBS_SOURCES)."]


# -- what a failed request is recorded as ------------------------------------------------------------
def test_a_failure_is_described_without_repeating_what_the_receiver_sent():
    import http.client
    import urllib.error

    from jobs.runtime.outbound import failure

    garbled = http.client.BadStatusLine("HTTP/1.1 200 internal page: db password hunter2")
    assert failure(garbled) == "BadStatusLine: the answer is not valid HTTP"
    assert failure(http.client.LineTooLong("header line")) == "LineTooLong: the answer is not valid HTTP"
    refused = urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))
    assert failure(refused) == "ConnectionRefusedError: [Errno 111] Connection refused"
    closed = http.client.RemoteDisconnected("Remote end closed connection without response")
    assert failure(closed) == "RemoteDisconnected: Remote end closed connection without response"
    assert failure(TimeoutError("no complete answer within 5 s")) == "TimeoutError: no complete answer within 5 s"
