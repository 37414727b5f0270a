"""Schedules: create, change (pause, resume, end, redefine), and fire.

- **create** and **change** check every field at once (one
  :class:`~jobs.exceptions.InvalidInput`; the job body by the create validation itself,
  its faults named under ``job.``), read the database's clock, and store the definition,
  its next fire time and a history entry in one transaction.
- **fire** (:func:`schedules_fire_due`, run by every cluster's maintenance pass): each due
  schedule is taken with ``FOR UPDATE SKIP LOCKED``; its due fire times (computed from
  its definition and the database's ``now()``, :mod:`.timing`) become jobs through the
  create statement ``job_create``, in the same transaction as the schedule's advance to
  its next fire time and its history entries. The unique index ``jobs_job_schedule_fire``
  refuses a second job for a (schedule, fire time), and the advance is fenced by the next
  fire time the pass started from: each fire time makes at most one job, whatever the
  number of clusters, their crashes or their clocks; a crash mid-pass rolls the schedule
  back to due, and the next pass fires it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from dataclasses import fields as dataclass_fields
from datetime import datetime, timedelta
from typing import Any

from jobs import db
from jobs.conf import settings
from jobs.domain import App, CatchUp, Job, Schedule, ScheduleEventKind, ScheduleState, iso_utc
from jobs.exceptions import (
    AlreadyExists,
    DatabaseUnavailable,
    InvalidInput,
    ScheduleEnded,
    ScheduleNotFound,
    TooManySchedules,
    error_payload,
    unknown_field,
)

from . import lifecycle
from .timing import MISSED_LISTED, Missed, Timing, cron_problem, plans, timezone_problem
from .validation import JOB_FIELDS, JobRequest, job_request_validate, metadata_errors, parse_instant

logger = logging.getLogger(__name__)

#: The fields of a create request (the API refuses any other).
SCHEDULE_FIELDS = ("name", "job", "cron", "timezone", "every", "catch_up", "metadata", "starts_at", "ends_at")
#: The fields a change may send.
CHANGE_FIELDS = (*SCHEDULE_FIELDS, "state")
NAME_MAX = 200
#: The longest ``every``: as far ahead as a job's ``run_at`` may be.
EVERY_MAX_DAYS = 366
DEFAULT_TIMEZONE = "UTC"


@dataclass(frozen=True)
class ScheduleRequest:
    """A schedule definition that passed every check: what is stored is exactly this."""

    name: str | None
    job: JobRequest
    timing: Timing
    catch_up: CatchUp
    metadata: dict[str, Any]
    starts_at: datetime | None
    ends_at: datetime | None


# -- checking a definition ------------------------------------------------------------------
#: What an unknown field of a schedule's job is told (run_at is the schedule's to decide).
_UNKNOWN_JOB_FIELD = unknown_field("a schedule's job", [name for name in JOB_FIELDS if name != "run_at"])


def _job_body(value: Any, errors: dict[str, list[str]], app: App | None) -> JobRequest | None:
    """The job each fire creates, checked as ``POST /jobs`` checks it for ``app`` (faults
    under ``job.``)."""
    if not isinstance(value, dict):
        errors["job"] = ["A job body, as POST /jobs takes it: an object with type, params, …"]
        return None
    fields = {name: value[name] for name in JOB_FIELDS if name in value and name != "run_at"}
    unknown = [name for name in value if name not in JOB_FIELDS]
    problems: dict[str, list[str]] = {}
    if value.get("run_at") is not None:
        problems["run_at"] = ["A schedule decides when its jobs run: leave run_at out (see starts_at)."]
    try:
        request = job_request_validate(fields, app=app, unknown_fields=unknown, unknown=_UNKNOWN_JOB_FIELD)
    except InvalidInput as exc:
        problems.update(exc.errors)
        request = None
    errors.update({f"job.{name}" if name else "job": messages for name, messages in problems.items()})
    return request if not problems else None


def _name(value: Any, errors: dict[str, list[str]]) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= NAME_MAX or "\x00" in value:
        errors["name"] = [f"Give text of 1 to {NAME_MAX} characters (no NUL), or null."]
        return None
    return value


def _metadata(value: Any, errors: dict[str, list[str]]) -> dict[str, Any]:
    value = {} if value is None else value
    errors.update(metadata_errors(value))
    return value if isinstance(value, dict) else {}


def _catch_up(value: Any, errors: dict[str, list[str]]) -> CatchUp | None:
    try:
        return CatchUp(value)
    except ValueError:
        choice = (
            "what fire times missed while no cluster ran become: 'once' (one job for all of them) or 'skip' (none)."
        )
        errors["catch_up"] = [f"Required: {choice}" if value is None else f"Must be 'once' or 'skip': {choice}"]
        return None


def _every(value: Any, errors: dict[str, list[str]]) -> int | None:
    low, high = int(settings.SCHEDULE_MIN_EVERY), EVERY_MAX_DAYS * 86400
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        errors["every"] = [f"Give whole seconds from {low} to {high} ({EVERY_MAX_DAYS} days)."]
        return None
    return value


def _timing(fields: Mapping[str, Any], errors: dict[str, list[str]]) -> Timing | None:
    cron, zone, every = fields.get("cron"), fields.get("timezone"), fields.get("every")
    if cron is None and every is None:
        errors["cron"] = ["Give cron (five fields, with timezone) or every (seconds)."]
        return None
    if cron is not None and every is not None:
        errors["every"] = ["Give either cron (with timezone) or every, not both."]
        return None
    if every is not None:
        if zone is not None:
            errors["timezone"] = ["A time zone goes with cron only; every counts real seconds."]
        seconds = _every(every, errors)
        return Timing(every=seconds) if seconds is not None and zone is None else None
    zone = DEFAULT_TIMEZONE if zone is None else zone
    problems = {"cron": cron_problem(cron), "timezone": timezone_problem(zone)}
    errors.update({name: [problem] for name, problem in problems.items() if problem})
    return Timing(cron=cron, timezone=zone) if not any(problems.values()) else None


def _instant(name: str, value: Any, errors: dict[str, list[str]]) -> datetime | None:
    if value is None:
        return None
    try:
        when = parse_instant(value)
    except ValueError as exc:
        errors[name] = [str(exc)]
        return None
    if when.year < 2000:
        errors[name] = ["Give a time from 2000-01-01 on."]
        return None
    return when


def _first_fire(
    timing: Timing, *, now: datetime, starts_at: datetime | None, anchor: datetime | None = None
) -> datetime | None:
    """The first fire time after ``now`` (at or after ``starts_at`` when that is later). An
    interval keeps the phase of ``starts_at``, else of ``anchor`` (the schedule's previous
    lattice), else starts ``every`` seconds from now."""
    if starts_at is not None and starts_at > now:
        return timing.first_from(starts_at)
    return timing.first_after(now, anchor=starts_at or anchor)


def _first_fire_errors(
    first: datetime | None, request: ScheduleRequest, now: datetime, errors: dict[str, list[str]]
) -> None:
    ends_at = request.ends_at
    if ends_at is not None and ends_at <= now:
        errors["ends_at"] = ["Give a time in the future."]
    elif ends_at is not None and request.starts_at is not None and ends_at <= request.starts_at:
        errors["ends_at"] = ["Give a time after starts_at."]
    elif first is None:
        errors["cron"] = ["This expression matches no time from now on (in 50 years)."]
    elif ends_at is not None and first > ends_at:
        errors["ends_at"] = [f"The first fire time would be {first.isoformat()}, after ends_at: no job would run."]


def _starts_at_errors(starts_at: datetime | None, now: datetime, errors: dict[str, list[str]]) -> None:
    if starts_at is not None and starts_at > now + timedelta(days=settings.MAX_SCHEDULE_DAYS):
        errors["starts_at"] = [f"Give a time at most {settings.MAX_SCHEDULE_DAYS} days from now."]


def _unknown(fields: Iterable[str], what: str, accepted: Sequence[str]) -> dict[str, list[str]]:
    return dict.fromkeys(fields, unknown_field(what, accepted))


def _stored_job(job: dict[str, Any]) -> JobRequest:
    """The job request a schedule stores (as it passed the create validation): the fields
    JobRequest has now (one added later takes its default; one dropped is ignored)."""
    known = {f.name for f in dataclass_fields(JobRequest)} - {"run_at"}
    return JobRequest(**{name: value for name, value in job.items() if name in known}, run_at=None)


def _job_data(request: JobRequest) -> dict[str, Any]:
    return {name: value for name, value in asdict(request).items() if name != "run_at"}


def definition_data(schedule: Schedule | ScheduleRequest) -> dict[str, Any]:
    """A definition as the history records it (the API's field names)."""
    if isinstance(schedule, Schedule):
        timing, job = Timing.of(schedule), schedule.job
    else:
        timing, job = schedule.timing, _job_data(schedule.job)
    return {
        "name": schedule.name,
        "cron": timing.cron,
        "timezone": timing.timezone,
        "every": timing.every,
        "catch_up": schedule.catch_up.value if schedule.catch_up else None,
        "job": job,
        "metadata": schedule.metadata,
        "starts_at": _iso(schedule.starts_at),
        "ends_at": _iso(schedule.ends_at),
    }


_iso = iso_utc


def schedule_request_validate(
    fields: Mapping[str, Any], *, now: datetime, app: App | None = None, unknown_fields: Iterable[str] = ()
) -> tuple[ScheduleRequest, datetime]:
    """Check a whole create request (``fields``: any of :data:`SCHEDULE_FIELDS`) of the
    application ``app``, naming every fault at once; returns the request and its first fire
    time (after ``now``, the database's clock)."""
    errors: dict[str, list[str]] = {}
    if "job" not in fields or fields["job"] is None:
        errors["job"] = ["Required: the job each fire time creates, as POST /jobs takes it."]
        job = None
    else:
        job = _job_body(fields["job"], errors, app)
    name = _name(fields.get("name"), errors)
    timing = _timing(fields, errors)
    catch_up = _catch_up(fields.get("catch_up"), errors)
    metadata = _metadata(fields.get("metadata"), errors)
    starts_at = _instant("starts_at", fields.get("starts_at"), errors)
    ends_at = _instant("ends_at", fields.get("ends_at"), errors)
    _starts_at_errors(starts_at, now, errors)
    unknown = _unknown(unknown_fields, "a schedule", SCHEDULE_FIELDS)
    if errors or unknown or job is None or timing is None or catch_up is None:
        raise InvalidInput({**unknown, **errors}, "The request is invalid.")
    request = ScheduleRequest(name, job, timing, catch_up, metadata, starts_at, ends_at)
    first = _first_fire(timing, now=now, starts_at=starts_at)
    _first_fire_errors(first, request, now, errors)
    if errors or first is None:
        raise InvalidInput(errors, "The request is invalid.")
    return request, first


# -- create -----------------------------------------------------------------------------------
def schedule_create(*, app: App, fields: Mapping[str, Any], unknown_fields: Iterable[str] = ()) -> Schedule:
    """Create a schedule (``fields``: any of :data:`SCHEDULE_FIELDS`): validated, its first
    fire time computed against the database's clock, stored with its ``created`` event."""
    max_schedules = int(settings.MAX_SCHEDULES_PER_APP)
    with db.atomic():
        now = _clock()
        request, first = schedule_request_validate(fields, now=now, app=app, unknown_fields=unknown_fields)
        if max_schedules > 0:
            db.fetch_one("schedule_lock_app", app_id=app.id)
        row = db.fetch_one(
            "schedule_create",
            id=uuid.uuid4(),
            app_id=app.id,
            **_columns(request),
            next_fire_at=first,
            max_schedules=max_schedules,
            data={**definition_data(request), "next_fire_at": iso_utc(first)},
        )
    if row is None:
        raise TooManySchedules(
            f"The application already has {settings.MAX_SCHEDULES_PER_APP} schedules that are not ended "
            "(JOBS_MAX_SCHEDULES_PER_APP); end one first."
        )
    return Schedule.from_row(row)


def _clock() -> datetime:
    row = db.fetch_one("schedule_clock")
    assert row is not None
    return row["now"]


def _columns(request: ScheduleRequest) -> dict[str, Any]:
    return {
        "name": request.name,
        "cron": request.timing.cron,
        "timezone": request.timing.timezone,
        "every_seconds": request.timing.every,
        "catch_up": request.catch_up.value,
        "job": _job_data(request.job),
        "metadata": request.metadata,
        "starts_at": request.starts_at,
        "ends_at": request.ends_at,
    }


# -- change -----------------------------------------------------------------------------------
_TIMING_FIELDS = ("cron", "timezone", "every")


def _merged_timing(current: Schedule, patch: Mapping[str, Any]) -> dict[str, Any]:
    """The timing fields after a change: giving ``every`` switches to an interval (no time
    zone), giving ``cron`` to a cron expression (in the given time zone, else the current
    one, else UTC); giving both is refused by the check that follows."""
    merged = {"cron": current.cron, "timezone": current.timezone, "every": current.every_seconds}
    if patch.get("every") is not None:
        merged.update(cron=None, timezone=None)
    if patch.get("cron") is not None:
        merged.update(every=None)
    merged.update({name: patch[name] for name in _TIMING_FIELDS if name in patch})
    return merged


def schedule_change(
    *, app: App, schedule_id: uuid.UUID, fields: Mapping[str, Any], unknown_fields: Iterable[str] = ()
) -> Schedule:
    """Change an application's schedule (``fields``: any of :data:`CHANGE_FIELDS`): pause
    (``state: paused``), resume (``active``), end (``ended``, for good), or a new
    definition, checked as on create. Its next fire time is computed again (against the
    database's clock) when its timing or ``starts_at`` changes or it resumes; the fire times
    of a pause are not fired. 409 once ended."""
    with db.atomic():
        row = db.fetch_one("schedule_lock", id=schedule_id, app_id=app.id)
        if row is None:
            raise ScheduleNotFound()
        current, now = Schedule.from_row(row), row["db_now"]
        if current.state is ScheduleState.ENDED:
            raise ScheduleEnded("The schedule is ended and can no longer change.", schedule_state="ended")
        updated, events = _changed(current, fields, app=app, now=now, unknown_fields=unknown_fields)
        if not events:
            return current
        stored = db.fetch_one("schedule_update", id=schedule_id, **updated)
        assert stored is not None  # locked above, and not ended
        db.fetch_one("schedule_events_insert", id=schedule_id, events=events)
    return Schedule.from_row(stored)


def _changed(
    current: Schedule, patch: Mapping[str, Any], *, app: App, now: datetime, unknown_fields: Iterable[str]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The schedule's new columns and the history entries of a change (none: no change)."""
    errors: dict[str, list[str]] = {}
    state = current.state
    if "state" in patch:
        try:
            state = ScheduleState(patch["state"])
        except ValueError:
            errors["state"] = ["Give active (resume), paused (pause) or ended (end it for good)."]
    job = _job_body(patch["job"], errors, app) if "job" in patch else _stored_job(current.job)
    name = _name(patch["name"], errors) if "name" in patch else current.name
    catch_up = _catch_up(patch["catch_up"], errors) if "catch_up" in patch else current.catch_up
    metadata = _metadata(patch["metadata"], errors) if "metadata" in patch else current.metadata
    starts_at = _instant("starts_at", patch["starts_at"], errors) if "starts_at" in patch else current.starts_at
    ends_at = _instant("ends_at", patch["ends_at"], errors) if "ends_at" in patch else current.ends_at
    if "starts_at" in patch:
        _starts_at_errors(starts_at, now, errors)
    timing_given = any(name in patch for name in _TIMING_FIELDS)
    timing = _timing(_merged_timing(current, patch), errors) if timing_given else Timing.of(current)
    unknown = _unknown(unknown_fields, "a schedule's change", CHANGE_FIELDS)
    if errors or unknown or job is None or timing is None or catch_up is None:
        raise InvalidInput({**unknown, **errors}, "The request is invalid.")
    request = ScheduleRequest(name, job, timing, catch_up, metadata, starts_at, ends_at)

    retimed = (timing_given and timing != Timing.of(current)) or starts_at != current.starts_at
    resumed = current.state is ScheduleState.PAUSED and state is ScheduleState.ACTIVE
    next_fire_at = current.next_fire_at
    if state is not ScheduleState.ENDED and (retimed or resumed):
        # An interval resumed unchanged keeps its phase (its lattice through next_fire_at).
        anchor = current.next_fire_at if timing.every is not None and timing == Timing.of(current) else None
        next_fire_at = _first_fire(timing, now=now, starts_at=starts_at, anchor=anchor)
    if state is not ScheduleState.ENDED and (retimed or resumed or ends_at != current.ends_at):
        _first_fire_errors(next_fire_at, request, now, errors)
    if errors or (next_fire_at is None and state is not ScheduleState.ENDED):
        raise InvalidInput(errors, "The request is invalid.")

    before, after = definition_data(current), definition_data(request)
    changed = {name: value for name, value in after.items() if before[name] != value}
    events: list[dict[str, Any]] = []
    if changed:
        data: dict[str, Any] = {"changed": changed}
        if next_fire_at != current.next_fire_at and state is ScheduleState.ACTIVE and not resumed:
            data["next_fire_at"] = _iso(next_fire_at)
        events.append({"kind": ScheduleEventKind.CHANGED.value, "data": data})
    if state is not current.state:
        kind = {
            ScheduleState.PAUSED: ScheduleEventKind.PAUSED,
            ScheduleState.ACTIVE: ScheduleEventKind.RESUMED,
            ScheduleState.ENDED: ScheduleEventKind.ENDED,
        }[state]
        data = {"reason": "requested"} if state is ScheduleState.ENDED else {}
        if resumed:
            data["next_fire_at"] = _iso(next_fire_at)
        events.append({"kind": kind.value, "data": data})
    columns = {**_columns(request), "state": state.value}
    columns["next_fire_at"] = None if state is ScheduleState.ENDED else next_fire_at
    return columns, events


# -- fire (the maintenance pass) ---------------------------------------------------------------
#: How long a schedule a pass failed on is left alone before the next try.
FAILED_RETRY_SECONDS = 60


class _Moved(Exception):
    """The schedule changed under this pass (its next fire time is no longer the one the
    pass started from): its transaction is rolled back, nothing is fired."""


def schedules_fire_due(*, limit: int, grace: float | None = None) -> int:
    """Fire up to ``limit`` due schedules, each in its own transaction (taken with ``FOR
    UPDATE SKIP LOCKED``, so passes in many clusters share the work); returns how many jobs
    they created. ``grace``: ``JOBS_SCHEDULE_MISFIRE_GRACE`` unless given."""
    grace = float(settings.SCHEDULE_MISFIRE_GRACE if grace is None else grace)
    created = 0
    for _ in range(limit):
        row = None
        try:
            with db.atomic():
                row = db.fetch_one("schedule_take_due")
                if row is None:
                    break
                schedule, failed_at = Schedule.from_row(row), row["failed_at"]
                jobs = _fire(schedule, now=row["db_now"], grace=grace, limit=limit, failed_at=failed_at)
        except _Moved:
            continue
        except DatabaseUnavailable:
            raise
        except Exception as exc:  # this schedule's own fault: it must not stop the others
            if row is None:
                raise
            logger.exception("schedule %s could not fire; tried again in %ss", row["id"], FAILED_RETRY_SECONDS)
            db.fetch_one(
                "schedule_fire_failed",
                id=row["id"],
                expected=row["next_fire_at"],
                failed_at=row["db_now"],
                delay=FAILED_RETRY_SECONDS,
                error=error_payload(exc),
            )
            continue
        for job in jobs:  # logged once committed
            lifecycle.job_created_log(job)
        created += len(jobs)
    return created


def _missed_data(fire_times: list[datetime]) -> dict[str, Any]:
    return Missed(len(fire_times), fire_times[0], fire_times[-1], tuple(fire_times[:MISSED_LISTED])).as_data()


def _fire(
    schedule: Schedule, *, now: datetime, grace: float, limit: int, failed_at: datetime | None = None
) -> list[Job]:
    """One due schedule, inside the caller's transaction: its jobs, its history entries and
    its advance to the next fire time (or its end). ``failed_at``: when a pass first failed
    on its next fire time (this pass replays that one first, see :func:`timing.plans`)."""
    assert schedule.next_fire_at is not None
    steps_in_order = plans(
        Timing.of(schedule),
        next_fire_at=schedule.next_fire_at,
        now=now,
        grace=grace,
        catch_up=schedule.catch_up,
        ends_at=schedule.ends_at,
        limit=limit,
        failed_at=failed_at,
    )
    request = _stored_job(schedule.job)
    jobs: list[Job] = []
    refused: list[datetime] = []
    events: list[dict[str, Any]] = []

    def insert(fire_time: datetime) -> Job | None:
        try:
            with db.atomic():  # a savepoint: a refused duplicate leaves the rest standing
                job = lifecycle.job_insert(
                    app_id=schedule.app_id, request=request, schedule_id=schedule.id, fire_time=fire_time
                )
        except AlreadyExists:
            logger.warning("schedule %s: fire time %s already has its job", schedule.id, fire_time.isoformat())
            return None
        if job is None:
            refused.append(fire_time)
        else:
            jobs.append(job)
        return job

    for steps in steps_in_order:
        if steps.missed is not None and steps.fold_into is not None:
            job = insert(steps.fold_into)
            if job is not None:
                missed = steps.missed.as_data()
                data = {"fire_time": iso_utc(steps.fold_into), "job_id": str(job.id), "missed": missed}
                events.append({"kind": ScheduleEventKind.FOLDED.value, "data": data})
        elif steps.missed is not None:
            data = {"reason": "catch_up", "missed": steps.missed.as_data()}
            events.append({"kind": ScheduleEventKind.SKIPPED.value, "data": data})
        for fire_time in steps.fire:
            job = insert(fire_time)
            if job is not None:
                data = {"fire_time": iso_utc(fire_time), "job_id": str(job.id)}
                events.append({"kind": ScheduleEventKind.FIRED.value, "data": data})
    steps = steps_in_order[-1]
    if refused:
        # The application is at JOBS_MAX_UNFINISHED_PER_APP: back-pressure, as on create.
        data = {"reason": "too_many_unfinished", "missed": _missed_data(refused)}
        events.append({"kind": ScheduleEventKind.SKIPPED.value, "data": data})
    if steps.next_fire_at is None:
        reason = "ends_at" if schedule.ends_at is not None else "no_more_fire_times"
        events.append({"kind": ScheduleEventKind.ENDED.value, "data": {"reason": reason}})
    # A replay the pass's limit cut short has fire times left that were on time then.
    unfinished = failed_at is not None and steps.next_fire_at is not None and steps.next_fire_at <= failed_at
    advanced = db.fetch_one(
        "schedule_advance",
        id=schedule.id,
        expected=schedule.next_fire_at,
        next_fire_at=steps.next_fire_at,
        failed_at=failed_at if unfinished else None,
        last_fire_at=jobs[-1].fire_time if jobs else None,  # made in order of fire time
        last_job_id=jobs[-1].id if jobs else None,
        created=len(jobs),
    )
    if advanced is None:
        raise _Moved()
    if events:
        db.fetch_one("schedule_events_insert", id=schedule.id, events=events)
    return jobs
