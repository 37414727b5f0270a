"""The resources a client reads: the job, its events and its log lines, as the API answers
them and as completion callbacks send them (shared/DESIGN.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.conf import settings as django_settings
from django.urls import reverse

from .domain import Job, JobEvent, LogLine


def job_url(request: Any, job_id: Any) -> str:
    """The job's canonical URL (``/jobs/{id}``, whichever form the request used); without
    a request (a callback), under ``JOBS_PUBLIC_URL``."""
    base = getattr(request, "_jobs_base_url", None)
    if base is None:
        base = reverse("jobs:job-list")
        if request is not None:
            base = request.build_absolute_uri(base)
            request._jobs_base_url = base  # once per request, however many jobs it lists
        else:
            base = getattr(django_settings, "JOBS_PUBLIC_URL", "").rstrip("/") + base
    return f"{base}/{job_id}"


def _timestamp(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, as DRF's DateTimeField writes it (values come from
    PostgreSQL in UTC)."""
    if value is None:
        return None
    text = value.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


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


def event_output(event: JobEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "at": _timestamp(event.at),
        "kind": event.kind,
        "attempt": event.attempt,
        "data": event.data,
    }


def log_line_output(line: LogLine) -> dict[str, Any]:
    return {
        "id": line.id,
        "attempt": line.attempt,
        "at": _timestamp(line.at),
        "level": line.level,
        "message": line.message,
        "fields": line.fields,
    }
