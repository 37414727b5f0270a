"""/metrics: the exposition parsed with prometheus-client's own parser, checked against
the database; who may read it; the HTTP figures; the indexes the scrape queries use."""

from __future__ import annotations

import uuid
from collections import defaultdict

import pytest
from django.db import connection
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families
from rest_framework import serializers

from jobs import db, services
from jobs.metrics import RUN_SECONDS_BUCKETS, WAIT_SECONDS_BUCKETS
from jobs.registry import JobType, PermanentError, registry
from jobs.runtime.worker import execute_job
from tests.integration.conftest import new_app

pytestmark = pytest.mark.django_db(transaction=True)

PROBLEM = "application/problem+json"


def scrape(client: Client | None = None, **extra) -> dict[str, dict[tuple, float]]:
    """``{sample name: {sorted label items: value}}`` from GET /metrics."""
    response = (client or Client()).get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    samples: dict[str, dict[tuple, float]] = defaultdict(dict)
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def sql(query: str, params=None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall() if cursor.description else []


@pytest.fixture
def probe_type():
    """A job type only this test uses, so its figures are known exactly."""

    class Probe(JobType):
        name = f"metrics_probe_{uuid.uuid4().hex[:8]}"

        class Params(serializers.Serializer):
            mode = serializers.ChoiceField(choices=["ok", "permanent", "retry"])

        def run(self, ctx, params):
            if params["mode"] == "permanent":
                raise PermanentError("hopeless")
            if params["mode"] == "retry":
                raise ValueError("try again")
            return {"ok": True}

    registry.register(Probe)
    yield Probe.name
    registry._types.pop(Probe.name, None)


def test_the_job_figures_are_the_databases(probe_type):
    app, _ = new_app()

    def create(mode: str):
        job, _ = services.job_create(app=app, type=probe_type, params={"mode": mode})
        return job

    ok, permanent, retry, cancelled, rescued, waiting = (
        create(mode) for mode in ("ok", "permanent", "retry", "ok", "ok", "ok")
    )
    for job in (ok, permanent, retry):
        execute_job(str(job.id))
    services.job_cancel(app=app, job_id=cancelled.id)
    assert services.job_claim(job_id=rescued.id, worker="gone:1") is not None
    sql("UPDATE jobs_job SET lease_expires_at = now() - interval '1 second' WHERE id = %s", [rescued.id])
    services.jobs_rescue_expired(limit=1000)

    samples = scrape()
    t = ("type", probe_type)

    # Known exactly for the probe type.
    jobs = {dict(labels)["status"]: v for labels, v in samples["jobplatform_jobs"].items() if t in labels}
    assert jobs == {"scheduled": 1, "queued": 2, "running": 0, "succeeded": 1, "failed": 1, "cancelled": 1}
    assert samples["jobplatform_jobs_created_total"][(t,)] == 6
    assert samples["jobplatform_jobs_started_total"][(t,)] == 4  # ok, permanent, retry, rescued
    finished = {dict(k)["status"]: v for k, v in samples["jobplatform_jobs_finished_total"].items() if t in k}
    assert finished == {"succeeded": 1, "failed": 1, "cancelled": 1}
    assert samples["jobplatform_jobs_retried_total"][(t,)] == 1
    assert samples["jobplatform_jobs_rescued_total"][(t,)] == 1
    assert waiting.id  # never started: in "queued" above, and in no histogram below

    # Every type, against the history: each counter is the count of its events.
    events = defaultdict(int)
    for kind, job_type, n in sql(
        "SELECT e.kind, j.type, count(*) FROM jobs_event e JOIN jobs_job j ON j.id = e.job_id GROUP BY 1, 2"
    ):
        events[(kind, job_type)] = n
    types = {job_type for _, job_type in events}
    for job_type in types:
        label = (("type", job_type),)
        assert samples["jobplatform_jobs_created_total"][label] == events[("created", job_type)], job_type
        assert samples["jobplatform_jobs_started_total"][label] == events[("started", job_type)], job_type
        assert samples["jobplatform_jobs_retried_total"][label] == events[("retried", job_type)], job_type
        assert samples["jobplatform_jobs_rescued_total"][label] == events[("rescued", job_type)], job_type
    for job_type, status, n in sql("SELECT type, status, count(*) FROM jobs_job GROUP BY 1, 2"):
        assert samples["jobplatform_jobs"][(("status", status), ("type", job_type))] == n

    # The histograms: cumulative bucket counts, recomputed here from the rows.
    rows = sql(
        "SELECT status, created_at, started_at, finished_at FROM jobs_job WHERE type = %s AND started_at IS NOT NULL",
        [probe_type],
    )
    runs = [(f - s).total_seconds() for status, _, s, f in rows if status in ("succeeded", "failed", "cancelled")]
    waits = [(s - c).total_seconds() for _, c, s, _ in rows]
    assert len(runs) == 2 and len(waits) == 4
    for name, values, bounds in (
        ("jobplatform_job_run_seconds", runs, RUN_SECONDS_BUCKETS),
        ("jobplatform_job_queue_wait_seconds", waits, WAIT_SECONDS_BUCKETS),
    ):
        buckets = {dict(k)["le"]: v for k, v in samples[f"{name}_bucket"].items() if t in k}
        expected = {repr(float(b)): sum(1 for v in values if v <= b) for b in bounds} | {"+Inf": len(values)}
        assert buckets == expected, name
        assert samples[f"{name}_count"][(t,)] == len(values)
        assert samples[f"{name}_sum"][(t,)] == pytest.approx(sum(values), abs=1e-5)

    # The oldest queued job of the default queue has waited at least as long as "waiting".
    (waited,) = sql(
        "SELECT extract(epoch FROM clock_timestamp() - created_at) FROM jobs_job WHERE id = %s", [waiting.id]
    )[0]
    assert samples["jobplatform_oldest_queued_job_age_seconds"][(("queue", "default"),)] >= float(waited) - 1


def test_counters_only_grow_as_jobs_finish(probe_type):
    app, _ = new_app()
    t = (("type", probe_type),)
    before = scrape()
    assert before["jobplatform_jobs_created_total"][t] == 0  # a registered type is listed before its first job
    job, _ = services.job_create(app=app, type=probe_type, params={"mode": "ok"})
    execute_job(str(job.id))
    after = scrape()
    assert after["jobplatform_jobs_created_total"][t] == 1
    assert after["jobplatform_jobs_finished_total"][(("status", "succeeded"), t[0])] == 1
    assert after["jobplatform_job_run_seconds_count"][t] == 1
    for name in ("jobplatform_jobs_created_total", "jobplatform_jobs_started_total", "jobplatform_jobs_finished_total"):
        for labels, value in before[name].items():
            assert after[name][labels] >= value, (name, labels)


# -- who may read it -----------------------------------------------------------------------------
def test_a_local_address_reads_it_without_a_token():
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="::1").get("/metrics").status_code == 200


def test_another_address_without_a_token_gets_401_problem_json():
    response = Client(REMOTE_ADDR="203.0.113.5").get("/metrics", HTTP_ACCEPT="text/plain")
    assert response.status_code == 401
    assert response["Content-Type"] == PROBLEM and response["WWW-Authenticate"] == "Token"
    assert response.json()["status"] == 401


def test_a_proxied_request_from_a_local_address_is_not_trusted():
    """Behind a proxy on the same machine every request comes from 127.0.0.1: the
    forwarding header gives it away, and the address alone does not admit it."""
    for header in ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP"):
        response = Client(REMOTE_ADDR="127.0.0.1").get("/metrics", **{header: "198.51.100.7"})
        assert response.status_code == 401, header


def test_a_token_without_the_admin_scope_gets_403():
    _, token = new_app()
    response = Client(REMOTE_ADDR="203.0.113.5").get("/metrics", HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 403 and response["Content-Type"] == PROBLEM


def test_a_bad_token_is_refused_even_from_an_allowed_address():
    response = Client(REMOTE_ADDR="127.0.0.1").get("/metrics", HTTP_AUTHORIZATION="Token not-a-token")
    assert response.status_code == 401


def test_an_admin_token_reads_it_from_anywhere():
    from jobs import services

    token, _ = services.token_issue(app_name=f"ops-{uuid.uuid4().hex[:8]}", scopes=["jobs:read", "admin"])
    response = Client(REMOTE_ADDR="203.0.113.5").get("/metrics", HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 200
    assert b"jobplatform_jobs_created_total" in response.content
    _, plain = new_app()
    refused = Client(REMOTE_ADDR="203.0.113.5").get("/metrics", HTTP_AUTHORIZATION=f"Token {plain}")
    assert refused.status_code == 403


def test_jobs_metrics_allow_names_the_addresses(settings):
    settings.JOBS_METRICS_ALLOW = ["203.0.113.0/24"]
    assert Client(REMOTE_ADDR="203.0.113.5").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 401
    settings.JOBS_METRICS_ALLOW = []
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 401


def test_openmetrics_when_asked():
    response = Client().get("/metrics", HTTP_ACCEPT="application/openmetrics-text; version=1.0.0")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.decode().rstrip().endswith("# EOF")


# -- HTTP figures ----------------------------------------------------------------------------------
def test_http_requests_are_counted_by_route_name_and_status_never_by_path():
    _, token = new_app()
    before = scrape()
    client = Client()
    secret_id = uuid.uuid4()
    client.get(f"/jobs/{secret_id}", HTTP_AUTHORIZATION=f"Token {token}")  # 404
    client.get("/jobs")  # 401
    client.get("/jobs")  # 401
    client.get("/no/such/path")  # 404, no route
    response = client.get("/metrics")
    after = scrape()

    def delta(name: str, **labels: str) -> float:
        key = tuple(sorted(labels.items()))
        return after[name].get(key, 0) - before[name].get(key, 0)

    requests_total = "jobplatform_http_requests_total"
    assert delta(requests_total, route="job-detail", method="GET", status="404") == 1
    assert delta(requests_total, route="job-list", method="GET", status="401") == 2
    assert delta(requests_total, route="unmatched", method="GET", status="404") == 1
    assert delta("jobplatform_http_auth_failures_total", route="job-list") == 2
    assert delta("jobplatform_http_request_duration_seconds_count", route="job-list", method="GET") == 2
    assert str(secret_id) not in response.content.decode() and "/no/such" not in response.content.decode()


# -- the scrape's queries can use their indexes ------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "params", "index"),
    [
        ("metrics_jobs_by_type_status", {}, "Index Only Scan using jobs_job_metrics"),
        (
            "metrics_job_durations",
            {"run_bounds": "{1,2}", "wait_bounds": "{1,2}"},
            "Index Only Scan using jobs_job_metrics",
        ),
        ("metrics_event_counts", {}, "jobs_event_metrics"),
    ],
)
def test_the_scrape_queries_are_served_by_their_indexes(query, params, index):
    """On a tiny test table the planner rightly prefers a sequential scan; with that
    option taken away the plan shows the index can serve the whole query."""
    with db.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + db.queries[query], params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert index in plan, plan


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, ["127.0.0.1", "::1"]), ("", []), ("10.0.0.0/8, 192.0.2.1", ["10.0.0.0/8", "192.0.2.1"])],
)
def test_jobs_metrics_allow_from_the_environment(value, expected):
    """Unset: this machine only; set but empty: no address, a token always."""
    from tests.conftest import manage_shell

    result = manage_shell(
        "from django.conf import settings; print(settings.JOBS_METRICS_ALLOW)",
        {} if value is None else {"JOBS_METRICS_ALLOW": value},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == repr(expected)
