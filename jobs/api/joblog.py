"""``GET /jobs/{id}/logs``: a job's log lines, oldest first, a page at a time, for paging
through them or tailing them (``after``), with ``ETag`` and ``Retry-After`` like the job."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, serializers
from rest_framework.request import Request
from rest_framework.response import Response

from jobs import selectors
from jobs.conf import settings
from jobs.domain import LogLevel
from jobs.exceptions import InvalidInput
from jobs.resources import job_url, log_line_output

from .base import AuthenticatedApi
from .conditional import job_etag
from .pagination import after_link
from .permissions import ReadsJobs
from .schema import CHALLENGE, COMMON, JOB_ID, NOT_MODIFIED, UNAVAILABLE, after_page, ok, polled, problems
from .serializers import AfterPageQuery
from .views import parse_job_id, poll_headers


class JobLogQuery(AfterPageQuery):
    """The query parameters of ``GET /jobs/{id}/logs``; any other name is an error."""

    level = serializers.CharField(required=False)

    def validate_level(self, value: str) -> LogLevel:
        try:
            return LogLevel(value)
        except ValueError:
            raise serializers.ValidationError(
                f"Unknown level {value!r}; use one of {', '.join(LogLevel)} (that level and above)."
            ) from None


class JobLogsApi(AuthenticatedApi):
    """The job's log: what its code wrote with `ctx.log()`, oldest first, a page at a time."""

    name = "Job logs"
    permission_classes = [permissions.IsAuthenticated, ReadsJobs]

    @extend_schema(
        summary="A job's log",
        description="Oldest first. `after` continues after a line id: follow `next` (also in `Link`) "
        "to page through the log, and to tail a running job ask again with `after=<the last id you have>` "
        "after `Retry-After` seconds; once the job is finished (`status`) and a page has no `next`, "
        "nothing more will come. Any other query parameter is a 400.",
        parameters=[
            JOB_ID,
            *after_page("lines"),
            OpenApiParameter(
                "level",
                {"type": "string", "enum": [level.value for level in LogLevel]},
                OpenApiParameter.QUERY,
                description="Only lines of this level and above (`warning`: warnings and errors).",
            ),
            *polled("the job or its log"),
            CHALLENGE,
            UNAVAILABLE,
        ],
        responses={
            **ok(200, "JobLogPage", "A page of the job's log lines."),
            **NOT_MODIFIED,
            **problems(400, 404, *COMMON),
        },
    )
    def get(self, request: Request, job_id: str) -> Response:
        job_uuid = parse_job_id(job_id)
        query = JobLogQuery(data=request.query_params)
        if not query.is_valid():
            raise InvalidInput(query.errors, "The query is invalid.")
        options = query.validated_data
        limit = options.get("limit", settings.MAX_PAGE_SIZE)
        level = options.get("level")
        page = selectors.job_log_page(
            app=request.user,
            job_id=job_uuid,
            after=options.get("after", 0),
            limit=limit + 1,  # one more tells whether there is a next page
            levels=level.and_above() if level is not None else None,
        )
        job = page.job
        lines, next_url = after_link(request, page.lines, limit)
        # Each write of log lines moves the job's updated_at: the job's version is the log's;
        # the query is in it too, so a validator is never taken for another page's.
        etag = job_etag(job, "log", options.get("after", 0), limit, level or "")
        headers, unchanged = poll_headers(request, job, etag)
        if unchanged:
            return Response(status=304, headers=headers)
        if next_url is not None:
            headers["Link"] = f'<{next_url}>; rel="next"'
        body = {
            "job": job_url(request, job.id),
            "status": job.status.value,
            "total": job.log_lines,
            "dropped": job.log_dropped,
            "results": [log_line_output(line) for line in lines],
            "next": next_url,
        }
        return Response(body, headers=headers)
