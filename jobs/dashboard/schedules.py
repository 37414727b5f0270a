"""The dashboard's schedules page: every application's schedules with their definition,
next fire time, last fire time and last job with its status (newest first, a page at a
time, by state). Reads through the selectors; refreshed by ``dashboard.js`` like the
overview (an unchanged page is a 304)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from jobs import selectors
from jobs.api.pagination import decode_cursor, keyset_page
from jobs.conf import settings
from jobs.domain import Schedule, ScheduleState

from .access import admin_required
from .views import OVERVIEW_REFRESH_MS, _conditional_page

STATES = [state.value for state in ScheduleState]


def _row(schedule: Schedule) -> dict[str, Any]:
    return {
        "id": str(schedule.id),
        "name": schedule.name or "",
        "app": schedule.app_name,
        "state": schedule.state.value,
        "when": f"{schedule.cron} ({schedule.timezone})" if schedule.cron else f"every {schedule.every_seconds} s",
        "catch_up": schedule.catch_up.value,
        "job_type": schedule.job.get("type", ""),
        "next_fire_at": schedule.next_fire_at if schedule.state is ScheduleState.ACTIVE else None,
        "last_fire_at": schedule.last_fire_at,
        "last_job": str(schedule.last_job_id) if schedule.last_job_id else None,
        "last_job_status": schedule.last_job_status.value if schedule.last_job_status else None,
        "jobs_created": schedule.fires,
        "failing_since": schedule.failed_at,
    }


@admin_required
def schedule_list(request: HttpRequest) -> HttpResponse:
    errors: list[dict[str, str]] = []
    state_name = request.GET.get("state", "")
    state = None
    if state_name:
        try:
            state = ScheduleState(state_name)
        except ValueError:
            errors.append({"field": "state", "detail": f"Use one of: {', '.join(STATES)}."})
    cursor = None
    if request.GET.get("cursor"):
        try:
            cursor = decode_cursor(request.GET["cursor"])
        except ValueError as exc:
            errors.append({"field": "cursor", "detail": str(exc)})
    if errors:
        context = {"section": "schedules", "errors": errors, "state": state_name, "schedules": []}
        return render(request, "jobs/dashboard/schedule_list.html", context, status=400)
    page = keyset_page(selectors.schedule_list, app=None, state=state, after=cursor, limit=int(settings.PAGE_SIZE))
    figures = selectors.schedule_figures(listed=0)
    data = {
        "schedules": [_row(schedule) for schedule in page.items],
        "counts": [{"state": name, "count": figures[name]} for name in STATES],
        "late_seconds": round(float(figures["late_seconds"]), 1),
    }
    # Passes come every JOBS_MAINTENANCE_INTERVAL (±50 %): a few seconds late is normal.
    data["late_alert"] = data["late_seconds"] > 3 * float(settings.MAINTENANCE_INTERVAL)
    next_link = None
    if page.next_cursor is not None:
        following = request.GET.copy()
        following["cursor"] = page.next_cursor
        next_link = f"?{following.urlencode()}"
    digest = hashlib.sha256(json.dumps(data, default=str, sort_keys=True).encode()).hexdigest()
    return _conditional_page(
        request,
        "jobs/dashboard/schedule_list.html",
        lambda: {
            **data,
            "section": "schedules",
            "state": state_name,
            "next_link": next_link,
            "first_link": "?" + (f"state={state_name}" if state_name else "") if cursor else None,
        },
        etag=f'"{digest[:32]}"',
        refresh_ms=OVERVIEW_REFRESH_MS,
    )
