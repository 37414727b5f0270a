"""Schedules on the real database: the API (create, list, read, change, history, scopes,
isolation, problem+json), firing by the maintenance service with time moved by SQL,
catch_up, and exactly one job per fire time when passes race or code tries twice."""

from __future__ import annotations

import io
import itertools
import json
import re
import threading
import uuid
from datetime import datetime, timedelta

import pytest
from django.db import DatabaseError, IntegrityError, connection, transaction
from rest_framework.test import APIClient

from jobs import selectors, services
from jobs.domain import CatchUp, ScheduleEventKind, Status, iso_utc
from jobs.exceptions import AlreadyExists
from jobs.services import lifecycle
from jobs.services import schedules as schedule_services
from jobs.services.validation import JobRequest
from tests.conftest import MEASURED
from tests.integration.conftest import PARK_SCHEDULES, new_app, park_committed

PROBLEM = "application/problem+json"
JOB = {"type": "fibonacci", "params": {"n": 10}, "metadata": {"from": "schedule"}}


@pytest.fixture(autouse=True)
def earlier_schedules_wait(request):
    """Schedules committed before this test wait: what a pass fires is this test's (``park_committed``)."""
    park_committed(request, PARK_SCHEDULES)


@pytest.fixture(autouse=True)
def _schedules_every_second(settings):
    """These tests fire schedules every second (the default floor, 10 s, is tested below)."""
    settings.JOBS = {**settings.JOBS, "SCHEDULE_MIN_EVERY": 1}


def sql(query: str, params=None):
    with connection.cursor() as cur:
        cur.execute(query, params)
        return cur.fetchall() if cur.description else None


def post(api: APIClient, body: dict, path: str = "/schedules"):
    return api.post(path, data=json.dumps(body), content_type="application/json")


def patch(api: APIClient, schedule_id: str, body: dict):
    return api.patch(f"/schedules/{schedule_id}", data=json.dumps(body), content_type="application/json")


def created(api: APIClient, **body) -> dict:
    response = post(api, {"job": JOB, "catch_up": "skip", **body})
    assert response.status_code == 201, response.content
    return response.json()


def due_in_past(schedule_id, seconds: float) -> None:
    """Move time by SQL: the schedule's next fire time ``seconds`` ago (by the database's clock)."""
    sql(
        "UPDATE jobs_schedule SET next_fire_at = now() - make_interval(secs => %s) WHERE id = %s",
        [seconds, str(schedule_id)],
    )


def fired_jobs(schedule_id) -> list[tuple]:
    """(fire_time, job id, status) of every job the schedule created, by fire time."""
    return sql(
        "SELECT fire_time, id, status FROM jobs_job WHERE schedule_id = %s ORDER BY fire_time", [str(schedule_id)]
    )


def events(api: APIClient, schedule_id: str) -> list[dict]:
    response = api.get(f"/schedules/{schedule_id}/events?limit=500")
    assert response.status_code == 200, response.content
    return list(reversed(response.json()["events"]))  # oldest first


# -- create, read, list --------------------------------------------------------------------------
def test_create__201_with_location_definition_and_first_fire_time(api):
    response = post(
        api,
        {
            "job": JOB,
            "cron": "30 2 * * *",
            "timezone": "America/New_York",
            "catch_up": "once",
            "name": "nightly",
            "metadata": {"team": "etl"},
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert response["Location"] == body["url"] and body["url"].endswith(f"/schedules/{body['id']}")
    assert body["state"] == "active" and body["cron"] == "30 2 * * *" and body["timezone"] == "America/New_York"
    assert body["every"] is None and body["catch_up"] == "once" and body["name"] == "nightly"
    assert body["job"]["type"] == "fibonacci" and body["job"]["params"] == {"n": 10}
    assert body["job"]["max_attempts"] == 3  # the create validation's defaults, stored
    assert body["metadata"] == {"team": "etl"}
    assert body["last_job"] is None and body["last_fire_at"] is None and body["jobs_created"] == 0
    # 02:30 in New York, by the database's clock: the next one after now.
    [(expected,)] = sql(
        "SELECT (date_trunc('day', now() AT TIME ZONE 'America/New_York') + interval '2 hours 30 minutes' "
        "+ CASE WHEN (now() AT TIME ZONE 'America/New_York')::time >= '02:30' THEN interval '1 day' "
        "ELSE interval '0' END) AT TIME ZONE 'America/New_York'"
    )
    assert body["next_fire_at"] == expected.isoformat().replace("+00:00", "Z")
    assert api.get(body["url"]).json() == body
    [event] = events(api, body["id"])
    assert event["kind"] == "created" and event["data"]["cron"] == "30 2 * * *"
    assert event["data"]["next_fire_at"]


def test_create__400_names_every_field_at_fault(api):
    before = sql("SELECT count(*) FROM jobs_schedule")[0][0]
    response = post(
        api,
        {
            "job": {"type": "fibonacci", "params": {"n": -1}},
            "cron": "61 * * * *",
            "timezone": "Atlantis/Capital",
            "catch_up": "maybe",
            "colour": "blue",
        },
    )
    assert response.status_code == 400 and response["Content-Type"] == PROBLEM
    problem = response.json()
    assert problem["type"] == "urn:jobplatform:problem:invalid-request"
    by_field = {error["field"]: error for error in problem["errors"]}
    assert set(by_field) == {"job.params.n", "cron", "timezone", "catch_up", "colour"}
    assert by_field["cron"]["detail"] == "Bad minute."  # cronsim's own message
    assert "Unknown time zone" in by_field["timezone"]["detail"]
    assert by_field["job.params.n"]["pointer"] == "#/job/params/n"
    assert sql("SELECT count(*) FROM jobs_schedule")[0][0] == before


@pytest.mark.parametrize("body", ["[]", '"x"', "null"])
def test_create__a_body_that_is_not_an_object_is_400(api, body):
    response = api.post("/schedules", data=body, content_type="application/json")
    assert response.status_code == 400 and response["Content-Type"] == PROBLEM


def test_list__keyset_pages_newest_first_and_state_filter(api):
    made = [created(api, every=60 + i) for i in range(5)]
    patch(api, made[0]["id"], {"state": "paused"})
    first = api.get("/schedules?limit=2").json()
    assert [s["id"] for s in first["results"]] == [made[4]["id"], made[3]["id"]]
    second = api.get(first["next"]).json()
    third = api.get(second["next"]).json()
    assert [s["id"] for s in second["results"] + third["results"]] == [s["id"] for s in reversed(made[:3])]
    assert third["next"] is None
    paused = api.get("/schedules?state=paused").json()["results"]
    assert [s["id"] for s in paused] == [made[0]["id"]] and paused[0]["next_fire_at"] is None
    assert api.get("/schedules?state=sleeping").status_code == 400
    bad = api.get("/schedules?stat=paused")
    assert bad.status_code == 400 and bad.json()["errors"][0]["field"] == "stat"


def test_isolation__another_application_sees_nothing_and_changes_nothing(api):
    mine = created(api, every=60)
    _, token = new_app()
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert other.get(f"/schedules/{mine['id']}").status_code == 404
    assert other.get(f"/schedules/{mine['id']}/events").status_code == 404
    assert patch(other, mine["id"], {"state": "paused"}).status_code == 404
    assert other.get("/schedules").json()["results"] == []
    assert api.get(f"/schedules/{mine['id']}").json()["state"] == "active"
    assert api.get("/schedules/not-a-uuid").status_code == 404


def test_scopes__read_to_read_write_to_create_and_change(db):
    from jobs.domain import Scope

    token, _ = services.token_issue(app_name=f"ro-{uuid.uuid4().hex[:8]}", scopes=[Scope.READ.value])
    reader = APIClient()
    reader.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    refused = post(reader, {"job": JOB, "every": 60, "catch_up": "skip"})
    assert refused.status_code == 403 and refused.json()["required_scope"] == "jobs:write"
    assert reader.get("/schedules").status_code == 200

    token, _ = services.token_issue(app_name=f"wo-{uuid.uuid4().hex[:8]}", scopes=[Scope.WRITE.value])
    writer = APIClient()
    writer.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    schedule = created(writer, every=60)
    assert writer.get("/schedules").status_code == 403
    assert writer.get(f"/schedules/{schedule['id']}").status_code == 403
    assert patch(writer, schedule["id"], {"state": "paused"}).status_code == 200


def test_delete_is_405_and_the_database_refuses_deletes_too(api):
    schedule = created(api, every=60)
    response = api.delete(f"/schedules/{schedule['id']}")
    assert response.status_code == 405 and "DELETE" not in response["Allow"]
    with pytest.raises(DatabaseError, match="forbidden"), transaction.atomic():
        sql("DELETE FROM jobs_schedule WHERE id = %s", [schedule["id"]])
    with pytest.raises(DatabaseError, match="forbidden"), transaction.atomic():
        sql("DELETE FROM jobs_schedule_event")


def test_the_database_knows_exactly_the_schedule_event_kinds_the_code_knows(db):
    import re

    [(definition,)] = sql(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'jobs_schedule_event_kind_known'"
    )
    assert sorted(re.findall(r"'([a-z_]+)'", definition)) == sorted(kind.value for kind in ScheduleEventKind)


# -- firing -----------------------------------------------------------------------------------------
def test_a_due_schedule_fires_one_job_per_fire_time_named_by_schedule_and_fire_time(api, app):
    schedule = created(api, every=1)
    due_in_past(schedule["id"], 4)
    assert services.schedules_fire_due(limit=10) == 5  # now-4 s … now
    jobs = fired_jobs(schedule["id"])
    assert len(jobs) == 5
    assert [b - a for (a, *_), (b, *_) in itertools.pairwise(jobs)] == [timedelta(seconds=1)] * 4
    [(now,)] = sql("SELECT now()")
    assert jobs[-1][0] == now
    job = api.get(f"/jobs/{jobs[-1][1]}").json()
    assert job["status"] == "queued" and job["params"] == {"n": 10} and job["metadata"] == {"from": "schedule"}
    assert job["schedule"] == {
        "id": schedule["id"],
        "url": schedule["url"],
        "fire_time": now.isoformat().replace("+00:00", "Z"),
    }
    created_event = api.get(f"/jobs/{jobs[-1][1]}/events").json()["events"][0]
    assert created_event["data"]["schedule_id"] == schedule["id"]
    shown = api.get(schedule["url"]).json()
    assert shown["last_job"] == {"id": str(jobs[-1][1]), "url": job["url"], "status": "queued"}
    assert shown["last_fire_at"] == job["schedule"]["fire_time"] and shown["jobs_created"] == 5
    assert shown["next_fire_at"] > shown["last_fire_at"]
    history = events(api, schedule["id"])
    fired = [e for e in history if e["kind"] == "fired"]
    assert [e["job"] for e in fired] == [api.get(f"/jobs/{j[1]}").json()["url"] for j in jobs]
    # Nothing is due any more: a second pass fires nothing.
    assert services.schedules_fire_due(limit=10) == 0


def test_fire_times_follow_the_databases_clock_not_the_processs(api, monkeypatch):
    """This process's clock three hours off: the first fire time is still the database's
    now() + every, and a pass fires by the database's clock."""
    from django.utils import timezone as django_timezone

    skewed = django_timezone.now() + timedelta(hours=3)
    monkeypatch.setattr(django_timezone, "now", lambda: skewed)
    schedule = created(api, every=60)
    [(now,)] = sql("SELECT now()")  # the test's transaction: the same now() as the create's
    assert schedule["next_fire_at"] == (now + timedelta(seconds=60)).isoformat().replace("+00:00", "Z")
    assert services.schedules_fire_due(limit=10) == 0  # not due by the database's clock
    due_in_past(schedule["id"], 0)
    assert services.schedules_fire_due(limit=10) == 1
    assert [fire for fire, *_ in fired_jobs(schedule["id"])] == [now]


def test_a_job_created_by_a_schedule_runs_like_any_other(api):
    from jobs.runtime.worker import Outcome, execute_job

    schedule = created(api, every=1)
    due_in_past(schedule["id"], 0)
    services.schedules_fire_due(limit=10)
    [(_, job_id, _)] = fired_jobs(schedule["id"])
    assert execute_job(str(job_id)) == Outcome.SUCCEEDED
    assert api.get(schedule["url"]).json()["last_job"]["status"] == "succeeded"


def test_a_paused_schedule_fires_nothing_and_resumes_from_now(api):
    schedule = created(api, every=1)
    paused = patch(api, schedule["id"], {"state": "paused"})
    assert paused.status_code == 200 and paused.json()["state"] == "paused"
    assert paused.json()["next_fire_at"] is None
    due_in_past(schedule["id"], 30)
    assert services.schedules_fire_due(limit=10) == 0
    assert fired_jobs(schedule["id"]) == []
    resumed = patch(api, schedule["id"], {"state": "active"}).json()
    [(now,)] = sql("SELECT now()")
    assert resumed["state"] == "active" and resumed["next_fire_at"] > now.isoformat().replace("+00:00", "Z")
    # The paused fire times are not fired afterwards either.
    assert services.schedules_fire_due(limit=10) == 0
    assert [e["kind"] for e in events(api, schedule["id"])] == ["created", "paused", "resumed"]
    assert events(api, schedule["id"])[-1]["data"]["next_fire_at"]


@pytest.mark.parametrize("catch_up", list(CatchUp))
def test_missed_fire_times_follow_catch_up_and_are_recorded(api, settings, catch_up):
    """Every cluster was down for ten minutes: the minutely fire times older than the
    grace are missed."""
    settings.JOBS = {**settings.JOBS, "SCHEDULE_MISFIRE_GRACE": 60}
    schedule = created(api, every=60, catch_up=catch_up.value)
    due_in_past(schedule["id"], 600)  # fire times now-600 s, now-540 s, …, now
    made = services.schedules_fire_due(limit=10)
    jobs = fired_jobs(schedule["id"])
    history = events(api, schedule["id"])
    kinds = [e["kind"] for e in history]
    [(now,)] = sql("SELECT now()")
    # now-60 s (exactly the grace) and now are on time: one job each.
    assert [fire for fire, *_ in jobs if now - fire <= timedelta(seconds=60)] == [now - timedelta(seconds=60), now]
    if catch_up is CatchUp.ONCE:
        assert made == 3 and len(jobs) == 3
        [folded] = [e for e in history if e["kind"] == "folded"]
        assert folded["data"]["missed"]["count"] == 9  # now-600 s … now-120 s
        assert jobs[0][0] == now - timedelta(seconds=120)  # the one job carries the latest missed fire time
        assert folded["data"]["fire_time"] == jobs[0][0].isoformat().replace("+00:00", "Z")
        assert folded["job"].endswith(str(jobs[0][1]))
        assert kinds == ["created", "folded", "fired", "fired"]
    else:
        assert made == 2 and len(jobs) == 2
        [skipped] = [e for e in history if e["kind"] == "skipped"]
        assert skipped["data"]["reason"] == "catch_up" and skipped["data"]["missed"]["count"] == 9
        assert len(skipped["data"]["missed"]["fire_times"]) == 9
        assert skipped["data"]["missed"]["last"] == (now - timedelta(seconds=120)).isoformat().replace("+00:00", "Z")
        assert kinds == ["created", "skipped", "fired", "fired"]


def test_ends_at_ends_the_schedule_after_its_last_fire_time(api):
    schedule = created(api, every=10)
    sql(
        "UPDATE jobs_schedule SET next_fire_at = now() - interval '25 seconds', ends_at = now() - interval '1 second' "
        "WHERE id = %s",
        [schedule["id"]],
    )
    assert services.schedules_fire_due(limit=10) == 3  # -25, -15, -5
    shown = api.get(schedule["url"]).json()
    assert shown["state"] == "ended" and shown["ended_at"] and shown["next_fire_at"] is None
    last = events(api, schedule["id"])[-1]
    assert last["kind"] == "ended" and last["data"] == {"reason": "ends_at"}


def test_at_the_applications_cap_a_fire_time_is_skipped_and_recorded(api, settings):
    settings.JOBS = {**settings.JOBS, "MAX_UNFINISHED_PER_APP": 2}
    schedule = created(api, every=1)
    due_in_past(schedule["id"], 3)
    assert services.schedules_fire_due(limit=10) == 2
    [skipped] = [e for e in events(api, schedule["id"]) if e["kind"] == "skipped"]
    assert skipped["data"]["reason"] == "too_many_unfinished" and skipped["data"]["missed"]["count"] == 2
    assert api.get(schedule["url"]).json()["next_fire_at"] is not None


# -- exactly once -------------------------------------------------------------------------------------
def test_the_unique_index_refuses_a_second_job_for_a_fire_time_even_if_code_tried(api, app):
    schedule = created(api, every=60)
    [(now,)] = sql("SELECT now()")
    request = JobRequest(type="fibonacci", params={"n": 1}, metadata={}, max_attempts=1, timeout=60, run_at=None)
    first = lifecycle.job_insert(app_id=app.id, request=request, schedule_id=uuid.UUID(schedule["id"]), fire_time=now)
    assert first is not None
    with pytest.raises(AlreadyExists) as info, transaction.atomic():
        lifecycle.job_insert(app_id=app.id, request=request, schedule_id=uuid.UUID(schedule["id"]), fire_time=now)
    assert str(info.value) == "jobs_job_schedule_fire"
    with pytest.raises(IntegrityError, match="jobs_job_schedule_fire"), transaction.atomic():
        sql(
            "INSERT INTO jobs_job (id, app_id, type, params, status, max_attempts, timeout_seconds, schedule_id, "
            "fire_time) VALUES (gen_random_uuid(), %s, 'fibonacci', '{}', 'queued', 1, 60, %s, %s)",
            [str(app.id), schedule["id"], now],
        )
    # A job must name both its schedule and its fire time, or neither.
    with pytest.raises(IntegrityError, match="jobs_job_schedule_fire_time"), transaction.atomic():
        sql(
            "INSERT INTO jobs_job (id, app_id, type, params, status, max_attempts, timeout_seconds, schedule_id) "
            "VALUES (gen_random_uuid(), %s, 'fibonacci', '{}', 'queued', 1, 60, %s)",
            [str(app.id), schedule["id"]],
        )


def test_a_stale_pass_changes_nothing(api):
    """A pass that fires from an old copy of the schedule (another pass advanced it
    meanwhile): its jobs are refused by the unique index, its advance by the fence, and
    its transaction rolls back whole."""
    schedule = created(api, every=1)
    due_in_past(schedule["id"], 2)
    stale = selectors.schedule_get_any(schedule_id=uuid.UUID(schedule["id"]))
    assert services.schedules_fire_due(limit=10) == 3
    [(now,)] = sql("SELECT now()")
    with pytest.raises(schedule_services._Moved), transaction.atomic():
        schedule_services._fire(stale, now=now, grace=60, limit=10)
    assert len(fired_jobs(schedule["id"])) == 3


@pytest.mark.django_db(transaction=True)
def test_two_passes_racing_on_the_same_due_schedules_create_exactly_one_job_per_fire_time():
    """Two maintenance passes on two connections, started together, in four rounds: three
    on eight new schedules each with a backlog of 20 due fire times (time moved by SQL),
    then one on all 24 moved 20 s back again, so that both passes also meet fire times that
    already have their job (the unique index refuses them; the pass goes on)."""
    app, _ = new_app()
    ids: list[str] = []
    totals = []
    for round_number in range(4):
        if round_number < 3:
            new = [
                services.schedule_create(app=app, fields={"job": JOB, "every": 1, "catch_up": "skip"}) for _ in range(8)
            ]
            ids += [str(s.id) for s in new]
        moved = ids if round_number == 3 else ids[-8:]
        sql(
            "UPDATE jobs_schedule SET next_fire_at = next_fire_at - interval '21 seconds' WHERE id = ANY(%s::uuid[])",
            [moved],
        )
        start = threading.Barrier(2)
        made: list[int] = []
        failures: list[BaseException] = []

        def one_pass(start: threading.Barrier, made: list[int], failures: list[BaseException]) -> None:
            try:
                start.wait()
                made.append(services.schedules_fire_due(limit=100))
            except BaseException as exc:  # reported below, not lost in the thread
                failures.append(exc)
            finally:
                connection.close()

        threads = [threading.Thread(target=one_pass, args=(start, made, failures)) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert failures == []
        totals.append(made)
    [(jobs, distinct)] = sql(
        "SELECT count(*), count(DISTINCT (schedule_id, fire_time)) FROM jobs_job WHERE schedule_id = ANY(%s::uuid[])",
        [ids],
    )
    assert jobs == distinct == sum(sum(made) for made in totals)
    MEASURED["two racing passes"] = f"jobs made by each pass, per round: {totals}"
    for schedule_id in ids:
        fires = [fire for fire, *_ in fired_jobs(schedule_id)]
        # Every second of the lattice from the first fire time to the last, once: no gap, no repeat.
        assert fires and all(b - a == timedelta(seconds=1) for a, b in itertools.pairwise(fires))
        [(next_fire_at, count, fired_events)] = sql(
            "SELECT s.next_fire_at, s.fires, (SELECT count(*) FROM jobs_schedule_event e "
            "WHERE e.schedule_id = s.id AND e.kind = 'fired') FROM jobs_schedule s WHERE s.id = %s",
            [schedule_id],
        )
        assert next_fire_at == fires[-1] + timedelta(seconds=1)
        assert count == fired_events == len(fires)


# -- change ----------------------------------------------------------------------------------------
def test_patch__retime_switch_kind_and_recorded(api):
    schedule = created(api, every=60)
    response = patch(api, schedule["id"], {"cron": "0 9 * * MON-FRI", "timezone": "Europe/Lisbon"})
    assert response.status_code == 200, response.content
    changed = response.json()
    assert changed["cron"] == "0 9 * * MON-FRI" and changed["timezone"] == "Europe/Lisbon" and changed["every"] is None
    assert changed["next_fire_at"] != schedule["next_fire_at"]
    last = events(api, schedule["id"])[-1]
    assert last["kind"] == "changed"
    assert last["data"]["changed"] == {"cron": "0 9 * * MON-FRI", "timezone": "Europe/Lisbon", "every": None}
    assert last["data"]["next_fire_at"].replace("+00:00", "Z") == changed["next_fire_at"]
    back = patch(api, schedule["id"], {"every": 30}).json()
    assert back["cron"] is None and back["timezone"] is None and back["every"] == 30


def test_patch__job_body_name_and_catch_up_validated_as_on_create(api):
    schedule = created(api, every=60)
    bad = patch(api, schedule["id"], {"job": {"type": "fibonacci", "params": {"n": "x"}}, "every": 0, "size": 1})
    assert bad.status_code == 400
    assert {e["field"] for e in bad.json()["errors"]} == {"job.params.n", "every", "size"}
    assert patch(api, schedule["id"], {"timezone": "UTC"}).status_code == 400  # an interval has no time zone
    ok = patch(api, schedule["id"], {"job": {"type": "pi", "params": {"digits": 5}}, "name": "pi", "catch_up": "once"})
    assert ok.status_code == 200
    assert ok.json()["job"]["type"] == "pi" and ok.json()["name"] == "pi" and ok.json()["catch_up"] == "once"
    assert ok.json()["next_fire_at"] == schedule["next_fire_at"]  # the timing did not change
    unchanged = patch(api, schedule["id"], {})
    assert unchanged.status_code == 200 and len(events(api, schedule["id"])) == 2


def test_patch__ended_is_final(api):
    schedule = created(api, every=1)
    ended = patch(api, schedule["id"], {"state": "ended"})
    assert ended.status_code == 200 and ended.json()["state"] == "ended" and ended.json()["ended_at"]
    again = patch(api, schedule["id"], {"state": "active"})
    assert again.status_code == 409 and again["Content-Type"] == PROBLEM
    assert again.json()["type"] == "urn:jobplatform:problem:conflict"
    assert events(api, schedule["id"])[-1]["data"] == {"reason": "requested"}
    with pytest.raises(DatabaseError, match="can no longer change"), transaction.atomic():
        sql("UPDATE jobs_schedule SET state = 'active' WHERE id = %s", [schedule["id"]])
    assert services.schedules_fire_due(limit=10) == 0


def test_schedules_per_application_are_capped(api, settings):
    settings.JOBS = {**settings.JOBS, "MAX_SCHEDULES_PER_APP": 2}
    first = created(api, every=60)
    created(api, every=60)
    refused = post(api, {"job": JOB, "every": 60, "catch_up": "skip"})
    assert refused.status_code == 409 and "JOBS_MAX_SCHEDULES_PER_APP" in refused.json()["detail"]
    patch(api, first["id"], {"state": "ended"})
    assert post(api, {"job": JOB, "every": 60, "catch_up": "skip"}).status_code == 201


def test_history_pages_newest_first(api):
    schedule = created(api, every=1)
    due_in_past(schedule["id"], 9)
    services.schedules_fire_due(limit=20)
    page = api.get(f"/schedules/{schedule['id']}/events?limit=4").json()
    assert len(page["events"]) == 4 and page["next"]
    seen = page["events"]
    while page["next"]:
        page = api.get(page["next"]).json()
        seen += page["events"]
    assert [e["id"] for e in seen] == sorted((e["id"] for e in seen), reverse=True)
    assert [e["kind"] for e in seen] == ["fired"] * 10 + ["created"]
    assert seen[0]["job"] and seen[-1]["job"] is None
    assert api.get(f"/schedules/{schedule['id']}/events?cursor=abc").status_code == 400


def test_an_admin_token_reads_every_applications_schedules(api):
    from jobs.domain import Scope

    schedule = created(api, every=60)
    token, _ = services.token_issue(
        app_name=f"ops-{uuid.uuid4().hex[:8]}", scopes=[Scope.READ.value, Scope.ADMIN.value]
    )
    admin = APIClient()
    admin.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert admin.get(f"/schedules/{schedule['id']}").status_code == 200
    assert schedule["id"] in [s["id"] for s in admin.get("/schedules").json()["results"]]


def test_job_status_shown_on_the_schedule_follows_the_job(api, app):
    schedule = created(api, every=1)
    due_in_past(schedule["id"], 0)
    services.schedules_fire_due(limit=5)
    [(_, job_id, _)] = fired_jobs(schedule["id"])
    services.job_cancel(app=app, job_id=job_id)
    assert api.get(schedule["url"]).json()["last_job"]["status"] == Status.CANCELLED.value


# -- where operators look: /metrics, jobs_top, the dashboard ------------------------------------
def scrape() -> dict[str, dict[tuple, float]]:
    from django.test import Client
    from prometheus_client.parser import text_string_to_metric_families

    response = Client().get("/metrics")
    assert response.status_code == 200, response.content
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


@pytest.fixture
def operated(api, settings):
    """Schedules in every state and fate: one fired, one overdue, one paused, one ended,
    two whose missed fire times were folded and skipped."""
    settings.JOBS = {**settings.JOBS, "SCHEDULE_MISFIRE_GRACE": 60}
    fired = created(api, every=1, name="fired")
    late = created(api, every=1, name="late")
    paused = created(api, every=60, name="paused")
    ended = created(api, every=60, name="ended")
    folded = created(api, every=60, name="folded", catch_up="once")
    skipped = created(api, every=60, name="skipped", catch_up="skip")
    patch(api, paused["id"], {"state": "paused"})
    patch(api, ended["id"], {"state": "ended"})
    for schedule, seconds in ((fired, 2), (folded, 600), (skipped, 600)):
        due_in_past(schedule["id"], seconds)
    services.schedules_fire_due(limit=10)
    due_in_past(late["id"], 30)  # no pass since: 30 s late
    return {s["name"]: api.get(s["url"]).json() for s in (fired, late, paused, ended, folded, skipped)}


def test_metrics_show_schedules_with_bounded_series(operated, settings):
    settings.JOBS = {**settings.JOBS, "METRICS_SCHEDULES_MAX": 3}
    samples = scrape()
    assert samples["jobplatform_schedules"] == {
        (("state", "active"),): 4,
        (("state", "paused"),): 1,
        (("state", "ended"),): 1,
    }
    assert samples["jobplatform_schedule_jobs_created_total"] == {(): 3 + 3 + 2}
    assert samples["jobplatform_schedule_late_seconds"][()] == pytest.approx(30, abs=0.01)
    assert samples["jobplatform_schedule_missed_fire_times_total"] == {
        (("outcome", "folded"),): 9,
        (("outcome", "skipped"),): 9,
        (("outcome", "refused"),): 0,
    }
    # Series of their own for the three oldest schedules not ended (fired, late, paused) only.
    fired, late = operated["fired"], operated["late"]
    next_fire = samples["jobplatform_schedule_next_fire_timestamp_seconds"]
    assert {dict(labels)["name"] for labels in next_fire} == {"fired", "late"}  # paused: no next fire
    [(labels, value)] = [(k, v) for k, v in next_fire.items() if dict(k)["schedule"] == fired["id"]]
    assert dict(labels)["name"] == "fired" and dict(labels)["app"].startswith("app-")
    assert value == datetime.fromisoformat(fired["next_fire_at"].replace("Z", "+00:00")).timestamp()
    statuses = samples["jobplatform_schedule_last_job_status"]
    assert {(dict(k)["name"], dict(k)["status"]) for k in statuses} == {("fired", "queued")}
    assert late["id"] in {dict(k)["schedule"] for k in next_fire}
    assert all(len(series) <= 3 for name, series in samples.items() if name.startswith("jobplatform_schedule_l"))


def test_jobs_top_shows_schedules(operated):
    from django.core.management import call_command

    out = io.StringIO()
    call_command("jobs_top", "--once", "--latest", "0", stdout=out)
    screen = out.getvalue()
    assert "schedules: 4 active, 1 paused, 1 ended" in screen
    lines = {
        name: next(line for line in screen.splitlines() if line.startswith(f"  {name} "))
        for name in operated
        if name != "ended"
    }
    assert re.search(r"every 1s\s+0:30 late\s+-$", lines["late"]), lines["late"]
    assert re.search(r"every 1s\s+in 0:01\s+" + operated["fired"]["last_job"]["id"] + " queued$", lines["fired"])
    assert re.search(r"paused\s+every 60s\s+-\s+-$", lines["paused"]), lines["paused"]
    # Soonest to fire first, paused last.
    order = [line.split()[0] for line in screen.splitlines() if line.startswith("  ") and line.split()[0] in operated]
    assert order[0] == "late" and order[-1] == "paused"


def test_the_dashboard_has_a_schedules_page(operated):
    from tests.integration.test_dashboard import admin_app, logged_in, text

    _, token = admin_app()
    browser = logged_in(token)
    response = browser.get("/dashboard/schedules/")
    assert response.status_code == 200 and response["ETag"]
    page = text(response)
    assert "fired" in page and "every 1 s" in page and "queued" in page and "30.0 s late" in page
    html = response.content.decode()
    assert f'href="/dashboard/jobs/{operated["fired"]["last_job"]["id"]}/"' in html
    assert re.findall(r"<script[^>]*>", html) == [re.search(r'<script src="[^"]+" defer>', html).group(0)]
    assert browser.get("/dashboard/schedules/", HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304
    paused = text(browser.get("/dashboard/schedules/?state=paused"))
    assert "paused" in paused and "every 60 s" in paused and "every 1 s" not in paused
    assert browser.get("/dashboard/schedules/?state=asleep").status_code == 400
    assert '<a href="/dashboard/schedules/"' in browser.get("/dashboard/").content.decode()


def test_every_has_a_floor_of_ten_seconds_by_default(api, settings):
    """With JOBS_MAX_SCHEDULES_PER_APP (1,000), the floor bounds how many jobs one
    application's schedules can start: 100 a second at most, by default."""
    from jobs.conf import TUNABLES_BY_NAME

    settings.JOBS = {**settings.JOBS, "SCHEDULE_MIN_EVERY": TUNABLES_BY_NAME["SCHEDULE_MIN_EVERY"].default}
    response = post(api, {"job": JOB, "every": 5, "catch_up": "skip"})
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["field"] == "every" and "10" in error["detail"]
    assert post(api, {"job": JOB, "every": 10, "catch_up": "skip"}).status_code == 201


def test_a_schedule_that_cannot_fire_does_not_hold_up_the_others(api):
    """A pass that fails on one schedule (here its stored job no longer makes a request)
    records why, leaves it alone for a while and fires the others; once it can fire again
    it does, its missed fire times following its catch_up."""
    broken = created(api, every=60, catch_up="once", name="broken")
    fine = created(api, every=60, catch_up="once", name="fine")
    due_in_past(broken["id"], 5)
    due_in_past(fine["id"], 1)  # the broken one comes first in every pass
    sql("UPDATE jobs_schedule SET job = job - 'type' WHERE id = %s", [broken["id"]])
    assert services.schedules_fire_due(limit=10) == 1
    assert len(fired_jobs(fine["id"])) == 1 and fired_jobs(broken["id"]) == []
    [failed] = [e for e in events(api, broken["id"]) if e["kind"] == ScheduleEventKind.FAILED]
    assert failed["data"]["error"]["type"] == "TypeError" and failed["data"]["retry_at"]
    assert services.schedules_fire_due(limit=10) == 0  # left alone meanwhile
    sql(
        "UPDATE jobs_schedule SET job = job || '{\"type\": \"fibonacci\"}', failing_until = now() - interval '1 s' "
        "WHERE id = %s",
        [broken["id"]],
    )
    assert services.schedules_fire_due(limit=10) == 1
    assert len(fired_jobs(broken["id"])) == 1
    assert sql("SELECT failing_until FROM jobs_schedule WHERE id = %s", [broken["id"]]) == [(None,)]


def failed_pass(api, schedule_id: str) -> None:
    """A pass fails on the schedule, due 1 s ago (its stored job no longer makes a request)."""
    due_in_past(schedule_id, 1)
    sql("UPDATE jobs_schedule SET job = job - 'type' WHERE id = %s", [schedule_id])
    assert services.schedules_fire_due(limit=10) == 0
    [(failing_until, failed_at, next_fire_at)] = sql(
        "SELECT failing_until, failed_at, next_fire_at FROM jobs_schedule WHERE id = %s", [schedule_id]
    )
    assert failing_until is not None and failed_at is not None and next_fire_at < failed_at
    shown = api.get(f"/schedules/{schedule_id}").json()["failing"]
    assert shown == {"since": iso_utc(failed_at), "retry_at": iso_utc(failing_until)}, shown


def later(schedule_id: str, seconds: int) -> None:
    """Move time by SQL: the fire time and the failed pass ``seconds`` further in the past
    (a test's transaction has one now())."""
    sql(
        "UPDATE jobs_schedule SET next_fire_at = next_fire_at - make_interval(secs => %s), "
        "failed_at = failed_at - make_interval(secs => %s) WHERE id = %s",
        [seconds, seconds, schedule_id],
    )


def test_a_fire_time_a_pass_failed_on_fires_when_tried_again_past_the_grace(api, settings):
    """The retry comes FAILED_RETRY_SECONDS (60 s) later, as long as the default grace:
    the failed pass is replayed at the instant it ran, when the fire time was on time, so
    even ``catch_up: skip`` fires it (it is not counted as missed)."""
    settings.JOBS = {**settings.JOBS, "SCHEDULE_MISFIRE_GRACE": 60}
    schedule = created(api, every=3600, catch_up="skip")
    failed_pass(api, schedule["id"])
    # Its cause fixed behind the API's back; the retry comes 61 s after the fire time.
    later(schedule["id"], 60)
    sql(
        "UPDATE jobs_schedule SET job = job || '{\"type\": \"fibonacci\"}', failing_until = now() - interval '1 s' "
        "WHERE id = %s",
        [schedule["id"]],
    )
    assert services.schedules_fire_due(limit=10) == 1
    assert len(fired_jobs(schedule["id"])) == 1
    kinds = [e["kind"] for e in events(api, schedule["id"])]
    assert kinds == ["created", "failed", "fired"], kinds
    assert sql("SELECT failing_until, failed_at FROM jobs_schedule WHERE id = %s", [schedule["id"]]) == [(None, None)]


def test_a_change_to_a_failing_schedule_has_it_tried_at_once_and_keeps_its_fire_time(api, settings):
    """PATCH may be the fix (here: its job): the schedule is not left alone for the rest of
    FAILED_RETRY_SECONDS, and the fire time it failed on still fires, however late the fix
    came (two minutes here, past the grace). A PATCH that moves the next fire time starts
    afresh: nothing of the failed pass is replayed."""
    settings.JOBS = {**settings.JOBS, "SCHEDULE_MISFIRE_GRACE": 60}
    schedule = created(api, every=3600, catch_up="skip")
    failed_pass(api, schedule["id"])
    later(schedule["id"], 120)
    response = patch(api, schedule["id"], {"job": JOB})
    assert response.status_code == 200, response.content
    [(failing_until, failed_at)] = sql(
        "SELECT failing_until, failed_at FROM jobs_schedule WHERE id = %s", [schedule["id"]]
    )
    assert failing_until is None and failed_at is not None
    assert api.get(f"/schedules/{schedule['id']}").json()["failing"]["retry_at"] is None  # the next pass
    assert services.schedules_fire_due(limit=10) == 1
    assert [e["kind"] for e in events(api, schedule["id"])] == ["created", "failed", "changed", "fired"]
    assert api.get(f"/schedules/{schedule['id']}").json()["failing"] is None


def test_the_dashboard_shows_a_failing_schedule(api):
    from tests.integration.test_dashboard import admin_app, logged_in, text

    schedule = created(api, every=3600, catch_up="skip", name="broken-one")
    browser = logged_in(admin_app()[1])
    assert "failing since" not in text(browser.get("/dashboard/schedules/"))
    failed_pass(api, schedule["id"])
    assert "broken-one" in (page := text(browser.get("/dashboard/schedules/"))) and "failing since" in page

    retimed = created(api, every=3600, catch_up="skip")
    failed_pass(api, retimed["id"])
    assert patch(api, retimed["id"], {"job": JOB, "every": 7200}).status_code == 200
    assert sql("SELECT failing_until, failed_at FROM jobs_schedule WHERE id = %s", [retimed["id"]]) == [(None, None)]


def test_a_replay_the_pass_limit_cuts_short_goes_on_in_the_next_pass(api, settings):
    """Six fire times were on time when the pass failed (every 10 s, the oldest 55 s late);
    passes of at most 3 fire times each replay them all, then fire the ones due since:
    nothing skipped, however the limit cuts the replay."""
    settings.JOBS = {**settings.JOBS, "SCHEDULE_MISFIRE_GRACE": 60}
    schedule = created(api, every=10, catch_up="skip")
    failed_pass(api, schedule["id"])
    sql("UPDATE jobs_schedule SET next_fire_at = next_fire_at - interval '54 s' WHERE id = %s", [schedule["id"]])
    later(schedule["id"], 61)  # fire time now - 116 s, failed pass now - 61 s
    sql(
        'UPDATE jobs_schedule SET job = job || \'{"type": "fibonacci"}\', failing_until = NULL WHERE id = %s',
        [schedule["id"]],
    )
    [(first,)] = sql("SELECT next_fire_at FROM jobs_schedule WHERE id = %s", [schedule["id"]])
    while services.schedules_fire_due(limit=3):
        pass
    fires = [fire for fire, *_ in fired_jobs(schedule["id"])]
    assert fires == [first + timedelta(seconds=10 * k) for k in range(12)], fires
    assert "skipped" not in [e["kind"] for e in events(api, schedule["id"])]
    assert sql("SELECT failed_at FROM jobs_schedule WHERE id = %s", [schedule["id"]]) == [(None,)]


def test_a_schedule_failing_during_the_upgrade_to_0022_keeps_its_fire_time(api, settings):
    """Left failing by the release before 0022 (failing_until set, no failed_at): the
    migration's backfill has its retry fire the fire time as that release would have."""
    import importlib

    backfill = importlib.import_module("jobs.migrations.0022_schedule_failed_at").BACKFILL
    settings.JOBS = {**settings.JOBS, "SCHEDULE_MISFIRE_GRACE": 60}
    schedule = created(api, every=3600, catch_up="skip")
    untouched = created(api, every=3600, catch_up="skip")
    sql(
        "UPDATE jobs_schedule SET next_fire_at = now() - interval '61 s', failing_until = now() - interval '1 s', "
        "failed_at = NULL WHERE id = %s",
        [schedule["id"]],
    )
    sql(backfill)
    query = "SELECT next_fire_at, failed_at FROM jobs_schedule WHERE id = %s"
    [(next_fire_at, failed_at)] = sql(query, [schedule["id"]])
    assert failed_at == next_fire_at
    assert sql("SELECT failed_at FROM jobs_schedule WHERE id = %s", [untouched["id"]]) == [(None,)]
    assert services.schedules_fire_due(limit=10) == 1 and len(fired_jobs(schedule["id"])) == 1


def test_missed_fire_times_too_many_to_count_add_their_floor_to_the_metric(api):
    """An outage past MISSED_COUNTED cron fire times records count null, at_least N: the
    counter adds N (a floor), not 0."""
    schedule = created(api, every=60, catch_up="once")
    before = scrape()["jobplatform_schedule_missed_fire_times_total"][(("outcome", "folded"),)]
    sql(
        "INSERT INTO jobs_schedule_event (schedule_id, kind, data) VALUES (%s, 'folded', %s::jsonb)",
        [schedule["id"], '{"missed": {"count": null, "at_least": 10000}}'],
    )
    after = scrape()["jobplatform_schedule_missed_fire_times_total"][(("outcome", "folded"),)]
    assert after - before == 10000
