"""Schedules with real processes: several clusters race on the same schedules (every
second), one is killed with SIGKILL in the middle of a fire, and afterwards every fire
time of every schedule has exactly one job, and every job ran; a paused schedule fired
nothing."""

from __future__ import annotations

import itertools
import time
from datetime import timedelta

import pytest

from tests.conftest import MEASURED

from .harness import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

JOB = {"type": "test_short", "params": {"index": 0, "sleep": 0.01}}


def with_option(url: str, option: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{option}"


def test_racing_clusters_and_a_kill_mid_fire_leave_exactly_one_job_per_fire_time(platform):
    api = platform.client(platform.token(f"schedules-{time.monotonic_ns()}"))
    try:
        # The victim holds each fire's transaction 2 s open after its last write (its
        # connections are named, to be seen in pg_stat_activity); two others race it.
        victim = platform.start_cluster(
            CRASHAPP_SCHEDULE_PAUSE="2",
            DATABASE_URL=with_option(platform.database_url, "application_name=schedule-victim"),
        )
        platform.start_cluster()
        platform.start_cluster()

        def post(body: dict) -> dict:
            response = api.post(f"{platform.base_url}/schedules", json=body, timeout=10)
            assert response.status_code == 201, response.text
            return response.json()

        racing = [post({"job": JOB, "every": 1, "catch_up": "once", "name": f"every-second-{i}"}) for i in range(4)]
        paused = post({"job": JOB, "every": 1, "catch_up": "once", "name": "paused"})
        response = api.patch(paused["url"], json={"state": "paused"}, timeout=10)
        assert response.status_code == 200 and response.json()["state"] == "paused"

        # Kill the victim while one of its fires has written its jobs and not committed.
        def victim_mid_fire() -> list[dict]:
            return platform.sql(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'schedule-victim' "
                "AND state = 'idle in transaction' AND query LIKE '%%INSERT INTO jobs_schedule_event%%'"
            )

        wait_for(victim_mid_fire, timeout=60, interval=0.05, what="the victim cluster in the middle of a fire")
        platform.kill9(victim)
        [(killed_at,)] = [tuple(row.values()) for row in platform.sql("SELECT now() AS at")]
        # The killed fire's transaction is rolled back by the database; the others carry on.
        wait_for(lambda: not victim_mid_fire(), timeout=30, what="the killed fire rolled back")

        # The two others fire on: until each schedule has fired eight times, twice since the
        # kill (a fixed sleep was either long or, on a busy machine, short).
        def fired_enough() -> bool:
            rows = platform.sql(
                "SELECT count(*) AS n, count(*) FILTER (WHERE fire_time > %s) AS since"
                " FROM jobs_job WHERE schedule_id = ANY(%s::uuid[]) GROUP BY schedule_id",
                [killed_at, [s["id"] for s in racing]],
            )
            return len(rows) == len(racing) and all(r["n"] >= 8 and r["since"] >= 2 for r in rows)

        wait_for(fired_enough, timeout=60, what="eight fires of each schedule, two since the kill")
        for schedule in racing:
            response = api.patch(schedule["url"], json={"state": "ended"}, timeout=10)
            assert response.status_code == 200 and response.json()["state"] == "ended"

        ids = [s["id"] for s in racing]
        wait_for(
            lambda: (
                not platform.sql(
                    "SELECT 1 FROM jobs_job WHERE schedule_id = ANY(%s::uuid[]) AND status <> 'succeeded' LIMIT 1",
                    [ids],
                )
            ),
            timeout=90,
            what="every scheduled job to succeed",
        )
        per_schedule: list[int] = []
        for schedule in racing:
            rows = platform.sql(
                "SELECT fire_time, status, attempts FROM jobs_job WHERE schedule_id = %s ORDER BY fire_time",
                [schedule["id"]],
            )
            fires = [row["fire_time"] for row in rows]
            per_schedule.append(len(fires))
            # Every fire time from the first to the last, each exactly once: no gap, no repeat.
            assert len(fires) >= 8, (schedule["name"], fires)
            gaps = [b - a for a, b in itertools.pairwise(fires)]
            assert set(gaps) == {timedelta(seconds=1)}, (schedule["name"], gaps)
            assert fires[0] == _first_fire_time(platform, schedule["id"])  # from the very first
            assert fires[-1] > killed_at  # fired on after the kill
            assert {row["status"] for row in rows} == {"succeeded"}  # and every one of them ran
            history = platform.sql(
                "SELECT kind, count(*) AS n FROM jobs_schedule_event WHERE schedule_id = %s GROUP BY kind",
                [schedule["id"]],
            )
            counts = {row["kind"]: row["n"] for row in history}
            # Late, never missed: each fire time fired on its own, none folded or skipped.
            assert counts == {"created": 1, "fired": len(fires), "ended": 1}, counts
        assert platform.sql("SELECT count(*) AS n FROM jobs_job WHERE schedule_id = %s", [paused["id"]]) == [{"n": 0}]
        MEASURED["schedules, a cluster killed mid-fire"] = f"jobs per schedule (one per fire time): {per_schedule}"
        shown = api.get(racing[0]["url"], timeout=10).json()
        assert shown["last_job"]["status"] == "succeeded" and shown["jobs_created"] >= 8
    finally:
        platform.stop_clusters()


def _first_fire_time(platform, schedule_id: str):
    """The first fire time, as the schedule's creation recorded it."""
    [row] = platform.sql(
        "SELECT (data ->> 'next_fire_at')::timestamptz AS at FROM jobs_schedule_event "
        "WHERE schedule_id = %s AND kind = 'created'",
        [schedule_id],
    )
    return row["at"]
