"""The API's OpenAPI 3.1 document, served at ``/schema`` by drf-spectacular.

The views carry their own description (``extend_schema`` with the helpers below): the
answers each can give, with the problem+json body of every error and the headers. The
shapes are components written here once; the create body is built at every request
from the job-type registry by :func:`add_components` (one schema per type, its
``params`` being that type's ``params_schema()``, exactly what ``/job-types`` shows), so
a new type appears in the document with no code here.
"""

from __future__ import annotations

import enum
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse

from jobs.conf import settings
from jobs.domain import BatchEventKind, BatchState, EventKind, LogLevel, Status
from jobs.registry import registry

from .errors import PROBLEM_JSON, ProblemType

JSON = "application/json"


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "type": [schema["type"], "null"]}


TIMESTAMP = {"type": "string", "format": "date-time"}


def event_of(kinds: type[enum.Enum], note: str = "", **more: dict[str, Any]) -> dict[str, Any]:
    """A history entry whose ``kind`` is one of ``kinds``; ``more``: its other properties
    (each required)."""
    listed = "; ".join(f"`{kind.value}`" for kind in kinds)
    return {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "at": TIMESTAMP,
            "kind": {
                "type": "string",
                "enum": [kind.value for kind in kinds],
                "description": f"What the entry records: {listed}{note}.",
            },
            "data": {"type": "object"},
            **more,
        },
        "required": ["id", "at", "kind", "data", *more],
    }


def page_of(component: str) -> dict[str, Any]:
    """A keyset page of ``component`` items."""
    return {
        "type": "object",
        "properties": {
            "results": {"type": "array", "items": ref(component)},
            "next": {
                "type": ["string", "null"],
                "format": "uri",
                "description": "The next page (also in the `Link` header), or null on the last page.",
            },
        },
        "required": ["results", "next"],
    }


#: What each error status means, wherever it is answered.
PROBLEMS = {
    400: "Invalid input: `errors` names every field at fault (`field`, `pointer`, `detail`).",
    401: "Missing, unknown or revoked token (`WWW-Authenticate: Token`).",
    403: "The token lacks the scope this needs.",
    404: "No such job for this application (unknown id, malformed id, or another application's job).",
    406: "The `Accept` header asks for a representation the API cannot give.",
    408: "The request body stopped arriving (`WEB_BODY_TIMEOUT`).",
    409: "The job is already finished.",
    413: "The request body is over `JOBS_MAX_BODY_BYTES`.",
    411: "A chunked body the server in front did not decode.",
    415: "The request body is not JSON, or not UTF-8.",
    422: "This `Idempotency-Key` was already used with a different request.",
    429: "Too many: the application's unfinished jobs are at `JOBS_MAX_UNFINISHED_PER_APP` (or a rate limit); "
    "retry after `Retry-After` seconds.",
    503: "The database is unavailable; retry after `Retry-After` seconds.",
}

RETRY_AFTER = "Retry-After"

#: The links ``GET /`` always gives.
ROOT_LINKS = ("jobs", "batches", "schedules", "job_types", "health", "ready", "login", "schema", "docs", "redoc")

#: The components every operation refers to (the create body is added per job type).
COMPONENTS: dict[str, dict[str, Any]] = {
    "Problem": {
        "type": "object",
        "description": "An RFC 9457 problem, the body of every error (`application/problem+json`).",
        "properties": {
            "type": {
                "type": "string",
                "enum": ["about:blank", *(problem_type.uri for problem_type in ProblemType)],
                "description": "`urn:jobplatform:problem:<slug>` for the API's own problems, else `about:blank`.",
            },
            "title": {"type": "string", "description": "The status code's phrase."},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
            "instance": {"type": "string", "description": "The request's path."},
            "errors": {"type": "array", "items": ref("FieldError")},
        },
        "required": ["type", "title", "status", "detail"],
        "additionalProperties": True,
    },
    "FieldError": {
        "type": "object",
        "properties": {
            "field": {"type": "string", "description": "Dotted path of the field (`params.n`); empty: the whole body."},
            "pointer": {"type": "string", "description": "JSON Pointer into the request (`#/params/n`)."},
            "detail": {"type": "string"},
        },
        "required": ["field", "pointer", "detail"],
    },
    "JobStatus": {
        "type": "string",
        "enum": [s.value for s in Status],
        "description": "`scheduled` → `queued` → `running` → `succeeded` | `failed` | `cancelled` (final).",
    },
    "Job": {
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "url": {"type": "string", "format": "uri"},
            "type": {"type": "string"},
            "queue": {"type": "string", "description": "The named queue it waits on (`JOBS_QUEUES`)."},
            "params": {"type": "object", "description": "The validated params, as stored."},
            "metadata": {"type": "object", "description": "The metadata sent, unchanged."},
            "status": ref("JobStatus"),
            "progress": {
                "type": ["object", "null"],
                "properties": {"percent": {"type": "number"}, "message": {"type": ["string", "null"]}},
            },
            "result": {"description": "What the job returned (any JSON), once `succeeded`."},
            "error": {
                "type": ["object", "null"],
                "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
                "required": ["type", "message"],
            },
            "attempts": {"type": "integer", "minimum": 0},
            "max_attempts": {"type": "integer", "minimum": 1},
            "timeout": {"type": "integer", "minimum": 1, "description": "Seconds per attempt."},
            "cancel_requested": {"type": "boolean"},
            "callback_url": {"type": ["string", "null"], "description": "Where its completion is POSTed."},
            "checkpoint": {
                "type": ["object", "null"],
                "description": "The latest checkpoint its code stored (`ctx.checkpoint`): the point the next "
                "attempt resumes from; null until there is one.",
                "properties": {"state": {"description": "Any JSON."}, "at": TIMESTAMP},
                "required": ["state", "at"],
            },
            "logs": {
                "type": "object",
                "description": "Its log (`ctx.log`): where to read it, how many of its lines it kept, how many "
                "were dropped over the bounds (`JOBS_LOG_MAX_PER_SECOND`, `JOBS_LOG_MAX_LINES_PER_JOB`); "
                "the notes on lines dropped for the rate are not counted.",
                "properties": {
                    "url": {"type": "string", "format": "uri"},
                    "lines": {"type": "integer", "minimum": 0},
                    "dropped": {"type": "integer", "minimum": 0},
                },
                "required": ["url", "lines", "dropped"],
            },
            "rerun_of": {
                "type": ["string", "null"],
                "format": "uuid",
                "description": "The job this one re-runs (`POST /jobs/{id}/rerun`).",
            },
            "batch_id": {
                "type": ["string", "null"],
                "format": "uuid",
                "description": "The batch it was created in (`POST /batches`), if any.",
            },
            "schedule": {
                "type": ["object", "null"],
                "description": "The schedule that created it and the fire time it stands for (else null).",
                "properties": {
                    "id": {"type": "string", "format": "uuid"},
                    "url": {"type": "string", "format": "uri"},
                    "fire_time": TIMESTAMP,
                },
                "required": ["id", "url", "fire_time"],
            },
            "run_at": nullable(TIMESTAMP),
            "created_at": TIMESTAMP,
            "started_at": nullable(TIMESTAMP),
            "finished_at": nullable(TIMESTAMP),
            "updated_at": TIMESTAMP,
        },
        "required": [
            "id",
            "url",
            "type",
            "queue",
            "params",
            "metadata",
            "status",
            "progress",
            "result",
            "error",
            "attempts",
            "max_attempts",
            "timeout",
            "cancel_requested",
            "callback_url",
            "checkpoint",
            "logs",
            "rerun_of",
            "batch_id",
            "schedule",
            "run_at",
            "created_at",
            "started_at",
            "finished_at",
            "updated_at",
        ],
    },
    "JobPage": page_of("Job"),
    "JobEvent": event_of(EventKind, attempt={"type": "integer", "minimum": 0}),
    "JobEvents": {
        "type": "object",
        "properties": {
            "job": {"type": "string", "format": "uri"},
            "events": {"type": "array", "items": ref("JobEvent")},
            "next": {
                "type": ["string", "null"],
                "format": "uri",
                "description": "The next page (also in `Link`); null on the last one.",
            },
        },
        "required": ["job", "events", "next"],
    },
    "JobLogLine": {
        "type": "object",
        "properties": {
            "id": {"type": "integer", "description": "Increases along the log: `after` takes it."},
            "attempt": {"type": "integer", "minimum": 1},
            "at": TIMESTAMP,
            "level": {"type": "string", "enum": [level.value for level in LogLevel]},
            "message": {"type": "string"},
            "fields": {"type": "object"},
        },
        "required": ["id", "attempt", "at", "level", "message", "fields"],
    },
    "JobLogPage": {
        "type": "object",
        "properties": {
            "job": {"type": "string", "format": "uri"},
            "status": ref("JobStatus"),
            "total": {
                "type": "integer",
                "minimum": 0,
                "description": "Lines the job logged and kept (notes on lines dropped for the rate not counted).",
            },
            "dropped": {"type": "integer", "minimum": 0, "description": "Lines dropped over the bounds."},
            "results": {"type": "array", "items": ref("JobLogLine")},
            "next": {
                "type": ["string", "null"],
                "format": "uri",
                "description": "The next page (also in the `Link` header), or null when there are no more lines yet.",
            },
        },
        "required": ["job", "status", "total", "dropped", "results", "next"],
    },
    "JobRerun": {
        "type": "object",
        "description": "What to change in the re-run; every field is optional.",
        "properties": {
            "params": {"type": "object", "description": "Replaces the params (checked against the type's schema)."},
            "metadata": {"type": ["object", "null"], "description": "Replaces the metadata."},
            "max_attempts": {"type": ["integer", "null"], "minimum": 1, "maximum": settings.MAX_ATTEMPTS_LIMIT},
            "timeout": {
                "type": ["integer", "null"],
                "minimum": 1,
                "maximum": settings.MAX_TIMEOUT,
                "description": "Replaces the seconds per attempt (null: the type's default).",
            },
            "queue": {"type": ["string", "null"], "description": "Replaces the queue (null: `default`)."},
            "callback_url": {
                "type": ["string", "null"],
                "format": "uri",
                "description": "Replaces the callback URL (null: none); its host must be allowed.",
            },
            "resume": {
                "type": "boolean",
                "default": False,
                "description": "Start from the old job's latest checkpoint (`ctx.checkpoint_state`).",
            },
        },
        "additionalProperties": False,
    },
    "JobTypeInfo": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "description": {"type": "string"},
            "timeout": {"type": "integer"},
            "max_attempts": {"type": "integer"},
            "params_schema": {"type": "object", "description": "JSON Schema of the type's `params`."},
        },
        "required": ["name", "description", "timeout", "max_attempts", "params_schema"],
    },
    "JobTypeList": {
        "type": "object",
        "properties": {"results": {"type": "array", "items": ref("JobTypeInfo")}},
        "required": ["results"],
    },
    "Health": {
        "type": "object",
        "properties": {"status": {"const": "ok"}, "database": {"const": "ok"}},
        "required": ["status", "database"],
    },
    "Root": {
        "type": "object",
        "description": "Links to the entry points; `metrics` and `dashboard` only for a caller who may use them.",
        "properties": {
            **{name: {"type": "string", "format": "uri"} for name in ROOT_LINKS},
            "metrics": {
                "type": "string",
                "format": "uri",
                "description": "For an `admin` token, or an address in `JOBS_METRICS_ALLOW`.",
            },
            "dashboard": {
                "type": "string",
                "format": "uri",
                "description": "For an `admin` token, or a browser logged in with one.",
            },
        },
        "required": list(ROOT_LINKS),
        "additionalProperties": False,
    },
}

_BATCH_PROPERTIES: dict[str, Any] = {
    "id": {"type": "string", "format": "uuid"},
    "url": {"type": "string", "format": "uri"},
    "state": {
        "type": "string",
        "enum": [state.value for state in BatchState],
        "description": "`active` while some of its jobs have not ended; `finished` once every one has.",
    },
    "metadata": {"type": "object", "description": "The batch's metadata as sent (each job has its own)."},
    "callback_url": {
        "type": ["string", "null"],
        "description": "POSTed this resource, once, when the batch's last job ends.",
    },
    "total": {"type": "integer", "minimum": 1, "description": "Its jobs."},
    "counts": {
        "type": "object",
        "description": "Its jobs in each status now.",
        "properties": {status.value: {"type": "integer", "minimum": 0} for status in Status},
        "required": [status.value for status in Status],
    },
    "progress": {
        "type": "object",
        "properties": {
            "finished": {"type": "integer", "minimum": 0, "description": "Jobs that ended, whatever the outcome."},
            "total": {"type": "integer", "minimum": 1},
            "percent": {
                "type": "number",
                "minimum": 0,
                "maximum": 100,
                "description": "The mean progress of its jobs; a finished job counts 100.",
            },
        },
        "required": ["finished", "total", "percent"],
    },
    "cancel_requested": {"type": "boolean"},
    "created_at": TIMESTAMP,
    "finished_at": {**nullable(TIMESTAMP), "description": "When its last job ended."},
    "updated_at": TIMESTAMP,
    "jobs_url": {"type": "string", "format": "uri", "description": "`GET /jobs?batch=<id>`: its jobs, filterable."},
    "events_url": {"type": "string", "format": "uri", "description": "The batch's own history."},
}

#: The batch endpoints' shapes.
BATCH_COMPONENTS: dict[str, dict[str, Any]] = {
    "BatchCreate": {
        "type": "object",
        "description": "Jobs to create together, in one transaction or none.",
        "properties": {
            "jobs": {
                "type": "array",
                "items": ref("JobCreate"),
                "minItems": 1,
                "maxItems": settings.BATCH_MAX,
                "description": "Job bodies, each exactly as `POST /jobs` takes it (`JOBS_BATCH_MAX` at most).",
            },
            "metadata": {
                "type": ["object", "null"],
                "description": f"Any JSON object up to {settings.MAX_METADATA_BYTES} bytes; returned unchanged.",
            },
            "callback_url": {
                "type": ["string", "null"],
                "format": "uri",
                "description": "POSTed the batch resource, signed, once, when its last job ends; its host must be in "
                "`JOBS_CALLBACK_ALLOWED_HOSTS`.",
            },
        },
        "required": ["jobs"],
        "additionalProperties": False,
    },
    "BatchSummary": {
        "type": "object",
        "description": "A batch without its jobs (a list's item; also what its callback is POSTed).",
        "properties": _BATCH_PROPERTIES,
        "required": list(_BATCH_PROPERTIES),
    },
    "Batch": {
        "type": "object",
        "description": "A batch with a page of its jobs, newest first.",
        "properties": {**_BATCH_PROPERTIES, "jobs": ref("JobPage")},
        "required": [*_BATCH_PROPERTIES, "jobs"],
    },
    "BatchPage": page_of("BatchSummary"),
    "BatchEvent": event_of(BatchEventKind),
    "BatchEvents": {
        "type": "object",
        "properties": {
            "batch": {"type": "string", "format": "uri"},
            "events": {"type": "array", "items": ref("BatchEvent")},
        },
        "required": ["batch", "events"],
    },
}


def job_create_variant(job_type: Any) -> dict[str, Any]:
    """The create body for one job type: its name and its own ``params`` schema."""
    return {
        "type": "object",
        "title": job_type.name,
        "description": job_type.get_description(),
        "properties": {
            "type": {"const": job_type.name},
            "params": job_type.params_schema(),
            "metadata": {
                "type": ["object", "null"],
                "description": f"Any JSON object up to {settings.MAX_METADATA_BYTES} bytes and "
                f"{settings.MAX_JSON_DEPTH} levels deep (no NUL characters); returned unchanged.",
            },
            "max_attempts": {
                "type": ["integer", "null"],
                "minimum": 1,
                "maximum": settings.MAX_ATTEMPTS_LIMIT,
                "description": f"Default {job_type.default_max_attempts()}.",
            },
            "timeout": {
                "type": ["integer", "null"],
                "minimum": 1,
                "maximum": settings.MAX_TIMEOUT,
                "description": f"Seconds per attempt; default {job_type.default_timeout()}.",
            },
            "run_at": {
                "type": ["string", "null"],
                "format": "date-time",
                "description": "Start no earlier than this (ISO 8601 with a time zone, from 2000 to "
                f"{settings.MAX_SCHEDULE_DAYS} days ahead); stored as that instant.",
            },
            "queue": {
                "type": ["string", "null"],
                "description": "A named queue of `JOBS_QUEUES` (default `default`).",
            },
            "callback_url": {
                "type": ["string", "null"],
                "format": "uri",
                "description": "POSTed the job resource, signed, when the job ends; its host must be "
                "in `JOBS_CALLBACK_ALLOWED_HOSTS`.",
            },
        },
        "required": ["type", "params"],
        "additionalProperties": False,
    }


def job_create_components() -> dict[str, dict[str, Any]]:
    """``JobCreate``: a union over the registered job types, told apart by ``type``."""
    variants = {f"JobCreate_{job_type.name}": job_create_variant(job_type) for job_type in registry.all()}
    return {
        **variants,
        "JobCreate": {
            "description": "A new job: `type` names a registered job type (`GET /job-types`) and "
            "decides the schema of `params`. No other fields are accepted.",
            "oneOf": [ref(name) for name in variants],
            "discriminator": {
                "propertyName": "type",
                "mapping": {job_type.name: ref(f"JobCreate_{job_type.name}")["$ref"] for job_type in registry.all()},
            },
        },
    }


#: The request bodies an operation cannot go without.
CREATE_BODIES = (ref("JobCreate"), ref("BatchCreate"), ref("ScheduleCreate"), ref("ScheduleChange"))


def add_components(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular post-processing hook: the shared shapes and the per-type create bodies;
    the token schemes as alternatives."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    from .schedules import COMPONENTS as SCHEDULE_COMPONENTS  # the views module imports this one

    schemas.update(COMPONENTS)
    schemas.update(BATCH_COMPONENTS)
    schemas.update(SCHEDULE_COMPONENTS)
    schemas.update(job_create_components())
    result["components"]["schemas"] = dict(sorted(schemas.items()))
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if operation.get("requestBody", {}).get("content", {}).get(JSON, {}).get("schema") in CREATE_BODIES:
                operation["requestBody"]["required"] = True
            # drf-spectacular puts the names of one extension in one requirement, which
            # would mean "both at once"; each is enough on its own.
            if "security" in operation:
                split: list[dict[str, Any]] = []
                for requirement in operation["security"]:
                    split.extend([{name: scopes} for name, scopes in requirement.items()] or [{}])
                operation["security"] = split
    return result


#: Operation ids by (path, method); the singular aliases (/job…) add ``_singular``.
OPERATION_IDS = {
    ("/", "get"): "root",
    ("/jobs", "get"): "job_list",
    ("/jobs", "post"): "job_create",
    ("/jobs/{job_id}", "get"): "job_get",
    ("/jobs/{job_id}/cancel", "post"): "job_cancel",
    ("/jobs/{job_id}/events", "get"): "job_events",
    ("/jobs/{job_id}/logs", "get"): "job_logs",
    ("/jobs/{job_id}/rerun", "post"): "job_rerun",
    ("/batches", "get"): "batch_list",
    ("/batches", "post"): "batch_create",
    ("/batches/{batch_id}", "get"): "batch_get",
    ("/batches/{batch_id}/cancel", "post"): "batch_cancel",
    ("/batches/{batch_id}/events", "get"): "batch_events",
    ("/schedules", "get"): "schedule_list",
    ("/schedules", "post"): "schedule_create",
    ("/schedules/{schedule_id}", "get"): "schedule_get",
    ("/schedules/{schedule_id}", "patch"): "schedule_change",
    ("/schedules/{schedule_id}/events", "get"): "schedule_events",
    ("/job-types", "get"): "job_type_list",
    ("/health", "get"): "health",
}


def canonical_path(path: str) -> str:
    """``/jobs/…`` for a singular alias ``/job/…``; any other path unchanged."""
    return "/jobs" + path[len("/job") :] if path == "/job" or path.startswith("/job/") else path


class JobsAutoSchema(AutoSchema):
    """Stable operation ids and tags: the aliases are the same operations under another path."""

    def get_operation_id(self) -> str:
        canonical = canonical_path(self.path)
        name = OPERATION_IDS.get((canonical, self.method.lower()))
        if name is None:
            return super().get_operation_id()
        return name + ("_singular" if canonical != self.path else "")

    def get_tags(self) -> list[str]:
        path = canonical_path(self.path)
        if path.startswith("/jobs"):
            return ["jobs"]
        return [path.strip("/").split("/")[0] or "root"]

    def get_description(self) -> str:
        description = super().get_description() or ""
        if canonical_path(self.path) != self.path:
            description += f"\n\nThe same as `{canonical_path(self.path)}` (the singular form answers too)."
        return description


# -- what the views declare -------------------------------------------------------------------
def header(name: str, description: str, codes: list[int], schema: Any = str) -> OpenApiParameter:
    return OpenApiParameter(name, schema, OpenApiParameter.HEADER, description=description, response=codes)


def problems(*codes: int) -> dict[Any, OpenApiResponse]:
    return {(code, PROBLEM_JSON): OpenApiResponse(ref("Problem"), description=PROBLEMS[code]) for code in codes}


def ok(code: int, component: str, description: str) -> dict[Any, OpenApiResponse]:
    return {(code, JSON): OpenApiResponse(ref(component), description=description)}


#: The ``{job_id}`` of every job URL.
JOB_ID = OpenApiParameter(
    "job_id",
    {"type": "string", "format": "uuid"},
    OpenApiParameter.PATH,
    description="The job's id (a malformed one names no job: 404).",
)

#: /ready's answer (its 503 is a Problem with the same ``checks``).
READY = {
    "type": "object",
    "properties": {
        "status": {"const": "ready"},
        "checks": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "required": ["status", "checks"],
}


def after_page(items: str) -> list[OpenApiParameter]:
    """A page of a history or a log, oldest first: ``after`` an entry's id, ``limit`` (of
    ``items``), and the ``Link`` to the next page."""
    return [
        OpenApiParameter(
            "after",
            {"type": "integer", "minimum": 0},
            OpenApiParameter.QUERY,
            description=f"Only {items} with a greater id (default 0: from the first).",
        ),
        OpenApiParameter(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": settings.MAX_PAGE_SIZE},
            OpenApiParameter.QUERY,
            description=f"{items.capitalize()} per page (default {settings.MAX_PAGE_SIZE}).",
        ),
        header("Link", '`<next page URL>; rel="next"` when there is a next page.', [200]),
    ]


def polled(what: str) -> list[OpenApiParameter]:
    """A resource a client polls while its job runs (``what`` it is): ``If-None-Match`` in,
    ``ETag`` and ``Retry-After`` out, on 200 and 304 alike."""
    return [
        OpenApiParameter(
            "If-None-Match",
            str,
            OpenApiParameter.HEADER,
            description=f"The `ETag` of an earlier answer: 304 with no body while {what} has not changed.",
        ),
        header("ETag", f"Changes whenever {what} does.", [200, 304]),
        header(
            "Retry-After",
            "Seconds before it is worth asking again, while the job is not finished (absent once it is): "
            "until `run_at` for a scheduled job (at most 300), else `JOBS_POLL_INTERVAL`.",
            [200, 304],
            int,
        ),
    ]


#: The 304 of a polled resource.
NOT_MODIFIED = {304: OpenApiResponse(description="Not modified since the `ETag` given in `If-None-Match`.")}

#: Every operation that needs a token can answer these.
COMMON = (401, 406, 503)
UNAVAILABLE = header(RETRY_AFTER, "Seconds to wait before retrying.", [503], int)
CHALLENGE = header("WWW-Authenticate", "`Token`: how to authenticate.", [401])


def create_parameters(resource: str) -> list[OpenApiParameter]:
    """The headers of a create (``POST /jobs``, ``POST /batches``): ``Idempotency-Key`` in,
    ``Location`` and ``Idempotent-Replayed`` out, and those of every token operation."""
    return [
        OpenApiParameter(
            "Idempotency-Key",
            {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$"},
            OpenApiParameter.HEADER,
            description="1 to 255 printable ASCII characters; makes retries safe (per application).",
        ),
        header("Location", f"The new {resource}'s URL.", [201]),
        header(
            "Idempotent-Replayed",
            "`true` when this is the answer to an earlier request with the same `Idempotency-Key`.",
            [201],
            {"type": "string", "enum": ["true"]},
        ),
        CHALLENGE,
        UNAVAILABLE,
    ]


class AppTokenScheme(OpenApiAuthenticationExtension):
    """Our token authentication: ``Authorization: Token <token>`` or ``Bearer <token>``.

    Two schemes, either one satisfies an operation: ``tokenAuth`` (an API key whose value
    is the whole header, ``Token <token>``, DRF's convention, which a generated client can
    send as is) and ``bearerAuth`` (HTTP bearer, which Swagger UI and most generators fill
    in from the bare token).
    """

    target_class = "jobs.api.auth.AppTokenAuthentication"
    name = ["tokenAuth", "bearerAuth"]

    def get_security_definition(self, auto_schema: Any) -> list[dict[str, Any]]:
        return [
            {
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": "`Token <token>` (the token `manage.py issue_token` printed).",
            },
            {"type": "http", "scheme": "bearer", "description": "The same token, as `Bearer <token>`."},
        ]


class AppSessionScheme(OpenApiAuthenticationExtension):
    """The browsable API's session (log in at ``/api-auth/login/`` with a token)."""

    target_class = "jobs.api.auth.AppSessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        from django.conf import settings as django_settings

        return {
            "type": "apiKey",
            "in": "cookie",
            "name": django_settings.SESSION_COOKIE_NAME,
            "description": "The browsable API's session, after logging in with a token at `/api-auth/login/` "
            "(CSRF token required on unsafe methods).",
        }
