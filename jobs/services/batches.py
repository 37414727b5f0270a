"""Batches: many jobs created at once, in one statement, and followed and cancelled as one.

A batch's jobs are ordinary jobs: each is checked exactly as ``POST /jobs`` checks one
(:func:`~jobs.services.validation.job_request_validate`), then claimed, run, retried,
rescued and limited (the running cap, fairness) like any other. What a batch adds:

- **one statement** (``batch_create`` in ``jobs/sql/batches.sql``) writes the batch, every
  job, every envelope and every event from one JSON array (``jsonb_to_recordset``): all or
  nothing, and N jobs cost one round trip, not N;
- **its count of unfinished jobs**, counted down by the very statement that ends each of
  its jobs (``_batch_job_ended``): the statement that ends the last one stamps
  ``finished_at`` and queues the batch's callback, exactly once whatever the order and
  concurrency of the jobs ending;
- **its own history** (``jobs_batch_event``): created, cancel_requested, finished, callback.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NoReturn

from jobs import db, logs
from jobs import queue as queues
from jobs.conf import settings
from jobs.domain import App, Batch, Status
from jobs.exceptions import (
    BatchAlreadyFinished,
    BatchNotFound,
    InvalidInput,
    RateLimited,
    TooManyUnfinishedJobs,
    unknown_field,
)

from . import callbacks, ratelimit
from .idempotency import earlier_row, idempotent_insert, validated_with_key
from .validation import JOB_FIELDS, JobRequest, job_request_validate, metadata_errors

#: The fields of a batch request (the API refuses any other).
BATCH_FIELDS = ("jobs", "metadata", "callback_url")


@dataclass(frozen=True)
class BatchRequest:
    """A batch request that passed every check: its jobs exactly as they are stored."""

    jobs: tuple[JobRequest, ...]
    metadata: dict[str, Any]
    callback_url: str | None = None

    def fingerprint(self) -> str:
        """A stable hash of the whole request, to tell a retry from a different request."""
        canonical = json.dumps(
            {"jobs": [job.fingerprint() for job in self.jobs], "metadata": self.metadata, "url": self.callback_url},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def _job_errors(index: int, body: Any, errors: dict[str, list[str]], app: App | None) -> JobRequest | None:
    """One item of ``jobs``, checked as ``POST /jobs`` checks a body; its faults are named
    under ``jobs[<index>]`` (``jobs[17].params.n``)."""
    prefix = f"jobs[{index}]"
    if not isinstance(body, dict):
        errors[prefix] = ["Send a JSON object: a job body, as POST /jobs takes it."]
        return None
    try:
        return job_request_validate(
            {name: body[name] for name in JOB_FIELDS if name in body},
            app=app,
            unknown_fields=[name for name in body if name not in JOB_FIELDS],
        )
    except InvalidInput as exc:
        for field, messages in exc.errors.items():
            errors[f"{prefix}.{field}" if field else prefix] = messages
        return None


def batch_request_validate(
    fields: Mapping[str, Any], *, app: App | None = None, unknown_fields: Iterable[str] = ()
) -> BatchRequest:
    """Check a whole batch request (``fields``: any of :data:`BATCH_FIELDS`) of the
    application ``app`` and name every fault of every item at once (one InvalidInput)."""
    errors: dict[str, list[str]] = {}
    limit = int(settings.BATCH_MAX)
    cap = int(settings.MAX_UNFINISHED_PER_APP)
    jobs = fields.get("jobs")
    requests: list[JobRequest | None] = []
    if not isinstance(jobs, list) or not jobs:
        errors["jobs"] = [f"Give a list of 1 to {limit} job bodies, each as POST /jobs takes it."]
    elif len(jobs) > limit:
        errors["jobs"] = [f"At most {limit} jobs per batch (JOBS_BATCH_MAX); this one has {len(jobs)}."]
    else:
        if 0 < cap < len(jobs):
            # Never accepted, however long the client waits: a 400, not the 429 of a full cap.
            errors["jobs"] = [
                f"An application may have at most {cap} unfinished jobs (JOBS_MAX_UNFINISHED_PER_APP); "
                f"this batch has {len(jobs)}."
            ]
        rate_problem = ratelimit.per_job_problem(jobs=len(jobs))
        if rate_problem is not None:
            errors.setdefault("jobs", []).append(rate_problem)
        requests = [_job_errors(index, body, errors, app) for index, body in enumerate(jobs)]
    metadata = {} if fields.get("metadata") is None else fields["metadata"]
    errors.update(metadata_errors(metadata))
    callback_url = fields.get("callback_url")
    if callback_url is not None:
        problem = callbacks.url_problem(callback_url)
        if problem is not None:
            errors["callback_url"] = [problem]
    unknown = dict.fromkeys(unknown_fields, unknown_field("a batch", BATCH_FIELDS))
    if errors or unknown:
        raise InvalidInput({**unknown, **errors}, "The request is invalid.")
    return BatchRequest(
        jobs=tuple(request for request in requests if request is not None),
        metadata=metadata,
        callback_url=callback_url,
    )


# -- create ----------------------------------------------------------------------------------
def batch_create(
    *,
    app: App,
    jobs: Any = None,
    metadata: Any = None,
    callback_url: Any = None,
    idempotency_key: str | None = None,
    unknown_fields: Iterable[str] = (),
) -> tuple[Batch, bool]:
    """Create a batch and every one of its jobs (with their envelopes and events) in one
    statement, or nothing; return ``(batch, created)``.

    Every job is checked as ``job_create`` checks one, and every fault of every item is
    named at once. The whole batch must fit under ``JOBS_MAX_UNFINISHED_PER_APP``
    (:class:`TooManyUnfinishedJobs` otherwise). With an ``idempotency_key``, a repeat of
    the same request returns the batch the first one created (``created`` False); the same
    key with a different request raises :class:`IdempotencyKeyReused`.
    """
    fields = {"jobs": jobs, "metadata": metadata, "callback_url": callback_url}
    request = validated_with_key(
        lambda: batch_request_validate(fields, app=app, unknown_fields=unknown_fields), idempotency_key
    )
    fingerprint = None if idempotency_key is None else request.fingerprint()
    earlier = lambda: _batch_for_idempotency_key(app, idempotency_key, fingerprint)  # noqa: E731
    try:
        return idempotent_insert(
            idempotency_key, insert=lambda: _batch_insert(app, request, idempotency_key, fingerprint), earlier=earlier
        )
    except RateLimited:
        # A concurrent repeat of this key may have made the batch and filled the window
        # meanwhile: the repeat answers that batch, as it would have without the limit.
        found = earlier() if idempotency_key is not None else None
        if found is None:
            raise
        return found, False


def _batch_insert(app: App, request: BatchRequest, idempotency_key: str | None, fingerprint: str | None) -> Batch:
    items = []
    for n, job in enumerate(request.jobs):
        job_id = uuid.uuid4()
        items.append(
            {
                "n": n,
                "id": str(job_id),
                "type": job.type,
                "queue": job.queue,
                "params": job.params,
                "metadata": job.metadata,
                "max_attempts": job.max_attempts,
                "timeout_seconds": job.timeout,
                "run_at": job.run_at.isoformat() if job.run_at else None,
                "callback_url": job.callback_url,
                **queues.envelope(job_id, timeout=job.timeout, queue=job.queue),
            }
        )
    charged = ratelimit.charges(jobs=len(items))
    if charged:  # a batch that cannot fit is refused before its rows are written
        ratelimit.token_charge(app=app, jobs=len(items), check_only=True)
    with db.atomic() if charged else contextlib.nullcontext():  # the statement alone is atomic
        row = db.fetch_one(
            "batch_create",
            id=uuid.uuid4(),
            app_id=app.id,
            metadata=request.metadata,
            callback_url=request.callback_url,
            idempotency_key=idempotency_key,
            request_hash=fingerprint,
            max_unfinished=settings.MAX_UNFINISHED_PER_APP,
            jobs=items,
        )
        if row is None:
            raise TooManyUnfinishedJobs(
                f"This batch of {len(items)} jobs would take the application past its "
                f"{settings.MAX_UNFINISHED_PER_APP} unfinished jobs (JOBS_MAX_UNFINISHED_PER_APP); nothing was "
                "created. Retry once some have finished."
            )
        # Rate limits apply per job, as on create: counted last, so the token's counter is
        # locked only until the commit, and a refusal takes the batch back with it.
        if charged:
            ratelimit.token_charge(app=app, jobs=len(items))
    batch = Batch.from_row(row)
    for item, job in zip(items, request.jobs, strict=True):
        # batch_create's rule: a job whose run_at is after the batch's creation waits, scheduled.
        waits = job.run_at is not None and job.run_at > batch.created_at
        status = Status.SCHEDULED if waits else Status.QUEUED
        logs.job_transition(
            status.value, job_id=item["id"], job_type=job.type, attempt=0, worker=None, app_id=app.id, batch_id=batch.id
        )
    return batch


def _batch_for_idempotency_key(app: App, key: str, fingerprint: str) -> Batch | None:
    row = earlier_row("batch_get_by_idempotency_key", app_id=app.id, key=key, fingerprint=fingerprint, named="batch_id")
    if row is None:
        return None
    found = db.fetch_one("batch_get", id=row["id"], app_id=app.id)
    assert found is not None  # batches are never deleted
    return Batch.from_row(found)


# -- cancel ----------------------------------------------------------------------------------
def batch_cancel(*, app: App, batch_id: uuid.UUID) -> dict[str, int]:
    """Cancel every waiting job of the batch at once and ask every running one to stop (as
    ``job_cancel`` does for one); returns how many were ``cancelled`` and how many are
    ``stopping``. 404 for another application's batch, 409 when every job already ended."""
    with db.atomic():
        db.fetch_one("batch_cancel_lock", id=batch_id)
        if db.fetch_one("batch_cancel_request", id=batch_id, app_id=app.id) is None:
            _refuse(app, batch_id)
        done = db.fetch_one("batch_cancel_jobs", id=batch_id, app_id=app.id)
        assert done is not None  # an aggregate always answers one row
        if done["cancelled"] + done["stopping"] == 0:
            # Its last jobs ended between the two statements: nothing to cancel after all
            # (raising rolls the request's event back).
            _refuse(app, batch_id)
        db.fetch_one("batch_cancel_mark", id=batch_id, app_id=app.id)
    return {"cancelled": done["cancelled"], "stopping": done["stopping"]}


def _refuse(app: App, batch_id: uuid.UUID) -> NoReturn:
    """Why a batch could not be cancelled: not this application's, or already finished."""
    if db.fetch_one("batch_get", id=batch_id, app_id=app.id) is None:
        raise BatchNotFound()
    raise BatchAlreadyFinished("Every job of the batch has already finished.")
