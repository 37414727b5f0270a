"""The batch endpoints: create many jobs at once, follow them as one, cancel them as one.
Thin views, like ``views.py``: validate input, call one service or selector, shape the output."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.response import Response

from jobs import selectors, services
from jobs.conf import settings
from jobs.domain import Batch
from jobs.exceptions import BatchNotFound, InvalidInput, NeverDeleted
from jobs.resources import batch_output, batch_url, event_output, job_output
from jobs.selectors import JobFilters
from jobs.services import ratelimit

from . import schema
from .base import AuthenticatedApi
from .errors import PROBLEM_JSON
from .middleware import note_rate_window
from .pagination import keyset_page
from .permissions import ListsAnyApp, ReadsJobs, WritesJobs
from .schema import CHALLENGE, COMMON, JSON, UNAVAILABLE, header, ok, problems
from .serializers import BATCH_PAGE_MAX, BatchListQuery, PageQuery
from .views import create_request, created_answer


def parse_batch_id(raw: str) -> uuid.UUID:
    """A malformed id names no batch: 404, the same answer as an unknown one."""
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise BatchNotFound() from None


def _query(serializer: type[PageQuery], request: Request) -> dict[str, Any]:
    query = serializer(data=request.query_params)
    if not query.is_valid():
        raise InvalidInput(query.errors, "The query is invalid.")
    return query.validated_data


def batch_with_jobs(batch: Batch, request: Request, query: dict[str, Any] | None = None) -> dict[str, Any]:
    """The batch resource with a page of its jobs, newest first: the first page of
    ``JOBS_PAGE_SIZE``, or the one ``query`` names (``limit``, ``cursor``); ``jobs.next`` is
    the batch's URL for the next page."""
    query = query or {}
    limit = query.get("limit", settings.PAGE_SIZE)
    page = keyset_page(
        selectors.job_list, app=request.user, after=query.get("cursor"), limit=limit, filters=JobFilters(batch=batch.id)
    )
    output = batch_output(batch, request)
    next_url = None
    if page.next_cursor is not None:
        following = {"limit": limit} if "limit" in query else {}
        next_url = f"{output['url']}?{urlencode({**following, 'cursor': page.next_cursor})}"
    return {**output, "jobs": {"results": [job_output(job, request) for job in page.items], "next": next_url}}


def _not_found(description: str) -> dict[Any, OpenApiResponse]:
    return {(404, PROBLEM_JSON): OpenApiResponse(schema.ref("Problem"), description=description)}


NOT_FOUND = _not_found("No such batch for this application (unknown id, malformed id, or another application's).")

#: The ``{batch_id}`` of every batch URL.
BATCH_ID = OpenApiParameter(
    "batch_id",
    {"type": "string", "format": "uuid"},
    OpenApiParameter.PATH,
    description="The batch's id (a malformed one names no batch: 404).",
)
PAGE = [
    OpenApiParameter(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": settings.MAX_PAGE_SIZE},
        OpenApiParameter.QUERY,
        description=f"Items per page (default {settings.PAGE_SIZE}).",
    ),
    OpenApiParameter("cursor", str, OpenApiParameter.QUERY, description="Where the page starts: from `next`, as is."),
]


class BatchListCreateApi(AuthenticatedApi):
    """`POST` creates a batch of jobs, all in one transaction or none; `GET` lists this
    application's batches, newest first (keyset pages)."""

    name = "Batches"
    permission_classes = [permissions.IsAuthenticated, ReadsJobs, WritesJobs, ListsAnyApp]

    @extend_schema(
        summary="Create a batch of jobs",
        description="`jobs` holds 1 to `JOBS_BATCH_MAX` job bodies, each exactly as `POST /jobs` takes it. Every "
        "job and the batch are created in one transaction, or nothing is: a 400 names each fault of each item "
        "by its index (`jobs[17].params.n`). The whole batch must fit under `JOBS_MAX_UNFINISHED_PER_APP` (429 "
        "otherwise). `callback_url` is POSTed the batch resource, once, when its last job ends. With an "
        "`Idempotency-Key`, a repeat of the same request answers the batch the first one created "
        "(`Idempotent-Replayed: true`). Rate limits apply per job: a batch of N jobs counts N requests against "
        "the token's limit (429 when the window has no room for them, nothing created; 400 on `jobs` when N is "
        "over the limit itself); a replay counts one.",
        request={JSON: schema.ref("BatchCreate")},
        parameters=schema.create_parameters("batch"),
        responses={
            **ok(201, "Batch", "Created (or replayed, see `Idempotent-Replayed`), with the first page of its jobs."),
            **problems(400, *COMMON, 408, 411, 413, 415, 422, 429),
        },
    )
    def post(self, request: Request) -> Response:
        batch, created = services.batch_create(app=request.user, **create_request(request, services.BATCH_FIELDS))
        if created and getattr(request._request, "jobs_rate_window", None) is not None:
            # Its jobs were counted too: the RateLimit header says what is left after them.
            note_rate_window(request._request, ratelimit.token_window(app=request.user))
        output = batch_with_jobs(selectors.batch_get(app=request.user, batch_id=batch.id), request)
        return created_answer(output, replayed=not created)

    @extend_schema(
        summary="List this application's batches",
        description='Newest first, keyset-paginated: follow `next` (or the `Link: <…>; rel="next"` header) until '
        "it is null. Each batch comes with its counts, without its jobs (`jobs_url` lists them). An admin token "
        "lists every application's batches, or one application's with `app`.",
        parameters=[
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": BATCH_PAGE_MAX},
                OpenApiParameter.QUERY,
                description=f"Batches per page (default {min(settings.PAGE_SIZE, BATCH_PAGE_MAX)}; each comes "
                "with its jobs counted).",
            ),
            PAGE[1],
            OpenApiParameter(
                "app", str, OpenApiParameter.QUERY, description="Admin tokens: this application's batches only."
            ),
            header("Link", '`<next page URL>; rel="next"` when there is a next page.', [200]),
            CHALLENGE,
            UNAVAILABLE,
        ],
        responses={**ok(200, "BatchPage", "A page of batches."), **problems(400, 403, *COMMON)},
    )
    def get(self, request: Request) -> Response:
        query = _query(BatchListQuery, request)
        page = keyset_page(
            selectors.batch_list,
            app=request.user,
            after=query.get("cursor"),
            limit=query.get("limit", min(settings.PAGE_SIZE, BATCH_PAGE_MAX)),
            app_name=query.get("app"),
        )
        next_url = page.next_url(request)
        headers = {"Link": f'<{next_url}>; rel="next"'} if next_url else None
        results = [batch_output(batch, request) for batch in page.items]
        return Response({"results": results, "next": next_url}, headers=headers)


class BatchDetailApi(AuthenticatedApi):
    """One batch: its counts by status, its progress, and a page of its jobs."""

    name = "Batch"
    permission_classes = [permissions.IsAuthenticated, ReadsJobs]
    never_deleted = NeverDeleted.batch

    @extend_schema(
        summary="Get a batch",
        description="Counts by status, overall progress (finished of total, and the mean percent, a finished job "
        "counting 100), and its jobs newest first, keyset-paginated with `limit` and `cursor` (`jobs.next`).",
        parameters=[BATCH_ID, *PAGE, CHALLENGE, UNAVAILABLE],
        responses={**ok(200, "Batch", "The batch."), **NOT_FOUND, **problems(400, *COMMON)},
    )
    def get(self, request: Request, batch_id: str) -> Response:
        batch = selectors.batch_get(app=request.user, batch_id=parse_batch_id(batch_id))
        return Response(batch_with_jobs(batch, request, _query(PageQuery, request)))


class BatchCancelApi(AuthenticatedApi):
    """Cancel every job of the batch not yet finished: waiting ones at once (200 when no
    job was running), running ones asked to stop (202). 409 once every job has finished."""

    name = "Cancel a batch"
    permission_classes = [permissions.IsAuthenticated, WritesJobs]

    @extend_schema(
        summary="Cancel a batch",
        request=None,
        parameters=[BATCH_ID, CHALLENGE, UNAVAILABLE],
        responses={
            **ok(200, "Batch", "Every unfinished job was waiting and is cancelled: the batch is finished."),
            **ok(202, "Batch", "Waiting jobs are cancelled; running ones were asked to stop (at their next check)."),
            **NOT_FOUND,
            (409, PROBLEM_JSON): OpenApiResponse(
                schema.ref("Problem"), description="Every job of the batch has already finished."
            ),
            **problems(*COMMON),
        },
    )
    def post(self, request: Request, batch_id: str) -> Response:
        done = services.batch_cancel(app=request.user, batch_id=parse_batch_id(batch_id))
        batch = selectors.batch_get(app=request.user, batch_id=parse_batch_id(batch_id))
        return Response(batch_with_jobs(batch, request), status=202 if done["stopping"] else 200)


class BatchEventsApi(AuthenticatedApi):
    """The batch's own append-only history, oldest first (each job keeps its own)."""

    name = "Batch events"
    permission_classes = [permissions.IsAuthenticated, ReadsJobs]

    @extend_schema(
        summary="A batch's history",
        parameters=[BATCH_ID, CHALLENGE, UNAVAILABLE],
        responses={**ok(200, "BatchEvents", "Every event, oldest first."), **NOT_FOUND, **problems(*COMMON)},
    )
    def get(self, request: Request, batch_id: str) -> Response:
        events = selectors.batch_events(app=request.user, batch_id=parse_batch_id(batch_id))
        return Response({"batch": batch_url(request, batch_id), "events": [event_output(e) for e in events]})
