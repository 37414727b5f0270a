"""Polling and paging hints: Retry-After on an unfinished job, Link on a list page with a
next page; list filters for several statuses at once and for the creation time."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest

from jobs import db, services
from jobs.conf import settings

PROBLEM = "application/problem+json"


def post_job(api, body: dict, **headers):
    response = api.post("/jobs", data=json.dumps(body), content_type="application/json", **headers)
    assert response.status_code == 201, response.content
    return response.json()


def ids(api, query: str) -> set[str]:
    response = api.get(f"/jobs?{query}")
    assert response.status_code == 200, response.content
    return {job["id"] for job in response.json()["results"]}


# -- Retry-After --------------------------------------------------------------------------------
def test_retry_after_while_queued_and_running_and_none_once_finished(api):
    job = post_job(api, {"type": "countdown", "params": {"seconds": 5}})
    queued = api.get(f"/jobs/{job['id']}")
    assert queued.json()["status"] == "queued"
    assert queued["Retry-After"] == str(settings.POLL_INTERVAL)
    services.job_claim(job_id=uuid.UUID(job["id"]), worker="w")
    running = api.get(f"/jobs/{job['id']}")
    assert running.json()["status"] == "running"
    assert running["Retry-After"] == str(settings.POLL_INTERVAL)
    # A poller that sends the ETag back gets the hint on the 304 too.
    unchanged = api.get(f"/jobs/{job['id']}", HTTP_IF_NONE_MATCH=running["ETag"])
    assert unchanged.status_code == 304 and unchanged["Retry-After"] == str(settings.POLL_INTERVAL)

    other = post_job(api, {"type": "countdown", "params": {"seconds": 5}})
    api.post(f"/jobs/{other['id']}/cancel")
    finished = api.get(f"/jobs/{other['id']}")
    assert finished.json()["status"] == "cancelled"
    assert "Retry-After" not in finished
    assert "Retry-After" not in api.get(f"/jobs/{other['id']}", HTTP_IF_NONE_MATCH=finished["ETag"])


def test_retry_after_of_a_scheduled_job_is_the_time_until_its_run_at(api):
    soon = datetime.now(UTC) + timedelta(seconds=40)
    job = post_job(api, {"type": "fibonacci", "params": {"n": 1}, "run_at": soon.isoformat()})
    assert job["status"] == "scheduled"
    wait = int(api.get(f"/jobs/{job['id']}")["Retry-After"])
    assert 35 <= wait <= 40
    # Far away: the client still looks again within five minutes (it may be cancelled meanwhile).
    far = (datetime.now(UTC) + timedelta(days=300)).strftime("%Y-%m-%dT%H:%M:%SZ")
    later = post_job(api, {"type": "fibonacci", "params": {"n": 1}, "run_at": far})
    assert api.get(f"/jobs/{later['id']}")["Retry-After"] == "300"


def test_retry_after_follows_the_setting(api, settings):
    settings.JOBS = {**settings.JOBS, "POLL_INTERVAL": 7}
    job = post_job(api, {"type": "fibonacci", "params": {"n": 1}})
    assert api.get(f"/jobs/{job['id']}")["Retry-After"] == "7"


# -- Link ------------------------------------------------------------------------------------------
def test_link_header_names_the_next_page_until_the_last(api):
    created = [post_job(api, {"type": "fibonacci", "params": {"n": i}})["id"] for i in range(3)]
    first = api.get("/jobs?limit=2&type=fibonacci")
    body = first.json()
    assert body["next"] and first["Link"] == f'<{body["next"]}>; rel="next"'
    assert "type=fibonacci" in body["next"] and "limit=2" in body["next"]  # the filters carry on
    second = api.get(first["Link"][1 : first["Link"].index(">")])
    assert second.status_code == 200 and second.json()["next"] is None
    assert "Link" not in second
    assert [j["id"] for j in body["results"] + second.json()["results"]] == list(reversed(created))


# -- several statuses ---------------------------------------------------------------------------
@pytest.fixture
def three_statuses(api) -> dict[str, str]:
    queued = post_job(api, {"type": "fibonacci", "params": {"n": 1}})["id"]
    running = post_job(api, {"type": "fibonacci", "params": {"n": 2}})["id"]
    services.job_claim(job_id=uuid.UUID(running), worker="w")
    cancelled = post_job(api, {"type": "fibonacci", "params": {"n": 3}})["id"]
    api.post(f"/jobs/{cancelled}/cancel")
    return {"queued": queued, "running": running, "cancelled": cancelled}


@pytest.mark.parametrize(
    "query", ["status=queued,running", "status=queued&status=running", "status=running,queued,running"]
)
def test_several_statuses_at_once_comma_separated_or_repeated(api, three_statuses, query):
    assert ids(api, query) == {three_statuses["queued"], three_statuses["running"]}


def test_one_status_still_narrows(api, three_statuses):
    assert ids(api, "status=cancelled") == {three_statuses["cancelled"]}
    assert ids(api, "status=cancelled,succeeded") == {three_statuses["cancelled"]}
    assert ids(api, "status=succeeded") == set()


@pytest.mark.parametrize("query", ["status=queued,nope", "status=queued&status=RUNNING", "status=,", "status=queued,"])
def test_an_unknown_status_among_several_is_400_naming_status(api, query):
    response = api.get(f"/jobs?{query}")
    assert response.status_code == 400 and response["Content-Type"] == PROBLEM
    assert [e["field"] for e in response.json()["errors"]] == ["status"]


# -- created_after / created_before -----------------------------------------------------------
def test_created_after_and_before_are_exclusive_bounds(api):
    jobs = [post_job(api, {"type": "fibonacci", "params": {"n": i}}) for i in range(3)]
    first, _, last = (quote(job["created_at"]) for job in jobs)
    everything = {job["id"] for job in jobs}
    assert ids(api, f"created_after={first}") == everything - {jobs[0]["id"]}
    assert ids(api, f"created_before={last}") == everything - {jobs[2]["id"]}
    assert ids(api, f"created_after={first}&created_before={last}") == {jobs[1]["id"]}
    assert ids(api, f"created_after={last}") == set()
    # Together with the other filters and a page boundary.
    page = api.get(f"/jobs?created_before={last}&status=queued&limit=1").json()
    assert [j["id"] for j in page["results"]] == [jobs[1]["id"]]
    assert [j["id"] for j in api.get(page["next"]).json()["results"]] == [jobs[0]["id"]]


def test_created_bounds_take_any_time_zone(api):
    job = post_job(api, {"type": "fibonacci", "params": {"n": 1}})
    created = datetime.fromisoformat(job["created_at"])
    # The same instants written with other offsets, one beyond PostgreSQL's ±15:59.
    before = (created - timedelta(seconds=1)).astimezone(timezone_offset(hours=5, minutes=30)).isoformat()
    after = (created + timedelta(seconds=1)).astimezone(timezone_offset(hours=-22, minutes=-41)).isoformat()
    assert ids(api, f"created_after={quote(before)}&created_before={quote(after)}") == {job["id"]}


def timezone_offset(*, hours: int, minutes: int):
    from datetime import timezone

    return timezone(timedelta(hours=hours, minutes=minutes))


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ("2026-11-28", "time zone"),  # a date, no time zone
        ("2026-11-28T10:00:00", "time zone"),
        ("2026-11-28T10:00:00 01:00", "%2B"),  # a + sent unencoded arrives as a space
        ("yesterday", "ISO 8601"),
        ("0001-01-01T00:00:00%2B01:00", "range"),  # before year 1 in UTC
    ],
)
@pytest.mark.parametrize("name", ["created_after", "created_before"])
def test_created_bounds_without_a_time_zone_or_malformed_are_400(api, name, value, hint):
    response = api.get(f"/jobs?{name}={value}")
    assert response.status_code == 400 and response["Content-Type"] == PROBLEM
    errors = response.json()["errors"]
    assert [e["field"] for e in errors] == [name]
    assert hint in errors[0]["detail"]


# -- found by schemathesis: offsets PostgreSQL does not take were a 500 -------------------------
def test_run_at_with_an_offset_beyond_postgresqls_range_is_stored_not_a_500(api):
    sent = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT02:01:45.970000+22:46")
    job = post_job(api, {"type": "fibonacci", "params": {"n": 1}, "run_at": sent})
    assert datetime.fromisoformat(job["run_at"]) == datetime.fromisoformat(sent)
    assert datetime.fromisoformat(api.get(f"/jobs/{job['id']}").json()["run_at"]) == datetime.fromisoformat(sent)


def test_run_at_out_of_range_in_utc_is_400(api):
    response = api.post(
        "/jobs",
        data=json.dumps({"type": "fibonacci", "params": {"n": 1}, "run_at": "0001-01-01T00:00:00+01:00"}),
        content_type="application/json",
    )
    assert response.status_code == 400
    assert [e["field"] for e in response.json()["errors"]] == ["run_at"]


# -- the query still uses the index ----------------------------------------------------------------
def explain(raw, **params) -> str:
    defaults = {
        "app_id": None,
        "app_name": None,
        "statuses": None,
        "type": None,
        "queue": None,
        "metadata": None,
        "batch_id": None,
        "created_after": None,
    }
    defaults |= {"created_before": None, "before_created_at": None, "before_id": None, "limit": 51}
    raw.execute("EXPLAIN (FORMAT JSON) " + db.queries["job_list"], {**defaults, **params})
    return json.dumps(raw.fetchone()[0])


def test_several_statuses_and_created_bounds_still_walk_the_app_created_index(raw, app):
    """20,000 jobs of another application and 20,000 of this one, mostly finished: the
    list query with several statuses and both bounds reads jobs_job_app_created, with
    the bounds as index conditions (a range of the index), not a scan of the table."""
    other, _ = __import__("tests.integration.conftest", fromlist=["new_app"]).new_app()
    for owner in (other, app):
        raw.execute(
            """
            INSERT INTO jobs_job (id, app_id, type, params, status, max_attempts, timeout_seconds, created_at)
            SELECT gen_random_uuid(), %s, 'fibonacci', '{}'::jsonb,
                   (ARRAY['succeeded', 'failed', 'queued', 'running'])[1 + i %% 4], 3, 60,
                   now() - make_interval(secs => i)
            FROM generate_series(1, 20000) AS i
            """,
            [owner.id],
        )
    raw.execute("ANALYZE jobs_job")
    now = datetime.now(UTC)
    plan = explain(
        raw,
        app_id=app.id,
        statuses="queued,running",
        created_after=now - timedelta(hours=3),
        created_before=now - timedelta(hours=1),
    )
    assert "jobs_job_app_created" in plan, plan
    index_conditions = [node for node in _nodes(json.loads(plan)) if node.get("Index Name") == "jobs_job_app_created"]
    condition = index_conditions[0]["Index Cond"]
    assert "created_at >" in condition and "created_at <" in condition, condition
    assert "Seq Scan" not in plan and "Sort" not in plan, plan
    # The cursor of a later page is an index range too.
    plan = explain(
        raw,
        app_id=app.id,
        statuses="queued,running",
        before_created_at=now - timedelta(hours=2),
        before_id=uuid.uuid4(),
    )
    assert "jobs_job_app_created" in plan and "Seq Scan" not in plan and "Sort" not in plan, plan


def _nodes(plan):
    if isinstance(plan, list):
        for item in plan:
            yield from _nodes(item)
    elif isinstance(plan, dict):
        if "Node Type" in plan:
            yield plan
        for value in plan.values():
            yield from _nodes(value)


@pytest.mark.parametrize("walk", [20, 10_000], ids=["walked-first", "metadata-index"])
def test_a_metadata_filtered_list_pages_exactly_like_the_plain_query(api, app, raw, settings, walk):
    """job_list_by_metadata (the newest rows walked first in a large table, the metadata
    index otherwise or when the walk finds too few) answers exactly the pages the plain
    query does: a common value (filled by the walk), a rare one (the walk falls back), none."""
    from jobs import db, selectors
    from jobs.selectors import JobFilters

    settings.JOBS = {**settings.JOBS, "LIST_WALK_ROWS": walk}
    for i in range(100):
        services.job_create(app=app, type="fibonacci", params={"n": 1}, metadata={"every": i % 2, "rare": i % 25 == 0})
    raw.execute("ANALYZE jobs_job")  # the walk is tried once the table holds 4 times walk rows
    for metadata in ({"every": 1}, {"rare": True}, {"every": 7}):
        params = JobFilters(metadata=metadata).query_params(before=None, limit=7)
        plain = db.fetch_all("job_list", app_id=app.id, app_name=None, **params)
        assert [row["id"] for row in db.fetch_all("job_list_by_metadata", app_id=app.id, app_name=None, **params)] == [
            row["id"] for row in plain
        ]
        paged, before = [], None
        while True:
            page = selectors.job_list(app=app, filters=JobFilters(metadata=metadata), limit=4, before=before)
            paged += [job.id for job in page]
            if len(page) < 4:
                break
            before = (page[-1].created_at, page[-1].id)
        everything = db.fetch_all("job_list", app_id=app.id, app_name=None, **{**params, "limit": 200})
        assert paged == [row["id"] for row in everything]


@pytest.mark.parametrize(
    "position",
    ["2020-01-01T00:00:00+20:00", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-23:59", "2020-01-01T00:00:00"],
)
@pytest.mark.parametrize("path", ["/jobs", "/batches", "/schedules"])
def test_a_hand_made_cursor_is_a_page_or_a_400_never_a_500(api, path, position):
    """PostgreSQL refuses offsets beyond ±15:59 (a +20:00 cursor was a 500): a cursor's
    instant is taken in UTC, and one out of range is refused like any malformed cursor."""
    import base64

    raw = base64.urlsafe_b64encode(f"{position}|{uuid.uuid4()}".encode()).decode().rstrip("=")
    response = api.get(f"{path}?cursor={raw}")
    assert response.status_code in (200, 400), response.content
    if response.status_code == 400:
        assert response.json()["errors"][0]["field"] == "cursor"
