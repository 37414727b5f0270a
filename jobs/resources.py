"""The resources a client reads: the job, its events and its log lines, the batch and its
events, as the API answers them and as completion callbacks send them (shared/DESIGN.md);
a schedule and its history."""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings
from django.urls import reverse

from .domain import Batch, BatchEvent, Job, JobEvent, LogLine, Schedule, ScheduleEvent, ScheduleState, Status, iso_utc


def _base_url(request: Any, route: str) -> str:
    """The absolute URL of a list route (``jobs:job-list``): under the request's host, or
    without a request (a callback) under ``JOBS_PUBLIC_URL``; once per request and route,
    however many resources it lists."""
    cache = getattr(request, "_jobs_base_urls", None) if request is not None else None
    if cache is not None and route in cache:
        return cache[route]
    base = reverse(route)
    if request is None:
        return getattr(django_settings, "JOBS_PUBLIC_URL", "").rstrip("/") + base
    base = request.build_absolute_uri(base)
    if cache is None:
        cache = request._jobs_base_urls = {}
    cache[route] = base
    return base


def job_url(request: Any, job_id: Any) -> str:
    """The job's canonical URL (``/jobs/{id}``, whichever form the request used); without
    a request (a callback), under ``JOBS_PUBLIC_URL``."""
    return f"{_base_url(request, 'jobs:job-list')}/{job_id}"


def schedule_url(request: Any, schedule_id: Any) -> str:
    """The schedule's URL (``/schedules/{id}``), like :func:`job_url`."""
    return f"{_base_url(request, 'jobs:schedule-list')}/{schedule_id}"


def batch_url(request: Any, batch_id: Any) -> str:
    """The batch's URL (``/batches/{id}``), like :func:`job_url`."""
    return f"{_base_url(request, 'jobs:batch-list')}/{batch_id}"


_timestamp = iso_utc


def job_output(job: Job, request: Any) -> dict[str, Any]:
    """The job resource (shared/DESIGN.md)."""
    url = job_url(request, job.id)
    return {
        "id": str(job.id),
        "url": url,
        "type": job.type,
        "queue": job.queue,
        "params": job.params,
        "metadata": job.metadata,
        "status": job.status.value,
        "progress": job.progress,
        "result": job.result,
        "error": job.error,
        "attempts": job.attempts,
        "max_attempts": job.max_attempts,
        "timeout": job.timeout_seconds,
        "cancel_requested": job.cancel_requested_at is not None,
        "callback_url": job.callback_url,
        "batch_id": None if job.batch_id is None else str(job.batch_id),
        "schedule": (
            None
            if job.schedule_id is None
            else {
                "id": str(job.schedule_id),
                "url": schedule_url(request, job.schedule_id),
                "fire_time": _timestamp(job.fire_time),
            }
        ),
        "checkpoint": (
            {"state": job.checkpoint, "at": _timestamp(job.checkpoint_at)} if job.checkpoint_at is not None else None
        ),
        "logs": {"url": f"{url}/logs", "lines": job.log_lines, "dropped": job.log_dropped},
        "rerun_of": str(job.rerun_of) if job.rerun_of is not None else None,
        "run_at": _timestamp(job.run_at),
        "created_at": _timestamp(job.created_at),
        "started_at": _timestamp(job.started_at),
        "finished_at": _timestamp(job.finished_at),
        "updated_at": _timestamp(job.updated_at),
    }


def event_output(event: JobEvent | BatchEvent) -> dict[str, Any]:
    """An entry of a job's history (with its ``attempt``) or of a batch's."""
    output = {"id": event.id, "at": _timestamp(event.at), "kind": event.kind}
    if isinstance(event, JobEvent):
        output["attempt"] = event.attempt
    output["data"] = event.data
    return output


def batch_output(batch: Batch, request: Any) -> dict[str, Any]:
    """The batch resource, without its page of jobs (the API adds one to ``GET
    /batches/{id}``; a list and the batch's callback carry ``jobs_url`` instead)."""
    url = batch_url(request, batch.id)
    return {
        "id": str(batch.id),
        "url": url,
        "state": batch.state.value,
        "metadata": batch.metadata,
        "callback_url": batch.callback_url,
        "total": batch.total,
        "counts": {status.value: int(batch.counts.get(status.value, 0)) for status in Status},
        "progress": {
            "finished": batch.total - batch.unfinished,
            "total": batch.total,
            "percent": round(float(batch.percent), 2),
        },
        "cancel_requested": batch.cancel_requested_at is not None,
        "created_at": _timestamp(batch.created_at),
        "finished_at": _timestamp(batch.finished_at),
        "updated_at": _timestamp(batch.updated_at),
        "jobs_url": f"{_base_url(request, 'jobs:job-list')}?batch={batch.id}",
        "events_url": f"{url}/events",
    }


def schedule_output(schedule: Schedule, request: Any) -> dict[str, Any]:
    """The schedule resource: its definition, state, next and last fire time, last job."""
    url = schedule_url(request, schedule.id)
    last_job = None
    if schedule.last_job_id is not None:
        last_job = {
            "id": str(schedule.last_job_id),
            "url": job_url(request, schedule.last_job_id),
            "status": schedule.last_job_status.value if schedule.last_job_status else None,
        }
    return {
        "id": str(schedule.id),
        "url": url,
        "name": schedule.name,
        "state": schedule.state.value,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "every": schedule.every_seconds,
        "catch_up": schedule.catch_up.value,
        "job": schedule.job,
        "metadata": schedule.metadata,
        "starts_at": _timestamp(schedule.starts_at),
        "ends_at": _timestamp(schedule.ends_at),
        # A paused schedule fires nothing: its next fire time is computed again on resume.
        "next_fire_at": _timestamp(schedule.next_fire_at) if schedule.state is ScheduleState.ACTIVE else None,
        "last_fire_at": _timestamp(schedule.last_fire_at),
        "last_job": last_job,
        "jobs_created": schedule.fires,
        # A pass could not fire it (its history's 'failed' entries say why): since when, and
        # when it is tried again (null: by the next pass).
        "failing": (
            {"since": _timestamp(schedule.failed_at), "retry_at": _timestamp(schedule.failing_until)}
            if schedule.failed_at is not None
            else None
        ),
        "events": f"{url}/events",
        "created_at": _timestamp(schedule.created_at),
        "updated_at": _timestamp(schedule.updated_at),
        "ended_at": _timestamp(schedule.ended_at),
    }


def schedule_event_output(event: ScheduleEvent, request: Any) -> dict[str, Any]:
    """One history entry; an entry about a job links it (``job``)."""
    output = {"id": event.id, "at": _timestamp(event.at), "kind": event.kind, "data": event.data}
    job_id = event.data.get("job_id") if isinstance(event.data, dict) else None
    output["job"] = job_url(request, job_id) if job_id else None
    return output


def log_line_output(line: LogLine) -> dict[str, Any]:
    return {
        "id": line.id,
        "attempt": line.attempt,
        "at": _timestamp(line.at),
        "level": line.level,
        "message": line.message,
        "fields": line.fields,
    }
