"""Thin views: validate input, call one service or selector, shape the output."""

from __future__ import annotations

import uuid

from django.urls import reverse
from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs import selectors, services
from jobs.conf import settings
from jobs.exceptions import InvalidInput, JobNotFound
from jobs.registry import registry

from .pagination import keyset_page
from .permissions import ListsAnyApp, ReadsJobs, WritesJobs
from .serializers import JobListQuery, event_output, job_output, job_url


def parse_job_id(raw: str) -> uuid.UUID:
    """A malformed id names no job: 404, the same answer as an unknown one."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise JobNotFound() from None


class JobListCreateApi(APIView):
    """`POST` creates a job of any type; `GET` lists this application's jobs, newest first.

    Filters: `status`, `type`, `metadata.<key>=<value>`; `limit`; `cursor` (from `next`).
    An admin token lists every application's jobs, or one application's with `app`.
    """

    name = "Jobs"
    permission_classes = [permissions.IsAuthenticated, ReadsJobs, WritesJobs, ListsAnyApp]

    def post(self, request: Request) -> Response:
        body = request.data
        if not isinstance(body, dict):
            raise InvalidInput({"": ["Send a JSON object."]}, "The request is invalid.")
        job, created = services.job_create(
            app=request.user,
            **{name: body[name] for name in services.JOB_FIELDS if name in body},
            idempotency_key=request.headers.get("Idempotency-Key"),
            unknown_fields=sorted(name for name in body if name not in services.JOB_FIELDS),
        )
        output = job_output(job, request)
        headers = {"Location": output["url"]}
        if not created:
            headers["Idempotent-Replayed"] = "true"  # the answer to the first request with this key
        return Response(output, status=201, headers=headers)

    def get(self, request: Request) -> Response:
        query = JobListQuery(data=request.query_params)
        if not query.is_valid():
            raise InvalidInput(query.errors, "The query is invalid.")
        filters = query.validated_data
        page = keyset_page(
            selectors.job_list,
            app=request.user,
            status=filters.get("status"),
            type=filters.get("type"),
            metadata=filters["metadata"],
            after=filters.get("cursor"),
            limit=filters.get("limit", settings.PAGE_SIZE),
            app_name=filters.get("app"),
        )
        return Response({"results": [job_output(job, request) for job in page.items], "next": page.next_url(request)})


class JobDetailApi(APIView):
    """One job: status, progress, result or error, attempts, params and metadata as sent."""

    name = "Job"
    permission_classes = [permissions.IsAuthenticated, ReadsJobs]

    def get(self, request: Request, job_id: str) -> Response:
        job = selectors.job_get(app=request.user, job_id=parse_job_id(job_id))
        # Every visible change moves updated_at, so it makes a cheap validator for pollers.
        etag = f'"{job.updated_at.timestamp():.6f}"'
        if etag in [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")]:
            return Response(status=304, headers={"ETag": etag})
        return Response(job_output(job, request), headers={"ETag": etag})


class JobCancelApi(APIView):
    """Cancel a waiting job (200), or ask a running one to stop (202). 409 once finished."""

    name = "Cancel a job"
    permission_classes = [permissions.IsAuthenticated, WritesJobs]

    def post(self, request: Request, job_id: str) -> Response:
        job = services.job_cancel(app=request.user, job_id=parse_job_id(job_id))
        return Response(job_output(job, request), status=200 if job.status.is_terminal else 202)


class JobEventsApi(APIView):
    """The job's append-only history, oldest first."""

    name = "Job events"
    permission_classes = [permissions.IsAuthenticated, ReadsJobs]

    def get(self, request: Request, job_id: str) -> Response:
        events = selectors.job_events(app=request.user, job_id=parse_job_id(job_id))
        return Response({"job": job_url(request, job_id), "events": [event_output(e) for e in events]})


class JobTypesApi(APIView):
    """Every registered job type, with its description, limits and params JSON Schema."""

    name = "Job types"
    permission_classes = [permissions.IsAuthenticated, ReadsJobs]

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


class HealthApi(APIView):
    """Liveness and readiness: 200 when the database answers, 503 otherwise. No auth."""

    name = "Health"

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]

    def get(self, request: Request) -> Response:
        selectors.database_health()
        return Response({"status": "ok", "database": "ok"})


class RootApi(APIView):
    """The API's entry points."""

    name = "Job platform"

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]

    def get(self, request: Request) -> Response:
        def url(name: str) -> str:
            return request.build_absolute_uri(reverse(name))

        return Response(
            {
                "jobs": url("jobs:job-list"),
                "job_types": url("jobs:job-types"),
                "health": url("jobs:health"),
                "login": url("rest_framework:login"),
            }
        )
