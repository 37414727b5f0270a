"""Re-running a finished job: a new job with the old one's type, params, metadata, queue,
callback, attempts and timeout, some of them overridden, optionally starting from the
old job's latest checkpoint.

The new job is created exactly as ``job_create`` creates one (every check, the
application's cap of unfinished jobs, ``Idempotency-Key``), by the same statement, which
also records the link both ways: ``rerun_of`` on the new job, a ``rerun`` event in the old
job's history. The old job's row is not touched (a finished job never changes).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from jobs import db
from jobs.domain import App, Job
from jobs.exceptions import InvalidInput, JobNotFinished, JobNotFound, unknown_field

from .idempotency import validated_with_key
from .lifecycle import JobOrigin, job_create_checked
from .validation import JobRequest, job_request_validate

#: What a re-run request may override (anything else it sends is refused): besides the
#: run's inputs, what the deployment may have changed since (a callback host no longer
#: allowed, a queue no longer served), which would otherwise refuse every re-run.
RERUN_OVERRIDES = ("params", "metadata", "max_attempts", "timeout", "queue", "callback_url")
#: Every field of a re-run request.
RERUN_FIELDS = (*RERUN_OVERRIDES, "resume")
#: What an unknown field of a re-run's body is told.
_UNKNOWN_FIELD = unknown_field("a re-run", RERUN_FIELDS)


def job_rerun(
    *,
    app: App,
    job_id: uuid.UUID,
    overrides: Mapping[str, Any] | None = None,
    resume: Any = False,
    idempotency_key: str | None = None,
    unknown_fields: Iterable[str] = (),
) -> tuple[Job, bool]:
    """Create a new job that re-runs the finished job ``job_id`` of ``app``; return
    ``(job, created)`` as ``job_create`` does (``created`` False: an earlier request with
    the same ``idempotency_key`` created it).

    ``overrides`` replaces any of :data:`RERUN_OVERRIDES` (checked exactly as on create;
    null: the create's default); ``resume`` True carries the old job's latest checkpoint over as
    the new job's (None when it stored none). JobNotFound for an unknown id or another
    application's job; JobNotFinished (409) while it has not finished."""
    row = db.fetch_one("job_get", id=job_id, app_id=app.id)
    if row is None:
        raise JobNotFound()
    old = Job.from_row(row)
    if not old.status.is_terminal:
        raise JobNotFinished(
            f"The job is {old.status.value}: only a finished job can be re-run.", job_status=old.status.value
        )
    fields: dict[str, Any] = {
        "type": old.type,
        "queue": old.queue,
        "callback_url": old.callback_url,
        "params": old.params,
        "metadata": old.metadata,
        "max_attempts": old.max_attempts,
        "timeout": old.timeout_seconds,
    }
    fields.update({name: value for name, value in (overrides or {}).items() if name in RERUN_OVERRIDES})
    unknown = [*unknown_fields, *(name for name in (overrides or {}) if name not in RERUN_OVERRIDES)]

    def validate() -> JobRequest:
        errors = {} if isinstance(resume, bool) else {"resume": ["Must be true or false."]}
        try:
            request = job_request_validate(fields, app=app, unknown_fields=unknown, unknown=_UNKNOWN_FIELD)
        except InvalidInput as exc:
            raise InvalidInput({**errors, **exc.errors}, str(exc)) from None
        if errors:
            raise InvalidInput(errors, "The request is invalid.")
        return request

    request = validated_with_key(validate, idempotency_key)
    origin = JobOrigin(
        rerun_of=old.id,
        resume=resume,
        checkpoint=old.checkpoint if resume else None,
        checkpoint_at=old.checkpoint_at if resume else None,
    )
    return job_create_checked(app=app, request=request, idempotency_key=idempotency_key, origin=origin)
