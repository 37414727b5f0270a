"""The dashboard's batch pages: every application's batches, and one batch with its counts,
its progress, its history and its newest jobs. Reads only, through the selectors."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.urls import reverse

from jobs import selectors
from jobs.api.batches import parse_batch_id
from jobs.api.errors import field_errors
from jobs.api.pagination import keyset_page
from jobs.api.serializers import BatchListQuery
from jobs.conf import settings
from jobs.domain import Batch, Status
from jobs.exceptions import BatchNotFound
from jobs.selectors import JobFilters

from .access import admin_required
from .views import JOB_REFRESH_MS, STATUSES, _conditional_page, _percent, duration, not_found, shown_json

#: The jobs a batch's page shows, newest first (the job list has them all).
JOBS_SHOWN = 20


def _row(batch: Batch) -> dict[str, Any]:
    return {
        "batch": batch,
        "finished": batch.total - batch.unfinished,
        "percent": f"{float(batch.percent):.1f}",
        "counts": [batch.counts.get(status, 0) for status in STATUSES],
    }


@admin_required
def batch_list(request: HttpRequest) -> HttpResponse:
    query = BatchListQuery(data=request.GET)
    context: dict[str, Any] = {"section": "batches", "statuses": STATUSES, "batches": [], "errors": []}
    if not query.is_valid():
        context["errors"] = field_errors(query.errors)[0]
        return render(request, "jobs/dashboard/batch_list.html", context, status=400)
    values = query.validated_data
    page = keyset_page(
        selectors.batch_list,
        app=None,
        after=values.get("cursor"),
        limit=values.get("limit", settings.PAGE_SIZE),
        app_name=values.get("app"),
    )
    if page.next_cursor is not None:
        following = request.GET.copy()
        following["cursor"] = page.next_cursor
        context["next_link"] = f"?{following.urlencode()}"
    if "cursor" in request.GET:
        first = request.GET.copy()
        first.pop("cursor")
        context["first_link"] = reverse("dashboard:batch-list") + (f"?{first.urlencode()}" if first else "")
    context["batches"] = [_row(batch) for batch in page.items]
    return render(request, "jobs/dashboard/batch_list.html", context)


@admin_required
def batch_detail(request: HttpRequest, batch_id: str) -> HttpResponse:
    try:
        batch = selectors.batch_get_any(batch_id=parse_batch_id(batch_id))
    except BatchNotFound:
        return not_found(request, "batch", batch_id, "dashboard:batch-list", "All batches")
    events = selectors.batch_events(app=None, batch_id=batch.id)
    jobs = selectors.job_list_all(filters=JobFilters(batch=batch.id), limit=JOBS_SHOWN)
    # A batch's page changes with its jobs (a claim, a progress report), not only with its
    # own row: its version is what the page shows, and an unchanged page is a 304.
    shown = {
        "batch": [batch.updated_at, batch.counts, batch.percent, batch.cancel_requested_at],
        "events": [event.id for event in events],
        "jobs": [(job.id, job.status, job.updated_at) for job in jobs],
    }
    digest = hashlib.sha256(json.dumps(shown, default=str, sort_keys=True).encode()).hexdigest()
    took = (batch.finished_at - batch.created_at).total_seconds() if batch.finished_at else None
    by_status = QueryDict(mutable=True)
    by_status["batch"] = str(batch.id)

    def context() -> dict[str, Any]:
        return {
            "section": "batches",
            **_row(batch),
            "statuses": STATUSES,
            "count_links": [
                {"status": status, "jobs": batch.counts.get(status, 0), "query": f"batch={batch.id}&status={status}"}
                for status in STATUSES
            ],
            "jobs_query": by_status.urlencode(),
            "took": duration(took) if took is not None else None,
            "metadata": shown_json(batch.metadata),
            "events": [
                {"event": event, "data": json.dumps(event.data, ensure_ascii=False) if event.data else ""}
                for event in events
            ],
            "jobs": [{"job": job, "percent": f"{_percent(job.progress):.1f}"} for job in jobs],
            "jobs_shown": JOBS_SHOWN,
            "active": batch.unfinished > 0,
            "running": batch.counts.get(Status.RUNNING.value, 0),
        }

    return _conditional_page(
        request,
        "jobs/dashboard/batch_detail.html",
        context,
        etag=f'"{digest[:32]}"',
        refresh_ms=JOB_REFRESH_MS if batch.unfinished else None,
    )
