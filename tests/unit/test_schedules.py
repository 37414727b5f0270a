"""Schedules without a database: fire times (DST in New York and Lisbon, both transitions),
what a pass does with due and missed fire times (catch_up), and the checks of a
definition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from jobs.domain import CatchUp
from jobs.exceptions import InvalidInput
from jobs.services import timing as timing_module
from jobs.services.schedules import schedule_request_validate
from jobs.services.timing import Timing, cron_problem, plan, plans, timezone_problem

NEW_YORK = ZoneInfo("America/New_York")
LISBON = ZoneInfo("Europe/Lisbon")


@pytest.fixture(autouse=True)
def _schedules_every_second(settings):
    """These tests fire schedules every second (the default floor, 10 s, is tested below)."""
    settings.JOBS = {**settings.JOBS, "SCHEDULE_MIN_EVERY": 1}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def fire_times(timing: Timing, start: datetime, until: datetime) -> list[datetime]:
    """Every fire time after ``start`` up to ``until``, each computed from the previous one
    alone (as the maintenance pass does from the stored next_fire_at)."""
    found = []
    current = timing.first_after(start)
    while current is not None and current <= until:
        found.append(current)
        current = timing.following(current)
    return found


def local_days(times: list[datetime], zone: ZoneInfo) -> list[str]:
    return [t.astimezone(zone).date().isoformat() for t in times]


# -- DST ------------------------------------------------------------------------------------
def test_new_york_spring_forward__0230_daily_fires_once_at_0300_local():
    """2026-03-08: clocks go from 02:00 EST to 03:00 EDT; 02:30 does not exist that day."""
    daily = Timing(cron="30 2 * * *", timezone="America/New_York")
    times = fire_times(daily, utc(2026, 3, 6, 12), utc(2026, 3, 10, 12))
    assert local_days(times, NEW_YORK) == ["2026-03-07", "2026-03-08", "2026-03-09", "2026-03-10"]
    assert times == [
        utc(2026, 3, 7, 7, 30),  # 02:30 EST
        utc(2026, 3, 8, 7, 0),  # the gap's end: 03:00 EDT, once
        utc(2026, 3, 9, 6, 30),  # 02:30 EDT
        utc(2026, 3, 10, 6, 30),
    ]


def test_new_york_fall_back__0130_daily_fires_once_at_its_first_occurrence():
    """2026-11-01: clocks go from 02:00 EDT back to 01:00 EST; 01:30 happens twice."""
    daily = Timing(cron="30 1 * * *", timezone="America/New_York")
    times = fire_times(daily, utc(2026, 10, 31, 12), utc(2026, 11, 2, 12))
    assert times == [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]  # 01:30 EDT once, then 01:30 EST
    assert local_days(times, NEW_YORK) == ["2026-11-01", "2026-11-02"]


def test_lisbon_spring_forward__0130_daily_fires_once_at_0200_local():
    """2026-03-29: Lisbon goes from 01:00 WET to 02:00 WEST; 01:30 does not exist (02:30 does)."""
    daily = Timing(cron="30 1 * * *", timezone="Europe/Lisbon")
    times = fire_times(daily, utc(2026, 3, 28, 12), utc(2026, 3, 30, 12))
    assert times == [utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30)]
    assert [t.astimezone(LISBON).strftime("%H:%M") for t in times] == ["02:00", "01:30"]
    at_0230 = Timing(cron="30 2 * * *", timezone="Europe/Lisbon")
    assert fire_times(at_0230, utc(2026, 3, 28, 12), utc(2026, 3, 29, 12)) == [utc(2026, 3, 29, 1, 30)]


def test_lisbon_fall_back__0130_daily_fires_once():
    """2026-10-25: Lisbon goes from 02:00 WEST back to 01:00 WET; 01:30 happens twice."""
    daily = Timing(cron="30 1 * * *", timezone="Europe/Lisbon")
    times = fire_times(daily, utc(2026, 10, 24, 12), utc(2026, 10, 26, 12))
    assert times == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]


def test_more_often_than_hourly_follows_real_time_through_the_repeated_hour():
    """Debian cron's rule: sub-hourly expressions are not specially handled, so every
    half hour of the repeated 01:00-02:00 fires (four fire times in two real hours)."""
    half_hourly = Timing(cron="*/30 * * * *", timezone="America/New_York")
    times = fire_times(half_hourly, utc(2026, 11, 1, 4, 45), utc(2026, 11, 1, 6, 59))
    assert times == [utc(2026, 11, 1, 5, 0), utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 0), utc(2026, 11, 1, 6, 30)]
    assert [t.astimezone(NEW_YORK).strftime("%H:%M") for t in times] == ["01:00", "01:30", "01:00", "01:30"]


@pytest.mark.parametrize("minute", [0, 10, 30, 45, 59])
def test_a_schedule_created_inside_the_repeated_hour_fires_after_its_creation(minute):
    """2024-11-03 06:xx UTC is 01:xx EST, the second pass of New York's 01:00-02:00. A
    daily 01:30 fired that day at its first occurrence (05:30 UTC, already past), so the
    first fire time after any instant of the second pass is the next day's 01:30, never
    one in the past; a half-hourly expression fires at the next half hour of real time."""
    instant = utc(2024, 11, 3, 6, minute)
    daily = Timing(cron="30 1 * * *", timezone="America/New_York")
    assert daily.first_after(instant) == utc(2024, 11, 4, 6, 30)
    assert daily.first_from(instant) == utc(2024, 11, 4, 6, 30)
    half_hourly = Timing(cron="*/30 * * * *", timezone="America/New_York")
    expected = utc(2024, 11, 3, 6, 30) if minute < 30 else utc(2024, 11, 3, 7, 0)
    assert half_hourly.first_after(instant) == expected


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/Lisbon", "Australia/Lord_Howe", "UTC"])
@pytest.mark.parametrize("expression", ["30 2 * * *", "30 1 * * *", "0 * * * *", "*/20 * * * *", "15 1-3 * * 0"])
def test_a_year_of_fire_times_is_strictly_increasing_and_one_per_local_day_for_daily(zone, expression):
    """Each fire time computed from the previous one alone (no state), through both
    transitions: never a repeat, never backwards; a daily expression fires exactly once a day."""
    timing = Timing(cron=expression, timezone=zone)
    if expression.count("*") == 3:
        windows = [(utc(2026, 1, 1), utc(2027, 1, 1))]
    else:  # the frequent ones around the transitions only (southern ones: April and October)
        windows = [(utc(2026, 3, 1), utc(2026, 4, 10)), (utc(2026, 9, 25), utc(2026, 11, 5))]
    for start, until in windows:
        assert (found := fire_times(timing, start, until)) == sorted(set(found)) and found
    times = fire_times(timing, *windows[0])
    if expression.startswith("30 ") and expression.endswith("* * *"):
        days = local_days(times, ZoneInfo(zone))
        assert len(days) == len(set(days)) and len(days) >= 364


def test_fire_times_agree_with_cronsims_own_iteration():
    """Stateless chaining (what the pass does) gives what iterating cronsim gives."""
    from cronsim import CronSim

    for expression, zone in (("30 2 * * *", NEW_YORK), ("30 1 * * *", LISBON), ("*/30 * * * *", NEW_YORK)):
        timing = Timing(cron=expression, timezone=str(zone))
        iterator = CronSim(expression, utc(2026, 1, 1).astimezone(zone))
        expected = [next(iterator).astimezone(UTC) for _ in range(2000)]
        assert fire_times(timing, utc(2026, 1, 1), expected[-1]) == expected


# -- intervals ------------------------------------------------------------------------------
def test_every__fire_times_are_a_lattice():
    every = Timing(every=90)
    anchor = utc(2026, 1, 1, 0, 0, 0)
    assert every.following(anchor) == anchor + timedelta(seconds=90)
    assert every.first_after(utc(2026, 1, 1, 0, 2, 0), anchor=anchor) == utc(2026, 1, 1, 0, 3, 0)
    assert every.first_after(utc(2026, 1, 1, 0, 3, 0), anchor=anchor) == utc(2026, 1, 1, 0, 4, 30)
    assert every.first_after(utc(2025, 12, 31, 23, 59, 0), anchor=anchor) == anchor  # the lattice goes back too
    assert every.first_from(anchor, anchor=anchor) == anchor
    assert every.first_after(anchor) == anchor + timedelta(seconds=90)  # no anchor: every seconds from now


def test_every_ignores_dst():
    """Seconds are real seconds: an hourly interval crosses the fall-back hour as two fires."""
    hourly = Timing(every=3600)
    times = fire_times(hourly, utc(2026, 11, 1, 4, 0), utc(2026, 11, 1, 7, 0))
    assert [t.astimezone(NEW_YORK).strftime("%H:%M%z") for t in times] == [
        "01:00-0400",
        "01:00-0500",
        "02:00-0500",
    ]


# -- a pass: due, missed, catch_up --------------------------------------------------------------
def test_plan__fire_times_within_the_grace_each_fire():
    every = Timing(every=1)
    now = utc(2026, 5, 1, 12, 0, 10)
    steps = plan(every, next_fire_at=utc(2026, 5, 1, 12, 0, 5), now=now, grace=60, catch_up=CatchUp.SKIP)
    assert steps.fire == tuple(utc(2026, 5, 1, 12, 0, s) for s in range(5, 11))
    assert steps.missed is None and steps.fold_into is None
    assert steps.next_fire_at == utc(2026, 5, 1, 12, 0, 11)


@pytest.mark.parametrize("catch_up", list(CatchUp))
def test_plan__missed_fire_times_follow_catch_up(catch_up):
    """Down from 11:00 to 12:00: the minutely fire times older than the grace (60 s) are
    missed; 'once' makes one job carrying the latest of them, 'skip' none; the last minute's
    fire times still fire, each."""
    minutely = Timing(cron="* * * * *", timezone="Europe/Lisbon")
    now = utc(2026, 5, 1, 12, 0, 30)
    steps = plan(minutely, next_fire_at=utc(2026, 5, 1, 11, 0), now=now, grace=60, catch_up=catch_up)
    assert steps.missed is not None
    assert steps.missed.count == 60  # 11:00 … 11:59, each more than 60 s old at 12:00:30
    assert (steps.missed.first, steps.missed.last) == (utc(2026, 5, 1, 11, 0), utc(2026, 5, 1, 11, 59))
    assert steps.fire == (utc(2026, 5, 1, 12, 0),)
    assert steps.next_fire_at == utc(2026, 5, 1, 12, 1)
    assert steps.fold_into == (steps.missed.last if catch_up is CatchUp.ONCE else None)
    data = steps.missed.as_data()
    assert data["count"] == 60 and len(data["fire_times"]) == 60
    assert data["last"] == "2026-05-01T11:59:00Z"


def fired(steps) -> list[datetime]:
    """Every fire time the plans make a job for, in order (a fold's included)."""
    return [t for p in steps for t in ((p.fold_into,) if p.fold_into else ()) + p.fire]


@pytest.mark.parametrize("catch_up", list(CatchUp))
def test_plans__a_failed_pass_is_replayed_when_the_schedule_is_tried_again(catch_up):
    """A pass failed on a minutely schedule at 12:00:05 and left it alone for 60 s (the
    default grace too). Tried again at 12:01:06: the failed pass is replayed at 12:00:05,
    so its 12:00 fire time (on time then) fires; then 12:01 fires as usual. Without the
    replay 12:00 would be missed."""
    minutely = Timing(cron="* * * * *", timezone="UTC")
    now, failed_at = utc(2026, 5, 1, 12, 1, 6), utc(2026, 5, 1, 12, 0, 5)
    due = {"now": now, "grace": 60, "catch_up": catch_up}
    steps = plans(minutely, next_fire_at=utc(2026, 5, 1, 12, 0), failed_at=failed_at, **due)
    assert fired(steps) == [utc(2026, 5, 1, 12, 0), utc(2026, 5, 1, 12, 1)]
    assert all(p.missed is None for p in steps) and steps[-1].next_fire_at == utc(2026, 5, 1, 12, 2)
    assert plan(minutely, next_fire_at=utc(2026, 5, 1, 12, 0), **due).missed

    # Failing for an hour: 11:00 was on time when the pass failed; the 60 fire times that came
    # due while it could not fire follow catch_up, as after an outage.
    late = plans(minutely, next_fire_at=utc(2026, 5, 1, 11, 0), failed_at=utc(2026, 5, 1, 11, 0, 5), **due)
    assert late[0].fire == (utc(2026, 5, 1, 11, 0),) and late[0].missed is None
    assert late[1].missed is not None and late[1].missed.count == 60  # 11:01 … 12:00
    assert late[1].fold_into == (utc(2026, 5, 1, 12, 0) if catch_up is CatchUp.ONCE else None)
    assert late[1].fire == (utc(2026, 5, 1, 12, 1),)


@pytest.mark.parametrize("catch_up", list(CatchUp))
def test_plans__a_pass_already_late_when_it_failed_is_replayed_late(catch_up):
    """The clusters were down five hours; the first pass back (12:14) failed on the hourly
    schedule's 07:15. Replayed at 12:14, the five fire times it found were already missed
    then: catch_up decides, exactly as a pass without the failure would have."""
    hourly = Timing(cron="15 * * * *", timezone="UTC")
    now = utc(2026, 5, 1, 12, 15, 10)
    due = {"now": now, "grace": 60, "catch_up": catch_up}
    steps = plans(hourly, next_fire_at=utc(2026, 5, 1, 7, 15), failed_at=utc(2026, 5, 1, 12, 14), **due)
    unfailed = plan(hourly, next_fire_at=utc(2026, 5, 1, 7, 15), **due)
    assert fired(steps) == fired((unfailed,))
    assert fired(steps) == ([utc(2026, 5, 1, 11, 15)] if catch_up is CatchUp.ONCE else []) + [utc(2026, 5, 1, 12, 15)]
    assert steps[0].missed is not None and steps[0].missed.count == 5


def test_plans__without_a_failure_one_plan_and_the_replay_keeps_ends_at_and_the_limit():
    minutely = Timing(cron="* * * * *", timezone="UTC")
    now = utc(2026, 5, 1, 12, 1, 6)
    due = {"now": now, "grace": 60, "catch_up": CatchUp.SKIP}
    assert plans(minutely, next_fire_at=utc(2026, 5, 1, 12, 1), **due) == (
        plan(minutely, next_fire_at=utc(2026, 5, 1, 12, 1), **due),
    )
    ended = plans(
        Timing(every=60),
        next_fire_at=utc(2026, 5, 1, 11),
        failed_at=utc(2026, 5, 1, 11, 0, 5),
        ends_at=utc(2026, 5, 1, 11, 0, 30),
        **due,
    )
    assert fired(ended) == [utc(2026, 5, 1, 11)] and ended[-1].next_fire_at is None
    every_second = Timing(every=1)
    capped = plans(
        every_second, next_fire_at=utc(2026, 5, 1, 12, 0), failed_at=utc(2026, 5, 1, 12, 0, 9), limit=4, **due
    )
    assert len(capped) == 1 and len(capped[0].fire) == 4 and capped[0].next_fire_at == utc(2026, 5, 1, 12, 0, 4)


def test_plan__missed_interval_fire_times_are_counted_not_walked():
    every = Timing(every=1)
    start = utc(2026, 1, 1)
    now = start + timedelta(days=30, seconds=5)
    steps = plan(every, next_fire_at=start, now=now, grace=60, catch_up=CatchUp.ONCE)
    assert steps.missed is not None and steps.missed.count == 30 * 86400 + 5 - 60
    assert steps.missed.last == now - timedelta(seconds=61)
    assert len(steps.missed.listed) == timing_module.MISSED_LISTED
    assert steps.fire[0] == now - timedelta(seconds=60) and steps.fire[-1] == now and len(steps.fire) == 61
    assert steps.fold_into == steps.missed.last


def test_plan__too_many_missed_cron_fire_times_are_counted_as_unknown(monkeypatch):
    monkeypatch.setattr(timing_module, "MISSED_COUNTED", 100)
    minutely = Timing(cron="* * * * *", timezone="UTC")
    steps = plan(minutely, next_fire_at=utc(2026, 1, 1), now=utc(2026, 1, 2), grace=60, catch_up=CatchUp.ONCE)
    assert steps.missed is not None and steps.missed.count is None
    assert steps.missed.last == utc(2026, 1, 1, 23, 58) and steps.fold_into == steps.missed.last
    assert steps.fire == (utc(2026, 1, 1, 23, 59), utc(2026, 1, 2))
    assert steps.next_fire_at == utc(2026, 1, 2, 0, 1)
    recorded = steps.missed.as_data()
    assert recorded["count"] is None and recorded["at_least"] == 100  # what /metrics adds up


def test_plan__ends_at_ends_the_schedule():
    every = Timing(every=10)
    steps = plan(
        every,
        next_fire_at=utc(2026, 1, 1, 0, 0, 0),
        now=utc(2026, 1, 1, 0, 0, 35),
        grace=60,
        catch_up=CatchUp.SKIP,
        ends_at=utc(2026, 1, 1, 0, 0, 25),
    )
    assert steps.fire == (utc(2026, 1, 1, 0, 0, 0), utc(2026, 1, 1, 0, 0, 10), utc(2026, 1, 1, 0, 0, 20))
    assert steps.next_fire_at is None


def test_plan__at_most_limit_fires_per_pass_the_rest_stay_due():
    every = Timing(every=1)
    steps = plan(
        every, next_fire_at=utc(2026, 1, 1), now=utc(2026, 1, 1, 0, 0, 50), grace=60, catch_up=CatchUp.SKIP, limit=7
    )
    assert len(steps.fire) == 7 and steps.next_fire_at == utc(2026, 1, 1, 0, 0, 7)


# -- checking a definition ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("61 * * * *", "Bad minute."),
        ("* 24 * * *", "Bad hour."),
        ("0 0 31 2 *", "Bad day-of-month: no month given has such a day (30 in February, 31 in April)"),
        ("0 0 31 4,6 *", "would never fire"),
        ("0 0 32 * *", "Bad day-of-month."),
        ("* * *", "exactly five fields"),
        ("* * * * * *", "exactly five fields"),
        ("@daily", "exactly five fields"),
        ("", "five fields"),
        (42, "five fields"),
        ("*" + " *" * 300, "at most"),
        ("0\x00 * * * *", "no NUL"),
    ],
)
def test_cron_problem_names_the_fault(expression, message):
    assert message in (cron_problem(expression) or "")


def test_cron_problem__valid_expressions():
    for expression in ("30 2 * * *", "*/5 9-17 * * MON-FRI", "0 0 1 */3 *", "0 12 * * 5L"):
        assert cron_problem(expression) is None


def test_timezone_problem():
    assert timezone_problem("Europe/Lisbon") is None and timezone_problem("UTC") is None
    assert "Unknown time zone" in (timezone_problem("Mars/Olympus_Mons") or "")
    # In the system's zone database but no IANA zone: localtime is each machine's own.
    for name in ("localtime", "Factory", "posixrules"):
        assert "Unknown time zone" in (timezone_problem(name) or ""), name
    assert "Unknown time zone" in (timezone_problem("../../etc/passwd") or "")
    assert timezone_problem(None) and timezone_problem(3)


NOW = utc(2026, 5, 1, 12)
JOB = {"type": "fibonacci", "params": {"n": 10}}


def errors_of(fields, **kwargs) -> dict[str, list[str]]:
    with pytest.raises(InvalidInput) as info:
        schedule_request_validate(fields, now=NOW, **kwargs)
    return info.value.errors


def test_validate__a_good_cron_definition_and_its_first_fire_time():
    request, first = schedule_request_validate(
        {"job": JOB, "cron": "30 2 * * *", "timezone": "America/New_York", "catch_up": "once", "name": "nightly"},
        now=NOW,
    )
    assert request.job.type == "fibonacci" and request.job.params == {"n": 10}
    assert request.timing == Timing(cron="30 2 * * *", timezone="America/New_York")
    assert request.catch_up is CatchUp.ONCE and request.name == "nightly"
    assert first == utc(2026, 5, 2, 6, 30)


def test_validate__every_starts_every_seconds_from_now_or_at_starts_at():
    _, first = schedule_request_validate({"job": JOB, "every": 60, "catch_up": "skip"}, now=NOW)
    assert first == NOW + timedelta(seconds=60)
    later = NOW + timedelta(hours=1)
    _, first = schedule_request_validate(
        {"job": JOB, "every": 60, "catch_up": "skip", "starts_at": later.isoformat()}, now=NOW
    )
    assert first == later
    # A starts_at in the past sets the phase: fire times are starts_at + k·every.
    _, first = schedule_request_validate(
        {"job": JOB, "every": 3600, "catch_up": "skip", "starts_at": "2026-01-01T00:30:00Z"}, now=NOW
    )
    assert first == utc(2026, 5, 1, 12, 30)


def test_validate__cron_without_timezone_is_utc():
    request, first = schedule_request_validate({"job": JOB, "cron": "0 13 * * *", "catch_up": "skip"}, now=NOW)
    assert request.timing.timezone == "UTC" and first == utc(2026, 5, 1, 13)


def test_validate__every_fault_named_at_once():
    errors = errors_of(
        {
            "job": {"type": "fibonacci", "params": {"n": -1}, "run_at": "2030-01-01T00:00:00Z", "x": 1},
            "cron": "61 * * * *",
            "timezone": "Nowhere/City",
        },
        unknown_fields=["colour"],
    )
    assert set(errors) == {"job.params.n", "job.run_at", "job.x", "cron", "timezone", "catch_up", "colour"}
    assert errors["cron"] == ["Bad minute."]
    assert "Unknown time zone" in errors["timezone"][0]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"catch_up": "once"}, "job"),
        ({"job": "fibonacci", "every": 5, "catch_up": "once"}, "job"),
        ({"job": {"type": "nope"}, "every": 5, "catch_up": "once"}, "job.type"),
        ({"job": JOB, "catch_up": "once"}, "cron"),
        ({"job": JOB, "cron": "* * * * *", "every": 5, "catch_up": "once"}, "every"),
        ({"job": JOB, "every": 0, "catch_up": "once"}, "every"),
        ({"job": JOB, "every": True, "catch_up": "once"}, "every"),
        ({"job": JOB, "every": 366 * 86400 + 1, "catch_up": "once"}, "every"),
        ({"job": JOB, "every": 5, "timezone": "UTC", "catch_up": "once"}, "timezone"),
        ({"job": JOB, "every": 5, "catch_up": "sometimes"}, "catch_up"),
        ({"job": JOB, "every": 5, "catch_up": "once", "name": ""}, "name"),
        ({"job": JOB, "every": 5, "catch_up": "once", "metadata": []}, "metadata"),
        ({"job": JOB, "every": 5, "catch_up": "once", "starts_at": "tomorrow"}, "starts_at"),
        ({"job": JOB, "every": 5, "catch_up": "once", "ends_at": "2026-04-01T00:00:00Z"}, "ends_at"),
        ({"job": JOB, "cron": "0 0 1 1 *", "catch_up": "once", "ends_at": "2026-06-01T00:00:00Z"}, "ends_at"),
        (
            {
                "job": JOB,
                "every": 5,
                "catch_up": "once",
                "starts_at": "2026-07-01T00:00:00Z",
                "ends_at": "2026-06-01T00:00:00Z",
            },
            "ends_at",
        ),
        ({"job": JOB, "cron": "0 0 30 2 *", "catch_up": "once"}, "cron"),
    ],
)
def test_validate__the_field_at_fault_is_named(fields, field):
    assert field in errors_of(fields)
