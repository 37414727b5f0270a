"""Thin views: validate input, call one service or selector, shape the output."""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from typing import Any

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs import monitoring, selectors, services
from jobs.conf import settings
from jobs.dashboard.access import is_admin
from jobs.domain import Job, Status
from jobs.exceptions import InvalidInput, JobNotFound, NeverDeleted
from jobs.registry import registry
from jobs.resources import event_output, job_output, job_url

from . import schema
from .base import AuthenticatedApi
from .conditional import job_etag, none_match
from .errors import NotReady
from .metrics import MetricsAccess
from .pagination import after_link, keyset_page
from .permissions import ListsAnyApp, ReadsJobs, WritesJobs
from .schema import (
    CHALLENGE,
    COMMON,
    JOB_ID,
    JSON,
    NOT_MODIFIED,
    UNAVAILABLE,
    header,
    ok,
    polled,
    problems,
)
from .serializers import AfterPageQuery, JobListQuery


def parse_job_id(raw: str) -> uuid.UUID:
    """A malformed id names no job: 404, the same answer as an unknown one."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise JobNotFound() from None


#: The longest ``Retry-After`` for a scheduled job: a client still looks now and then
#: (the job may be cancelled meanwhile) however far away its ``run_at`` is.
MAX_POLL_SECONDS = 300


def poll_after(job: Job, now: datetime) -> int | None:
    """Seconds a poller should wait before asking about ``job`` again (``Retry-After``),
    or None once it is finished: until its ``run_at`` while scheduled (at least 1, at
    most :data:`MAX_POLL_SECONDS`), else ``JOBS_POLL_INTERVAL``."""
    if job.status.is_terminal:
        return None
    if job.status is Status.SCHEDULED and job.run_at is not None:
        return max(1, min(MAX_POLL_SECONDS, math.ceil((job.run_at - now).total_seconds())))
    return int(settings.POLL_INTERVAL)


def poll_headers(request: Request, job: Job, etag: str) -> tuple[dict[str, str], bool]:
    """The headers of an answer about ``job`` that a client polls (``ETag``, and
    ``Retry-After`` while it is not finished), and whether the client's ``If-None-Match``
    already names ``etag`` (answer 304, with the same headers)."""
    headers = {"ETag": etag}
    wait = poll_after(job, timezone.now())
    if wait is not None:
        headers["Retry-After"] = str(wait)
    return headers, none_match(request.headers.get("If-None-Match"), etag)


def create_request(request: Request, fields: tuple[str, ...]) -> dict[str, Any]:
    """A create's body as its service takes it: the known ``fields``, the others named in
    ``unknown_fields`` (each a 400), and the ``Idempotency-Key``."""
    body = request.data
    if not isinstance(body, dict):
        raise InvalidInput({"": ["Send a JSON object."]}, "The request is invalid.")
    return {
        **{name: body[name] for name in fields if name in body},
        "idempotency_key": request.headers.get("Idempotency-Key"),
        "unknown_fields": sorted(name for name in body if name not in fields),
    }


def created_answer(output: dict[str, Any], *, replayed: bool) -> Response:
    """201 with the new resource and its ``Location``; ``Idempotent-Replayed`` when it is the
    answer to the first request with this ``Idempotency-Key``."""
    headers = {"Location": output["url"]}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return Response(output, status=201, headers=headers)


class JobListCreateApi(AuthenticatedApi):
    """`POST` creates a job of any type; `GET` lists this application's jobs, newest first.

    Filters: `status` (several: comma-separated or repeated), `type`, `queue`, `batch`,
    `metadata.<key>=<value>`, `created_after` / `created_before`; `limit`; `cursor` (from
    `next`, also in `Link`).
    An admin token lists every application's jobs, or one application's with `app`.
    """

    name = "Jobs"
    permission_classes = [permissions.IsAuthenticated, ReadsJobs, WritesJobs, ListsAnyApp]

    @extend_schema(
        summary="Create a job",
        description="The body is one of the registered job types (`GET /job-types`), told apart by `type`; "
        "`params` must match that type's schema exactly. Only `type`, `params`, `metadata`, `max_attempts`, "
        "`timeout` and `run_at` are accepted. With an `Idempotency-Key`, a repeat of the same request answers "
        "the job the first one created (`Idempotent-Replayed: true`) instead of creating another.",
        request={JSON: schema.ref("JobCreate")},
        parameters=schema.create_parameters("job"),
        responses={
            **ok(201, "Job", "Created (or replayed, see `Idempotent-Replayed`)."),
            **problems(400, *COMMON, 408, 411, 413, 415, 422, 429),
        },
    )
    def post(self, request: Request) -> Response:
        job, created = services.job_create(app=request.user, **create_request(request, services.JOB_FIELDS))
        return created_answer(job_output(job, request), replayed=not created)

    @extend_schema(
        summary="List this application's jobs",
        description='Newest first, keyset-paginated: follow `next` (or the `Link: <…>; rel="next"` header) '
        "until it is null. Filters combine (AND). Besides the named parameters, `metadata.<key>=<value>` keeps "
        "the jobs whose metadata has that top-level key with that string value (`metadata.run=7` matches "
        '`{"run": "7"}`, not `{"run": 7}`; several allowed); OpenAPI cannot name such a parameter, so it is '
        "described here. Any other query parameter is a 400.",
        parameters=[
            OpenApiParameter(
                "status",
                {"type": "array", "items": schema.ref("JobStatus")},
                OpenApiParameter.QUERY,
                style="form",
                explode=False,
                description="Jobs in any of these statuses: comma-separated (`status=queued,running`); "
                "`status=queued&status=running` works too.",
            ),
            OpenApiParameter(
                "type", {"type": "string", "maxLength": 100}, OpenApiParameter.QUERY, description="Jobs of this type."
            ),
            OpenApiParameter(
                "queue", {"type": "string", "maxLength": 50}, OpenApiParameter.QUERY, description="Jobs of this queue."
            ),
            OpenApiParameter(
                "batch",
                {"type": "string", "format": "uuid"},
                OpenApiParameter.QUERY,
                description="The jobs of this batch (its id, from `POST /batches`).",
            ),
            OpenApiParameter(
                "app",
                {"type": "string", "maxLength": 100},
                OpenApiParameter.QUERY,
                description="Admin tokens: this application's jobs only (403 for any other token).",
            ),
            OpenApiParameter(
                "created_after",
                {"type": "string", "format": "date-time"},
                OpenApiParameter.QUERY,
                description="Jobs created strictly after this instant (ISO 8601 with a time zone).",
            ),
            OpenApiParameter(
                "created_before",
                {"type": "string", "format": "date-time"},
                OpenApiParameter.QUERY,
                description="Jobs created strictly before this instant (ISO 8601 with a time zone).",
            ),
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": settings.MAX_PAGE_SIZE},
                OpenApiParameter.QUERY,
                description=f"Jobs per page (default {settings.PAGE_SIZE}).",
            ),
            OpenApiParameter(
                "cursor", str, OpenApiParameter.QUERY, description="Where the page starts: from `next`, as is."
            ),
            header("Link", '`<next page URL>; rel="next"` when there is a next page.', [200]),
            CHALLENGE,
            UNAVAILABLE,
        ],
        responses={**ok(200, "JobPage", "A page of jobs."), **problems(400, 403, *COMMON)},
    )
    def get(self, request: Request) -> Response:
        query = JobListQuery(data=request.query_params)
        if not query.is_valid():
            raise InvalidInput(query.errors, "The query is invalid.")
        filters = query.validated_data
        page = keyset_page(
            selectors.job_list,
            app=request.user,
            after=filters.get("cursor"),
            limit=filters.get("limit", settings.PAGE_SIZE),
            app_name=filters.get("app"),
            filters=query.list_filters(),
        )
        next_url = page.next_url(request)
        # The same link in a header (RFC 8288), for clients that page without reading the body.
        headers = {"Link": f'<{next_url}>; rel="next"'} if next_url else None
        return Response(
            {"results": [job_output(job, request) for job in page.items], "next": next_url}, headers=headers
        )


class JobDetailApi(AuthenticatedApi):
    """One job: status, progress, result or error, attempts, params and metadata as sent."""

    name = "Job"
    permission_classes = [permissions.IsAuthenticated, ReadsJobs]
    never_deleted = NeverDeleted.job

    @extend_schema(
        summary="Get a job",
        parameters=[JOB_ID, *polled("the job"), CHALLENGE, UNAVAILABLE],
        responses={**ok(200, "Job", "The job."), **NOT_MODIFIED, **problems(404, *COMMON)},
    )
    def get(self, request: Request, job_id: str) -> Response:
        job = selectors.job_get(app=request.user, job_id=parse_job_id(job_id))
        headers, unchanged = poll_headers(request, job, job_etag(job))
        if unchanged:
            return Response(status=304, headers=headers)
        return Response(job_output(job, request), headers=headers)


class JobCancelApi(AuthenticatedApi):
    """Cancel a waiting job (200), or ask a running one to stop (202). 409 once finished."""

    name = "Cancel a job"
    permission_classes = [permissions.IsAuthenticated, WritesJobs]

    @extend_schema(
        summary="Cancel a job",
        request=None,
        parameters=[JOB_ID, CHALLENGE, UNAVAILABLE],
        responses={
            **ok(200, "Job", "Cancelled: it was waiting."),
            **ok(202, "Job", "Cancellation asked: it is running and stops at its next check."),
            **problems(404, 409, *COMMON),
        },
    )
    def post(self, request: Request, job_id: str) -> Response:
        job = services.job_cancel(app=request.user, job_id=parse_job_id(job_id))
        return Response(job_output(job, request), status=200 if job.status.is_terminal else 202)


class JobEventsApi(AuthenticatedApi):
    """The job's append-only history, oldest first."""

    name = "Job events"
    permission_classes = [permissions.IsAuthenticated, ReadsJobs]

    @extend_schema(
        summary="A job's history",
        description=f"Oldest first, {settings.MAX_PAGE_SIZE} entries a page unless `limit` says fewer: follow "
        "`next` (also in `Link`), or ask with `after=<the last id you have>` for what came since. Any other "
        "query parameter is a 400.",
        parameters=[JOB_ID, *schema.after_page("entries"), CHALLENGE, UNAVAILABLE],
        responses={**ok(200, "JobEvents", "A page of the history, oldest first."), **problems(400, 404, *COMMON)},
    )
    def get(self, request: Request, job_id: str) -> Response:
        parsed = parse_job_id(job_id)
        query = AfterPageQuery(data=request.query_params)
        if not query.is_valid():
            raise InvalidInput(query.errors, "The query is invalid.")
        after = query.validated_data.get("after", 0)
        limit = query.validated_data.get("limit", settings.MAX_PAGE_SIZE)
        fetched = selectors.job_events(app=request.user, job_id=parsed, after=after, limit=limit + 1)
        events, next_url = after_link(request, fetched, limit)
        body = {"job": job_url(request, job_id), "events": [event_output(e) for e in events], "next": next_url}
        return Response(body, headers={"Link": f'<{next_url}>; rel="next"'} if next_url else None)


class JobTypesApi(AuthenticatedApi):
    """Every registered job type, with its description, limits and params JSON Schema."""

    name = "Job types"
    permission_classes = [permissions.IsAuthenticated, ReadsJobs]

    @extend_schema(
        summary="The registered job types",
        parameters=[CHALLENGE, UNAVAILABLE],
        responses={**ok(200, "JobTypeList", "Every type, by name."), **problems(*COMMON)},
    )
    def get(self, request: Request) -> Response:
        return Response(
            {
                "results": [
                    {
                        "name": job_type.name,
                        "description": job_type.get_description(),
                        "timeout": job_type.default_timeout(),
                        "max_attempts": job_type.default_max_attempts(),
                        "params_schema": job_type.params_schema(),
                    }
                    for job_type in registry.all()
                ]
            }
        )


class PublicApi(APIView):
    """An endpoint anyone may call: no token is looked at."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]


class HealthApi(PublicApi):
    """Liveness: 200 when the database answers, 503 otherwise. No auth."""

    name = "Health"

    @extend_schema(
        summary="Health",
        parameters=[UNAVAILABLE],
        responses={**ok(200, "Health", "The database answers."), **problems(406, 503)},
    )
    def get(self, request: Request) -> Response:
        selectors.database_health()
        return Response({"status": "ok", "database": "ok"})


class ReadyApi(PublicApi):
    """Readiness: 200 when the database answers, no migration is pending and a django-q2
    cluster reported itself in the last few seconds; else 503 naming what is missing. No auth."""

    name = "Ready"

    @extend_schema(
        summary="Readiness",
        parameters=[UNAVAILABLE],
        responses={
            (200, JSON): OpenApiResponse(
                schema.READY, description="The database answers, no migration is pending, a cluster reports."
            ),
            **problems(406, 503),
        },
    )
    def get(self, request: Request) -> Response:
        checks = monitoring.readiness()
        if any(outcome != "ok" for outcome in checks.values()):
            raise NotReady(checks)
        return Response({"status": "ready", "checks": checks})


class RootApi(APIView):
    """The API's entry points: links to what this caller may use. No token is needed; one
    that is sent is checked (an unknown one is 401, as everywhere) and may add links:
    `metrics` for an admin token or an address in `JOBS_METRICS_ALLOW`, `dashboard` for an
    admin token or a browser logged in with one."""

    name = "Job platform"
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        summary="Entry points",
        parameters=[CHALLENGE, UNAVAILABLE],
        responses={**ok(200, "Root", "Links to the API's entry points."), **problems(401, 406, 429, 503)},
    )
    def get(self, request: Request) -> Response:
        def url(name: str) -> str:
            return request.build_absolute_uri(reverse(name))

        links = {
            "jobs": url("jobs:job-list"),
            "batches": url("jobs:batch-list"),
            "schedules": url("jobs:schedule-list"),
            "job_types": url("jobs:job-types"),
            "health": url("jobs:health"),
            "ready": url("jobs:ready"),
            "login": url("rest_framework:login"),
            "schema": url("schema"),
            "docs": url("docs"),
            "redoc": url("redoc"),
        }
        if MetricsAccess().has_permission(request, self):
            links["metrics"] = url("jobs:metrics")
        if is_admin(request.user):
            links["dashboard"] = url("dashboard:overview")
        return Response(links)
