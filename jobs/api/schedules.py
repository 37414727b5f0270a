"""Schedules over HTTP: create, list, read, change (pause, resume, end, redefine) and
their history. Thin views, as for jobs: validate the query, call one service or selector,
shape the output (``jobs.resources.schedule_output``). A schedule is never deleted:
``DELETE`` is 405 like everywhere; ``PATCH {"state": "ended"}`` ends it.

The OpenAPI shapes of these endpoints are :data:`COMPONENTS` (added to the document by
``jobs.api.schema.add_components``).
"""

from __future__ import annotations

import uuid
from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.response import Response

from jobs import selectors, services
from jobs.conf import settings
from jobs.domain import CatchUp, ScheduleEventKind, ScheduleState
from jobs.exceptions import InvalidInput, NeverDeleted, ScheduleNotFound
from jobs.resources import schedule_event_output, schedule_output, schedule_url

from .base import AuthenticatedApi
from .errors import PROBLEM_JSON
from .pagination import decode_cursor, keyset_page
from .permissions import ReadsJobs, WritesJobs
from .schema import CHALLENGE, JSON, TIMESTAMP, UNAVAILABLE, event_of, header, nullable, ok, page_of, ref


def parse_schedule_id(raw: str) -> uuid.UUID:
    """A malformed id names no schedule: 404, the same answer as an unknown one."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise ScheduleNotFound() from None


def _body(request: Request) -> dict[str, Any]:
    body = request.data
    if not isinstance(body, dict):
        raise InvalidInput({"": ["Send a JSON object."]}, "The request is invalid.")
    return body


def _query(request: Request, allowed: tuple[str, ...]) -> dict[str, str]:
    """The query parameters, each at most once in effect (the last); any other name is a
    400 (a typo must not silently list everything), ``format`` aside (DRF's own)."""
    values: dict[str, str] = {}
    errors: dict[str, list[str]] = {}
    for name in request.query_params:
        value = request.query_params.getlist(name)[-1]
        if "\x00" in name or "\x00" in value:
            errors[name.replace("\x00", "\\0")] = ["May not contain the NUL character."]
        elif name == "format":
            continue
        elif name not in allowed:
            errors[name] = [f"Unknown query parameter; use {', '.join(allowed)}."]
        elif value != "":
            values[name] = value
    if errors:
        raise InvalidInput(errors, "The query is invalid.")
    return values


def _limit(raw: str | None, errors: dict[str, list[str]]) -> int:
    if raw is None:
        return int(settings.PAGE_SIZE)
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= settings.MAX_PAGE_SIZE):
        errors["limit"] = [f"Must be a whole number from 1 to {settings.MAX_PAGE_SIZE}."]
        return 0
    return int(raw)


def _next_link(request: Request, cursor: str | None) -> tuple[str | None, dict[str, str] | None]:
    if cursor is None:
        return None, None
    params = request.query_params.copy()
    params["cursor"] = cursor
    url = request.build_absolute_uri(f"{request.path}?{params.urlencode()}")
    return url, {"Link": f'<{url}>; rel="next"'}


# -- OpenAPI ------------------------------------------------------------------------------------
#: What each error status means on these endpoints.
PROBLEMS = {
    400: "Invalid input: `errors` names every field at fault (`field`, `pointer`, `detail`): `cron` with the "
    "cron library's message, `timezone` unknown, `job.params.n` as on `POST /jobs`.",
    401: "Missing, unknown or revoked token (`WWW-Authenticate: Token`).",
    403: "The token lacks the scope this needs (`jobs:read` to read, `jobs:write` to create or change).",
    404: "No such schedule for this application (unknown id, malformed id, or another application's).",
    406: "The `Accept` header asks for a representation the API cannot give.",
    409: "The schedule is ended (it never changes again), or the application has `JOBS_MAX_SCHEDULES_PER_APP` "
    "schedules not ended.",
    413: "The request body is over `JOBS_MAX_BODY_BYTES`.",
    415: "The request body is not JSON, or not UTF-8.",
    429: "A rate limit was reached; retry after `Retry-After` seconds.",
    503: "The database is unavailable; retry after `Retry-After` seconds.",
}


def problems(*codes: int) -> dict[Any, OpenApiResponse]:
    return {(code, PROBLEM_JSON): OpenApiResponse(ref("Problem"), description=PROBLEMS[code]) for code in codes}


COMMON = (401, 403, 406, 429, 503)

SCHEDULE_ID = OpenApiParameter(
    "schedule_id",
    {"type": "string", "format": "uuid"},
    OpenApiParameter.PATH,
    description="The schedule's id (a malformed one names no schedule: 404).",
)
LIMIT = OpenApiParameter(
    "limit",
    {"type": "integer", "minimum": 1, "maximum": settings.MAX_PAGE_SIZE},
    OpenApiParameter.QUERY,
    description=f"Items per page (default {settings.PAGE_SIZE}).",
)
CURSOR = OpenApiParameter("cursor", str, OpenApiParameter.QUERY, description="Where the page starts: from `next`.")
LINK = header("Link", '`<next page URL>; rel="next"` when there is a next page.', [200])

_DEFINITION: dict[str, Any] = {
    "name": {"type": ["string", "null"], "minLength": 1, "maxLength": 200, "description": "For people; optional."},
    "cron": {
        "type": ["string", "null"],
        "maxLength": 200,
        "description": "Five fields (minute hour day-of-month month day-of-week, cronsim's syntax), evaluated "
        "in `timezone`; or give `every`.",
        "examples": ["30 2 * * *"],
    },
    "timezone": {
        "type": ["string", "null"],
        "description": "An IANA time zone for `cron` (default `UTC`); DST as Debian's cron: see docs/schedules.md.",
        "examples": ["Europe/Lisbon"],
    },
    "every": {
        "type": ["integer", "null"],
        "minimum": 1,
        "maximum": 366 * 86400,
        "description": "Seconds between fire times (at least `JOBS_SCHEDULE_MIN_EVERY`); or give `cron`.",
    },
    "catch_up": {
        "type": "string",
        "enum": [c.value for c in CatchUp],
        "description": "Fire times missed while no cluster could fire them (more than "
        "`JOBS_SCHEDULE_MISFIRE_GRACE` seconds late): `once`, one job for all of them; `skip`, none. "
        "Recorded in the history either way.",
    },
    "metadata": {"type": ["object", "null"], "description": "The schedule's own metadata (the job has its own)."},
    "starts_at": {
        **nullable(TIMESTAMP),
        "description": "No fire time before this; an interval's fire times are `starts_at + k·every`.",
    },
    "ends_at": {**nullable(TIMESTAMP), "description": "No fire time after this; then the schedule ends."},
}

#: The shapes of the schedule endpoints, added to the document's components.
COMPONENTS: dict[str, dict[str, Any]] = {
    "ScheduleState": {
        "type": "string",
        "enum": [s.value for s in ScheduleState],
        "description": "`active` fires; `paused` fires nothing until resumed; `ended` never fires or changes again.",
    },
    "ScheduleCreate": {
        "type": "object",
        "description": "A job body fired on a calendar (`cron` in `timezone`) or at an interval (`every`). "
        "No other fields are accepted.",
        "properties": {
            "job": {
                **ref("JobCreate"),
                "description": "The job each fire time creates, exactly as `POST /jobs` takes it, checked the same "
                "way; without `run_at` (the schedule decides when).",
            },
            **_DEFINITION,
        },
        "required": ["job", "catch_up"],
        "additionalProperties": False,
    },
    "ScheduleChange": {
        "type": "object",
        "description": "Any of the definition's fields (checked as on create; `job` replaces the whole job "
        "body), and `state`: `paused` to pause, `active` to resume, `ended` to end it for good.",
        "properties": {
            "state": ref("ScheduleState"),
            "job": {**ref("JobCreate"), "description": "A new job body, whole."},
            **_DEFINITION,
        },
        "additionalProperties": False,
    },
    "Schedule": {
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "url": {"type": "string", "format": "uri"},
            "name": {"type": ["string", "null"]},
            "state": ref("ScheduleState"),
            "cron": {"type": ["string", "null"]},
            "timezone": {"type": ["string", "null"]},
            "every": {"type": ["integer", "null"]},
            "catch_up": {"type": "string", "enum": [c.value for c in CatchUp]},
            "job": {"type": "object", "description": "The validated job body each fire time creates a job from."},
            "metadata": {"type": "object"},
            "starts_at": nullable(TIMESTAMP),
            "ends_at": nullable(TIMESTAMP),
            "next_fire_at": {**nullable(TIMESTAMP), "description": "When it fires next (null unless `active`)."},
            "last_fire_at": {**nullable(TIMESTAMP), "description": "The fire time of its latest job."},
            "last_job": {
                "type": ["object", "null"],
                "properties": {
                    "id": {"type": "string", "format": "uuid"},
                    "url": {"type": "string", "format": "uri"},
                    "status": ref("JobStatus"),
                },
                "required": ["id", "url", "status"],
            },
            "jobs_created": {"type": "integer", "minimum": 0},
            "failing": {
                "type": ["object", "null"],
                "description": "A maintenance pass could not fire it (its history's `failed` entries say why): "
                "since when, and when it is tried again (`retry_at` null: by the next pass); null when it is not "
                "failing.",
                "properties": {"since": TIMESTAMP, "retry_at": nullable(TIMESTAMP)},
                "required": ["since", "retry_at"],
            },
            "events": {"type": "string", "format": "uri", "description": "Its history."},
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
            "ended_at": nullable(TIMESTAMP),
        },
        "required": [
            "id",
            "url",
            "name",
            "state",
            "cron",
            "timezone",
            "every",
            "catch_up",
            "job",
            "metadata",
            "starts_at",
            "ends_at",
            "next_fire_at",
            "last_fire_at",
            "last_job",
            "jobs_created",
            "failing",
            "events",
            "created_at",
            "updated_at",
            "ended_at",
        ],
    },
    "SchedulePage": page_of("Schedule"),
    "ScheduleEvent": event_of(
        ScheduleEventKind,
        " (docs/schedules.md)",
        job={"type": ["string", "null"], "format": "uri", "description": "The job the entry is about."},
    ),
    "ScheduleEvents": {
        "type": "object",
        "properties": {
            "schedule": {"type": "string", "format": "uri"},
            "events": {"type": "array", "items": ref("ScheduleEvent")},
            "next": {"type": ["string", "null"], "format": "uri", "description": "Older entries, or null."},
        },
        "required": ["schedule", "events", "next"],
    },
}


# -- views ----------------------------------------------------------------------------------------
class ScheduleListCreateApi(AuthenticatedApi):
    """`POST` creates a schedule; `GET` lists this application's schedules, newest first.

    Filter: `state`; `limit`; `cursor` (from `next`, also in `Link`). An admin token lists
    every application's.
    """

    name = "Schedules"
    permission_classes = [permissions.IsAuthenticated, ReadsJobs, WritesJobs]

    @extend_schema(
        summary="Create a schedule",
        description="A `job` body (as `POST /jobs` takes it) fired at every fire time of `cron` (five fields, "
        "in `timezone`) or every `every` seconds, from `starts_at` to `ends_at`. Each fire time creates exactly one "
        "job (naming this schedule and its fire time), whatever the number of clusters; `catch_up` says what the "
        "fire times missed while no cluster ran become.",
        request={JSON: ref("ScheduleCreate")},
        parameters=[header("Location", "The new schedule's URL.", [201]), CHALLENGE, UNAVAILABLE],
        responses={**ok(201, "Schedule", "Created."), **problems(400, *COMMON, 409, 413, 415)},
    )
    def post(self, request: Request) -> Response:
        body = _body(request)
        schedule = services.schedule_create(
            app=request.user,
            fields={name: body[name] for name in services.SCHEDULE_FIELDS if name in body},
            unknown_fields=sorted(name for name in body if name not in services.SCHEDULE_FIELDS),
        )
        output = schedule_output(schedule, request)
        return Response(output, status=201, headers={"Location": output["url"]})

    @extend_schema(
        summary="List this application's schedules",
        description='Newest first, keyset-paginated: follow `next` (or `Link: <…>; rel="next"`) until it is null.',
        parameters=[
            OpenApiParameter("state", ref("ScheduleState"), OpenApiParameter.QUERY, description="Only these."),
            LIMIT,
            CURSOR,
            LINK,
            CHALLENGE,
            UNAVAILABLE,
        ],
        responses={**ok(200, "SchedulePage", "A page of schedules."), **problems(400, *COMMON)},
    )
    def get(self, request: Request) -> Response:
        query = _query(request, ("state", "limit", "cursor"))
        errors: dict[str, list[str]] = {}
        limit = _limit(query.get("limit"), errors)
        state = None
        if "state" in query:
            try:
                state = ScheduleState(query["state"])
            except ValueError:
                errors["state"] = [f"Use one of: {', '.join(s.value for s in ScheduleState)}."]
        cursor = None
        if "cursor" in query:
            try:
                cursor = decode_cursor(query["cursor"])
            except ValueError as exc:
                errors["cursor"] = [str(exc)]
        if errors:
            raise InvalidInput(errors, "The query is invalid.")
        page = keyset_page(selectors.schedule_list, app=request.user, state=state, after=cursor, limit=limit)
        next_url, headers = _next_link(request, page.next_cursor)
        results = [schedule_output(schedule, request) for schedule in page.items]
        return Response({"results": results, "next": next_url}, headers=headers)


class ScheduleDetailApi(AuthenticatedApi):
    """One schedule: its definition, state, next and last fire time, last job and its status.
    `PATCH` pauses, resumes, ends or redefines it."""

    name = "Schedule"
    permission_classes = [permissions.IsAuthenticated, ReadsJobs, WritesJobs]
    never_deleted = NeverDeleted.schedule

    @extend_schema(
        summary="Get a schedule",
        parameters=[SCHEDULE_ID, CHALLENGE, UNAVAILABLE],
        responses={**ok(200, "Schedule", "The schedule."), **problems(404, *COMMON)},
    )
    def get(self, request: Request, schedule_id: str) -> Response:
        schedule = selectors.schedule_get(app=request.user, schedule_id=parse_schedule_id(schedule_id))
        return Response(schedule_output(schedule, request))

    @extend_schema(
        summary="Change a schedule",
        description='`{"state": "paused"}` pauses it (it fires nothing), `{"state": "active"}` resumes it (from the '
        'next fire time after now: the paused ones are not fired), `{"state": "ended"}` ends it for good. Any '
        "definition field changes it, checked as on create; its next fire time is computed again when its timing "
        "changes. An ended schedule answers 409.",
        request={JSON: ref("ScheduleChange")},
        parameters=[SCHEDULE_ID, CHALLENGE, UNAVAILABLE],
        responses={**ok(200, "Schedule", "Changed (or unchanged)."), **problems(400, 404, 409, *COMMON, 413, 415)},
    )
    def patch(self, request: Request, schedule_id: str) -> Response:
        parsed = parse_schedule_id(schedule_id)
        body = _body(request)
        schedule = services.schedule_change(
            app=request.user,
            schedule_id=parsed,
            fields={name: body[name] for name in services.CHANGE_FIELDS if name in body},
            unknown_fields=sorted(name for name in body if name not in services.CHANGE_FIELDS),
        )
        # As the reader sees it, with its last job's status.
        return Response(schedule_output(selectors.schedule_get(app=request.user, schedule_id=schedule.id), request))


class ScheduleEventsApi(AuthenticatedApi):
    """The schedule's append-only history, newest first: each fire time's job (`fired`),
    the missed ones folded into one job or skipped, and every change."""

    name = "Schedule events"
    permission_classes = [permissions.IsAuthenticated, ReadsJobs]

    @extend_schema(
        summary="A schedule's history",
        description="Newest first, paged by `cursor` (from `next`). An entry about a job links it (`job`).",
        parameters=[SCHEDULE_ID, LIMIT, CURSOR, LINK, CHALLENGE, UNAVAILABLE],
        responses={**ok(200, "ScheduleEvents", "A page of the history."), **problems(400, 404, *COMMON)},
    )
    def get(self, request: Request, schedule_id: str) -> Response:
        parsed = parse_schedule_id(schedule_id)
        query = _query(request, ("limit", "cursor"))
        errors: dict[str, list[str]] = {}
        limit = _limit(query.get("limit"), errors)
        before = None
        if "cursor" in query:
            raw = query["cursor"]
            if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):
                errors["cursor"] = ["Invalid cursor; use the 'next' link of a previous page."]
            else:
                before = int(raw)
        if errors:
            raise InvalidInput(errors, "The query is invalid.")
        events = selectors.schedule_events(app=request.user, schedule_id=parsed, before=before, limit=limit + 1)
        cursor = str(events[limit - 1].id) if len(events) > limit else None
        next_url, headers = _next_link(request, cursor)
        return Response(
            {
                "schedule": schedule_url(request, parsed),
                "events": [schedule_event_output(event, request) for event in events[:limit]],
                "next": next_url,
            },
            headers=headers,
        )
