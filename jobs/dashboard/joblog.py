"""The job page's log lines, for ``joblog.js``: the same page of lines as
``GET /jobs/{id}/logs`` (JSON), for the operator's browser session, with an ``ETag`` so an
unchanged log costs a 304."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.cache import patch_vary_headers

from jobs import selectors
from jobs.api.conditional import job_etag, none_match
from jobs.api.errors import problem_response
from jobs.api.views import parse_job_id
from jobs.exceptions import InvalidInput, JobNotFound
from jobs.resources import log_line_output

from .access import admin_required

#: Lines the page shows when it opens (the latest ones) and per answer to its polls.
LOG_SHOWN = 200


def _after(raw: str) -> int | None:
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 18 else None


@admin_required
def job_logs(request: HttpRequest, job_id: str) -> HttpResponse:
    """``?after=<line id>``: the lines after it, oldest first, at most :data:`LOG_SHOWN`
    (``next`` says whether more are waiting), with the job's status and counts."""
    after = _after(request.GET.get("after", "0"))
    if after is None:
        return problem_response(request, InvalidInput({"after": ["Give a line id (a whole number)."]}))
    try:
        page = selectors.job_log_page_any(job_id=parse_job_id(job_id), after=after, limit=LOG_SHOWN + 1)
    except JobNotFound as exc:
        return problem_response(request, exc)
    job, lines = page.job, page.lines[:LOG_SHOWN]
    etag = job_etag(job, "log", after)
    if none_match(request.headers.get("If-None-Match"), etag):
        response: HttpResponse = HttpResponse(status=304)
    else:
        response = JsonResponse(
            {
                "status": job.status.value,
                "total": job.log_lines,
                "dropped": job.log_dropped,
                "results": [log_line_output(line) for line in lines],
                "next": len(page.lines) > LOG_SHOWN,
            },
            json_dumps_params={"ensure_ascii": False},
        )
    response["ETag"] = etag
    response["Cache-Control"] = "private, no-cache"
    patch_vary_headers(response, ["Cookie"])
    return response
