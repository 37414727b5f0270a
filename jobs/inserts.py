"""The parameters of the ``job_create`` statement, built in one place. The API's create
(``jobs.services.lifecycle.job_insert``) runs the statement with them, and so does the
benchmark's bare baseline (``benchmarks/baseline.py``): a statement that takes a new
parameter changes here once, for both. This module imports neither DRF nor the services,
so the baseline stays bare Django."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from jobs import db
from jobs import queue as queues
from jobs.conf import settings


def job_create_params(
    *,
    job_id: uuid.UUID,
    app_id: uuid.UUID,
    type: str,
    params: dict[str, Any],
    metadata: dict[str, Any],
    max_attempts: int,
    timeout: int,
    run_at: datetime | None = None,
    queue: str = queues.DEFAULT_QUEUE,
    callback_url: str | None = None,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
    schedule_id: uuid.UUID | None = None,
    fire_time: datetime | None = None,
    rerun_of: uuid.UUID | None = None,
    checkpoint: Any = None,
    checkpoint_at: datetime | None = None,
) -> dict[str, Any]:
    """Every parameter of ``job_create`` (jobs/sql/jobs_write.sql), the queue envelope
    included; ``checkpoint`` and ``checkpoint_at`` are a resumed re-run's starting point
    (the checkpoint is stored only with its time)."""
    return {
        "id": job_id,
        "app_id": app_id,
        "type": type,
        "queue": queue,
        "callback_url": callback_url,
        "params": params,
        "metadata": metadata,
        "max_attempts": max_attempts,
        "timeout_seconds": timeout,
        "run_at": run_at,
        "idempotency_key": idempotency_key,
        "request_hash": request_hash,
        "max_unfinished": settings.MAX_UNFINISHED_PER_APP,
        "schedule_id": schedule_id,
        "fire_time": fire_time,
        "rerun_of": rerun_of,
        "checkpoint": db.as_json(checkpoint) if checkpoint_at is not None else None,
        "checkpoint_at": checkpoint_at,
        **queues.envelope(job_id, timeout=timeout, queue=queue),
    }
