"""The dashboard's pages: reads only, through the selectors (named SQL, no ORM).

A page that changes on its own (a job while it runs, the overview) carries an ``ETag``
and the interval at which ``dashboard.js`` asks for it again with ``If-None-Match``: an
unchanged page is a 304 with no body, and the job page's 304 costs one query.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils.cache import patch_vary_headers

from jobs import monitoring, selectors
from jobs.api.conditional import job_etag, none_match
from jobs.api.errors import field_errors
from jobs.api.pagination import keyset_page
from jobs.api.serializers import JobListQuery
from jobs.api.views import parse_job_id
from jobs.conf import settings
from jobs.domain import AdminJob, Status
from jobs.exceptions import JobNotFound
from jobs.registry import registry

from . import joblog
from .access import admin_required

STATUSES = [status.value for status in Status]
#: How often a page asks for itself again while it can still change (milliseconds).
JOB_REFRESH_MS = 1000
OVERVIEW_REFRESH_MS = 5000
#: The overview's throughput window (seconds).
THROUGHPUT_WINDOW = 60
#: Longest JSON value shown in full on a job page (characters); the API has it all.
JSON_SHOWN_MAX = 20_000


def _conditional_page(
    request: HttpRequest,
    template: str,
    context: Callable[[], dict[str, Any]],
    *,
    etag: str,
    refresh_ms: int | None,
) -> HttpResponse:
    """304 when the browser already has this version (``context`` is then never built),
    else the page, which tells dashboard.js its ETag and when to ask again."""
    if none_match(request.headers.get("If-None-Match"), etag):
        response = HttpResponse(status=304)
    else:
        response = render(request, template, {**context(), "etag": etag, "refresh_ms": refresh_ms})
    response["ETag"] = etag
    # Always revalidate; the page is this session's, never a shared cache's.
    response["Cache-Control"] = "private, no-cache"
    patch_vary_headers(response, ["Cookie"])
    return response


def duration(seconds: float | None) -> str:
    """``42 s``, ``3 min 12 s``, ``2 h 5 min``; ``-`` for none."""
    if seconds is None:
        return "-"
    whole = int(seconds)
    if whole < 60:
        return f"{seconds:.1f} s" if seconds < 10 else f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def _percent(progress: dict[str, Any] | None) -> float:
    value = (progress or {}).get("percent")
    return float(value) if isinstance(value, (int, float)) else 0.0


# -- overview ---------------------------------------------------------------------------------
def count_table(counts: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Jobs per type (rows) and status (columns), with totals."""
    table = {(row["status"], row["type"]): int(row["jobs"]) for row in counts}
    types = sorted({job_type for _, job_type in table})
    rows = [
        {
            "type": job_type,
            "cells": [table.get((status, job_type), 0) for status in STATUSES],
            "total": sum(table.get((status, job_type), 0) for status in STATUSES),
        }
        for job_type in types
    ]
    totals = [sum(table.get((status, job_type), 0) for job_type in types) for status in STATUSES]
    return {"statuses": STATUSES, "rows": rows, "totals": totals, "total": sum(totals)}


def clusters() -> tuple[list[dict[str, Any]], str | None, str | None]:
    """The clusters as they report themselves through the shared cache, each one's state
    corrected by the jobs its workers run (``jobs.monitoring``); why they could not be read,
    if they could not; and the note about reports signed with another ``SECRET_KEY``."""
    try:
        reports = monitoring.cluster_reports()
    except Exception as exc:  # the cache it reads may be down: the rest of the page still shows
        return [], f"{type(exc).__name__}: {exc}", None
    now = datetime.now(UTC)
    shown = [
        {
            "id": str(cluster.id),
            "host": cluster.host,
            "pid": cluster.pid,
            "status": cluster.state,
            "workers": len(cluster.workers),
            "worker_pids": ", ".join(str(pid) for pid in cluster.workers),
            "running_jobs": cluster.running_jobs,
            "uptime": duration((now - cluster.started_at).total_seconds()) if cluster.started_at else "-",
            "reincarnations": cluster.reincarnations,
            "task_q_size": cluster.task_queue,
            "reported_at": cluster.reported_at,
        }
        for cluster in monitoring.with_running_jobs(reports.clusters)
    ]
    return shown, None, reports.unreadable_note


@admin_required
def overview(request: HttpRequest) -> HttpResponse:
    stats = selectors.platform_stats(latest=10)
    recent = selectors.throughput(seconds=THROUGHPUT_WINDOW)
    finished = recent["succeeded"] + recent["failed"] + recent["cancelled"]
    cluster_rows, cluster_error, cluster_note = clusters()
    oldest = stats["oldest_queued_seconds"]
    data = {
        "counts": count_table(stats["counts"]),
        "throughput": {
            **recent,
            "finished": finished,
            "window": THROUGHPUT_WINDOW,
            "per_second": f"{finished / THROUGHPUT_WINDOW:.2f}",
        },
        "oldest_queued": duration(oldest) if oldest is not None else None,
        "latest": [
            {**job, "percent": f"{_percent(job['progress']):.1f}", "message": (job["progress"] or {}).get("message")}
            for job in stats["latest"]
        ],
        "clusters": cluster_rows,
        "cluster_error": cluster_error,
        "cluster_note": cluster_note,
    }
    # The version is what the page shows: unchanged figures are a 304.
    digest = hashlib.sha256(json.dumps(data, default=str, sort_keys=True).encode()).hexdigest()
    return _conditional_page(
        request,
        "jobs/dashboard/overview.html",
        lambda: {**data, "section": "overview"},
        etag=f'"{digest[:32]}"',
        refresh_ms=OVERVIEW_REFRESH_MS,
    )


# -- job list ---------------------------------------------------------------------------------
def _query_string(params: QueryDict) -> str:
    encoded = params.urlencode()
    return f"?{encoded}" if encoded else ""


def _canonical_filters(request: HttpRequest) -> HttpResponse | None:
    """The filter form sends ``metadata=key=value``; its URL uses the API's parameters
    (``metadata.key=value``), without empty fields and without the cursor of the page it
    came from. None (and a 400 from the caller) when the metadata filter is not key=value."""
    params = request.GET.copy()
    raw = params.pop("metadata", [""])[-1].strip()
    if raw:
        key, sep, value = raw.partition("=")
        if not sep or not key.strip():
            return None
        params[f"metadata.{key.strip()}"] = value.strip()
    clean = QueryDict(mutable=True)
    for name, values in params.lists():
        kept = [value for value in values if value != ""]
        if kept and name != "cursor":
            clean.setlist(name, kept)
    return HttpResponseRedirect(reverse("dashboard:job-list") + _query_string(clean))


def _list_page(
    request: HttpRequest, jobs: list[AdminJob], errors: list[dict[str, str]], next_cursor: str | None
) -> HttpResponse:
    params = request.GET.copy()
    metadata = []
    for name, value in request.GET.items():
        if name.startswith("metadata.") and name != "metadata.":
            without = params.copy()
            without.pop(name)
            without.pop("cursor", None)
            metadata.append({"name": name, "key": name[len("metadata.") :], "value": value, "remove": without})
    next_link = None
    if next_cursor is not None:
        following = params.copy()
        following["cursor"] = next_cursor
        next_link = _query_string(following)
    first = params.copy()
    first.pop("cursor", None)
    context = {
        "section": "jobs",
        "jobs": [{"job": job, "percent": f"{_percent(job.progress):.1f}"} for job in jobs],
        "errors": errors,
        "statuses": STATUSES,
        "types": sorted(job_type.name for job_type in registry.all()),
        "status": request.GET.get("status", ""),
        "type": request.GET.get("type", ""),
        "limit": request.GET.get("limit", ""),
        "batch": request.GET.get("batch", ""),
        "metadata": [{**m, "remove": reverse("dashboard:job-list") + _query_string(m["remove"])} for m in metadata],
        "next_link": next_link,
        "first_link": reverse("dashboard:job-list") + _query_string(first) if "cursor" in request.GET else None,
    }
    return render(request, "jobs/dashboard/job_list.html", context, status=400 if errors else 200)


@admin_required
def job_list(request: HttpRequest) -> HttpResponse:
    if "metadata" in request.GET:
        redirect = _canonical_filters(request)
        if redirect is not None:
            return redirect
        problem = {"field": "metadata", "pointer": "", "detail": "Write a metadata filter as key=value."}
        return _list_page(request, [], [problem], None)
    query = JobListQuery(data=request.GET)
    if not query.is_valid():
        return _list_page(request, [], field_errors(query.errors)[0], None)
    filters = query.validated_data
    page = keyset_page(
        selectors.job_list_all,
        after=filters.get("cursor"),
        limit=filters.get("limit", settings.PAGE_SIZE),
        filters=query.list_filters(),
    )
    return _list_page(request, list(page.items), [], page.next_cursor)


# -- one job ----------------------------------------------------------------------------------
def shown_json(value: Any) -> str:
    """A JSON value for reading: indented, cut at JSON_SHOWN_MAX characters."""
    text = json.dumps(value, indent=2, ensure_ascii=False)
    if len(text) > JSON_SHOWN_MAX:
        return f"{text[:JSON_SHOWN_MAX]}\n… ({len(text) - JSON_SHOWN_MAX} more characters: the API has it all)"
    return text


def not_found(request: HttpRequest, kind: str, ref: str, list_route: str, list_label: str) -> HttpResponse:
    """404: no such job (batch, …), with a link to the list of them."""
    context = {"kind": kind, "ref": ref, "list_url": reverse(list_route), "list_label": list_label}
    return render(request, "jobs/dashboard/not_found.html", context, status=404)


#: Latest history entries a job's page shows (a day's migration has thousands; the API
#: pages through all of them).
EVENTS_SHOWN = 500


@admin_required
def job_detail(request: HttpRequest, job_id: str) -> HttpResponse:
    try:
        job = selectors.job_get_any(job_id=parse_job_id(job_id))
    except JobNotFound:
        return not_found(request, "job", job_id, "dashboard:job-list", "All jobs")

    def context() -> dict[str, Any]:
        events, events_total = selectors.job_events_latest(job_id=job.id, limit=EVENTS_SHOWN)
        lines = selectors.job_log_tail(job_id=job.id, limit=joblog.LOG_SHOWN)
        took = (job.finished_at - job.started_at).total_seconds() if job.finished_at and job.started_at else None
        return {
            "section": "jobs",
            "job": job,
            "percent": f"{_percent(job.progress):.1f}",
            "message": (job.progress or {}).get("message", ""),
            "took": duration(took) if took is not None else None,
            "params": shown_json(job.params),
            "metadata": shown_json(job.metadata),
            "result": shown_json(job.result) if job.status is Status.SUCCEEDED else None,
            "error": job.error,
            "events": [
                {"event": event, "data": json.dumps(event.data, ensure_ascii=False) if event.data else ""}
                for event in events
            ],
            "events_earlier": events_total - len(events),
            "events_url": reverse("jobs:job-events", args=[job.id]),
            "checkpoint": shown_json(job.checkpoint) if job.checkpoint_at is not None else None,
            "log_lines": [
                {"line": line, "fields": json.dumps(line.fields, ensure_ascii=False) if line.fields else ""}
                for line in lines
            ],
            # joblog.js asks for the lines after the last one shown
            "log_after": lines[-1].id if lines else 0,
            "log_shown": joblog.LOG_SHOWN,
        }

    return _conditional_page(
        request,
        "jobs/dashboard/job_detail.html",
        context,
        etag=job_etag(job, job.last_event_id),
        refresh_ms=None if job.status.is_terminal else JOB_REFRESH_MS,
    )
