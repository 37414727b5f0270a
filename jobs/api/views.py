"""Thin views: validate input, call one service or selector, shape the output."""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from datetime import datetime

from django.db import connection
from django.urls import reverse
from django.utils import timezone
from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from jobs import db, monitoring, selectors, services
from jobs.conf import settings
from jobs.domain import Status
from jobs.exceptions import DatabaseUnavailable, InvalidInput, JobNotFound
from jobs.registry import registry

from .errors import PROBLEM_JSON, problem
from .serializers import JobCreateInput, event_output, job_output, job_url

IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")


def parse_job_id(raw: str) -> uuid.UUID:
    """A malformed id names no job: 404, the same answer as an unknown one."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise JobNotFound() from None


def encode_cursor(created_at: datetime, job_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{job_id}".encode()).decode().rstrip("=")


def decode_cursor(raw: str) -> tuple[datetime, uuid.UUID]:
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        created, job_id = text.split("|")
        when = datetime.fromisoformat(created)
        if when.tzinfo is None:
            raise ValueError
        return when, uuid.UUID(job_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput({"cursor": ["Invalid cursor; use the 'next' link of a previous page."]}) from None


class JobListCreateApi(APIView):
    """`POST` creates a job of any type; `GET` lists this application's jobs, newest first.

    Filters: `status`, `type`, `metadata.<key>=<value>`; `limit`; `cursor` (from `next`).
    """

    def post(self, request: Request) -> Response:
        key = request.headers.get("Idempotency-Key")
        if key is not None and not IDEMPOTENCY_KEY.fullmatch(key):
            raise InvalidInput({"Idempotency-Key": ["Use 1 to 255 printable ASCII characters."]})
        data = JobCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        run_at = values.get("run_at")
        delay = max(0.0, (run_at - timezone.now()).total_seconds()) if run_at else 0.0
        job_request = {
            "app": request.user,
            "type": values["type"],
            "params": values["params"],
            "metadata": values["metadata"],
            "max_attempts": values.get("max_attempts"),
            "timeout": values.get("timeout"),
            "delay": delay,
        }
        if key is None:
            job, created = services.job_create(**job_request), True
        else:
            job, created = services.job_create_idempotent(
                idempotency_key=key, fingerprint=services.request_fingerprint(**values), **job_request
            )
        body = job_output(job, request)
        headers = {"Location": body["url"]}
        if not created:
            headers["Idempotent-Replayed"] = "true"  # the answer to the first request with this key
        return Response(body, status=201, headers=headers)

    def get(self, request: Request) -> Response:
        query = request.query_params
        errors: dict[str, list[str]] = {}
        for name, value in query.items():
            if "\x00" in name or "\x00" in value:
                errors[name.replace("\x00", "\\0")] = ["May not contain the NUL character."]
        status = None
        if query.get("status"):
            try:
                status = Status(query["status"])
            except ValueError:
                errors["status"] = [f"Must be one of: {', '.join(s.value for s in Status)}."]
        limit = settings.PAGE_SIZE
        if query.get("limit"):
            try:
                limit = int(query["limit"])
                if not 1 <= limit <= settings.MAX_PAGE_SIZE:
                    raise ValueError
            except ValueError:
                errors["limit"] = [f"Must be a whole number from 1 to {settings.MAX_PAGE_SIZE}."]
        metadata = {key[len("metadata.") :]: value for key, value in query.items() if key.startswith("metadata.")}
        if errors:
            raise InvalidInput(errors, "The query is invalid.")
        before = decode_cursor(query["cursor"]) if query.get("cursor") else None
        jobs = selectors.job_list(
            app=request.user,
            status=status,
            type=query.get("type") or None,
            metadata=metadata or None,
            before=before,
            limit=limit + 1,
        )
        next_url = None
        if len(jobs) > limit:
            jobs = jobs[:limit]
            params = query.copy()
            params["cursor"] = encode_cursor(jobs[-1].created_at, jobs[-1].id)
            next_url = request.build_absolute_uri(f"{request.path}?{params.urlencode()}")
        return Response({"results": [job_output(job, request) for job in jobs], "next": next_url})


class JobDetailApi(APIView):
    """One job: status, progress, result or error, attempts, params and metadata as sent."""

    def get(self, request: Request, job_id: str) -> Response:
        job = selectors.job_get(app=request.user, job_id=parse_job_id(job_id))
        # Every visible change moves updated_at, so it makes a cheap validator for pollers.
        etag = f'"{job.updated_at.timestamp():.6f}"'
        if etag in [tag.strip() for tag in request.headers.get("If-None-Match", "").split(",")]:
            return Response(status=304, headers={"ETag": etag})
        return Response(job_output(job, request), headers={"ETag": etag})


class JobCancelApi(APIView):
    """Cancel a waiting job (200), or ask a running one to stop (202). 409 once finished."""

    def post(self, request: Request, job_id: str) -> Response:
        job = services.job_cancel(app=request.user, job_id=parse_job_id(job_id))
        return Response(job_output(job, request), status=200 if job.status.is_terminal else 202)


class JobEventsApi(APIView):
    """The job's append-only history, oldest first."""

    def get(self, request: Request, job_id: str) -> Response:
        events = selectors.job_events(app=request.user, job_id=parse_job_id(job_id))
        return Response({"job": job_url(request, job_id), "events": [event_output(e) for e in events]})


class JobTypesApi(APIView):
    """Every registered job type, with its description, limits and params JSON Schema."""

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
    """Liveness: 200 when the database answers, 503 otherwise. No auth."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]

    def get(self, request: Request) -> Response:
        try:
            db.fetch_one("health_check")
        except DatabaseUnavailable:
            connection.close()
            raise
        return Response({"status": "ok", "database": "ok"})


class ReadyApi(APIView):
    """Readiness: 200 when the database answers, no migration is pending and a django-q2
    cluster reported itself in the last few seconds; else 503 naming what is missing. No auth."""

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]

    def get(self, request: Request) -> Response:
        checks = monitoring.readiness()
        failing = [name for name, outcome in checks.items() if outcome != "ok"]
        if not failing:
            return Response({"status": "ready", "checks": checks})
        body = problem(
            503,
            f"Not ready: {'; '.join(f'{name} {checks[name]}' for name in failing)}.",
            slug="not-ready",
            instance=request.path,
            checks=checks,
        )
        response = Response(body, status=503, headers={"Retry-After": str(settings.RETRY_AFTER_SECONDS)})
        if getattr(request.accepted_renderer, "format", None) != "api":  # the browsable API renders its own page
            response.content_type = PROBLEM_JSON
        return response


class RootApi(APIView):
    """The API's entry points."""

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
                "ready": url("jobs:ready"),
                "login": url("rest_framework:login"),
            }
        )
