"""The resources a client reads: the job and its events, the batch and its events, as the
API answers them and as completion callbacks send them (shared/DESIGN.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.conf import settings as django_settings
from django.urls import reverse

from .domain import Batch, BatchEvent, Job, JobEvent, Status


def _collection_url(request: Any, route: str) -> str:
    """The absolute URL of a collection (``jobs:job-list``); without a request (a callback),
    under ``JOBS_PUBLIC_URL``. Built once per request, however many resources it lists."""
    cache = f"_jobs_url_{route}"
    base = getattr(request, cache, None)
    if base is None:
        base = reverse(route)
        if request is not None:
            base = request.build_absolute_uri(base)
            setattr(request, cache, base)
        else:
            base = getattr(django_settings, "JOBS_PUBLIC_URL", "").rstrip("/") + base
    return base


def job_url(request: Any, job_id: Any) -> str:
    """The job's canonical URL (``/jobs/{id}``, whichever form the request used); without
    a request (a callback), under ``JOBS_PUBLIC_URL``."""
    return f"{_collection_url(request, 'jobs:job-list')}/{job_id}"


def batch_url(request: Any, batch_id: Any) -> str:
    """The batch's URL (``/batches/{id}``), like :func:`job_url`."""
    return f"{_collection_url(request, 'jobs:batch-list')}/{batch_id}"


def _timestamp(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with a Z, as DRF's DateTimeField writes it (values come from
    PostgreSQL in UTC)."""
    if value is None:
        return None
    text = value.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def job_output(job: Job, request: Any) -> dict[str, Any]:
    """The job resource (shared/DESIGN.md)."""
    return {
        "id": str(job.id),
        "url": job_url(request, job.id),
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
        "jobs_url": f"{_collection_url(request, 'jobs:job-list')}?batch={batch.id}",
        "events_url": f"{url}/events",
    }
