"""Writes. Every state change of a job goes through here, as one guarded SQL statement
(``UPDATE … WHERE status … RETURNING``) that also appends to the job's history."""

from __future__ import annotations

import hashlib
import json
import math
import random
import secrets
import uuid
from typing import Any

from . import db, queue
from .conf import settings
from .domain import App, Job, Token
from .exceptions import (
    AlreadyExists,
    IdempotencyKeyReused,
    InvalidInput,
    JobAlreadyFinished,
    JobNotFound,
    TokenNotFound,
)
from .registry import JobType, registry

TOKEN_PREFIX = "jp_"


# -- tokens ------------------------------------------------------------------------------
def token_hash(token: str) -> str:
    """Tokens are 256 random bits, so a plain SHA-256 is enough to store them safely."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_issue(*, app_name: str) -> tuple[str, Token]:
    """Issue a new token for ``app_name`` (created if new). The token is returned once."""
    app_name = app_name.strip()
    if not app_name or len(app_name) > 100 or "\x00" in app_name:
        raise InvalidInput({"name": ["Give an application name of 1 to 100 characters."]})
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with db.atomic():
        app = db.fetch_one("app_get_or_create", name=app_name)
        assert app is not None
        row = db.fetch_one("token_create", app_id=app["id"], token_hash=token_hash(token), prefix=token[:10])
    assert row is not None
    return token, Token.from_row({**row, "app_name": app["name"]})


def token_revoke(*, ref: str) -> Token:
    """Revoke a token by id or prefix. Revoking twice is harmless."""
    rows = db.fetch_all("token_find", ref=ref)
    if not rows:
        raise TokenNotFound(f"no token with id or prefix {ref!r}")
    if len(rows) > 1:
        raise InvalidInput({"token": [f"{ref!r} matches {len(rows)} tokens; give the token id."]})
    found = rows[0]
    revoked = db.fetch_one("token_revoke", token_id=found["id"])
    return Token.from_row({**found, **(revoked or {})})


# -- creating and cancelling -------------------------------------------------------------
#: Deeper JSON is refused: nothing legitimate needs it, and it invites recursion limits.
MAX_JSON_DEPTH = 64


def _check_storable(value: Any, path: str, errors: dict[str, list[str]], depth: int = 0) -> None:
    """PostgreSQL jsonb refuses NUL characters, lone surrogates and non-finite numbers."""
    if depth > MAX_JSON_DEPTH:
        errors.setdefault(path, []).append(f"Nested deeper than {MAX_JSON_DEPTH} levels.")
    elif isinstance(value, str):
        if "\x00" in value:
            errors.setdefault(path, []).append("Text may not contain the NUL character.")
        else:
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                errors.setdefault(path, []).append("Text must be valid Unicode.")
    elif isinstance(value, float) and not math.isfinite(value):
        errors.setdefault(path, []).append("Numbers must be finite.")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_storable(key, path, errors, depth + 1)
            _check_storable(item, f"{path}.{key}", errors, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_storable(item, f"{path}[{index}]", errors, depth + 1)


def validate_params(job_type: type[JobType], params: dict[str, Any]) -> dict[str, Any]:
    """Validate params against the type's ``Params``; errors are keyed ``params.<field>``."""
    serializer = job_type.Params(data=params)
    errors: dict[str, list[str]] = {}
    if not serializer.is_valid():
        for field, messages in serializer.errors.items():
            key = "params" if field == "non_field_errors" else f"params.{field}"
            errors[key] = [str(m) for m in (messages if isinstance(messages, list) else [messages])]
    for key in params:
        if key not in serializer.fields:
            errors.setdefault(f"params.{key}", []).append("Unknown parameter.")
    if errors:
        raise InvalidInput(errors, "The params are invalid.")
    return dict(serializer.validated_data)


def request_fingerprint(**request: Any) -> str:
    """A stable hash of a create request, to tell a retry from a different request."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def job_create(
    *,
    app: App,
    type: str,
    params: dict[str, Any],
    metadata: dict[str, Any],
    max_attempts: int | None = None,
    timeout: int | None = None,
    delay: float = 0.0,
    idempotency_key: str | None = None,
    fingerprint: str | None = None,
) -> Job:
    """Create a job and its delivery envelope in one statement; return the committed job.

    An ``idempotency_key`` is stored with the request's ``fingerprint``; a second job
    with the same key raises :class:`AlreadyExists` (see :func:`job_create_idempotent`).
    """
    job_type = registry.get(type)
    errors: dict[str, list[str]] = {}
    _check_storable(params, "params", errors)
    _check_storable(metadata, "metadata", errors)
    if errors:
        raise InvalidInput(errors, "The request holds values that cannot be stored.")
    validate_params(job_type, params)
    size = len(json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode())
    if size > settings.MAX_METADATA_BYTES:
        raise InvalidInput(
            {"metadata": [f"Metadata is {size} bytes; the limit is {settings.MAX_METADATA_BYTES}."]},
            "The metadata is too large.",
        )
    timeout_seconds = timeout or job_type.default_timeout()
    attempts_allowed = max_attempts or job_type.default_max_attempts()
    job_id = uuid.uuid4()
    # One statement writes the job, its envelope and its events: atomic by itself.
    row = db.fetch_one(
        "job_create",
        id=job_id,
        app_id=app.id,
        type=type,
        params=params,
        metadata=metadata,
        max_attempts=attempts_allowed,
        timeout_seconds=timeout_seconds,
        idempotency_key=idempotency_key,
        request_hash=fingerprint if idempotency_key is not None else None,
        **queue.envelope(job_id, timeout=timeout_seconds, delay=delay),
    )
    assert row is not None
    return Job.from_row(row)


def job_create_idempotent(*, app: App, idempotency_key: str, fingerprint: str, **request: Any) -> tuple[Job, bool]:
    """Create a job once per ``idempotency_key``; return ``(job, created)``.

    A repeat of the same request (same ``fingerprint``) returns the job the first one
    created, with ``created`` False. The same key with a different request raises
    :class:`IdempotencyKeyReused`. Concurrent repeats are settled by a unique index.
    """
    earlier = _job_for_idempotency_key(app, idempotency_key, fingerprint)
    if earlier is not None:
        return earlier, False
    try:
        with db.atomic():  # a savepoint when nested, so the lookup below still works
            job = job_create(app=app, idempotency_key=idempotency_key, fingerprint=fingerprint, **request)
    except AlreadyExists:
        earlier = _job_for_idempotency_key(app, idempotency_key, fingerprint)
        if earlier is None:
            raise
        return earlier, False
    return job, True


def _job_for_idempotency_key(app: App, key: str, fingerprint: str | None) -> Job | None:
    row = db.fetch_one("job_get_by_idempotency_key", app_id=app.id, idempotency_key=key)
    if row is None:
        return None
    if row["request_hash"] != fingerprint:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used with a different request; use a new key.",
            job_id=str(row["id"]),
        )
    return Job.from_row(row)


def job_cancel(*, app: App, job_id: uuid.UUID) -> Job:
    """Cancel a waiting job now; ask a running one to stop. 409 when already finished."""
    row = db.fetch_one("job_cancel", id=job_id, app_id=app.id)
    if row is not None:
        return Job.from_row(row)
    existing = db.fetch_one("job_get", id=job_id, app_id=app.id)
    if existing is None:
        raise JobNotFound()
    raise JobAlreadyFinished(f"The job is already {existing['status']}.", job_status=existing["status"])


# -- the worker's writes (each fenced by the attempt number) -------------------------------
def job_claim(*, job_id: uuid.UUID, worker: str) -> Job | None:
    """Start the next attempt of a queued job; None when it is not claimable."""
    row = db.fetch_one("job_claim", id=job_id, worker=worker, lease_seconds=settings.LEASE_SECONDS)
    return Job.from_row(row) if row else None


def job_heartbeat(*, job: Job) -> bool | None:
    """Extend the lease. Returns whether cancellation was asked; None if the run is stale."""
    row = db.fetch_one("job_heartbeat", id=job.id, attempt=job.attempts, lease_seconds=settings.LEASE_SECONDS)
    return None if row is None else bool(row["cancel_requested"])


def job_progress(*, job: Job, percent: float, message: str, milestone: bool) -> bool | None:
    """Store progress. Returns whether cancellation was asked; None if the run is stale."""
    row = db.fetch_one(
        "job_progress",
        id=job.id,
        attempt=job.attempts,
        progress={"percent": percent, "message": message},
        milestone=milestone,
        lease_seconds=settings.LEASE_SECONDS,
    )
    return None if row is None else bool(row["cancel_requested"])


def job_succeed(*, job: Job, result: Any) -> Job | None:
    row = db.fetch_one("job_succeed", id=job.id, attempt=job.attempts, result=_json_value(result))
    return Job.from_row(row) if row else None


def job_cancelled(*, job: Job) -> Job | None:
    row = db.fetch_one("job_cancelled", id=job.id, attempt=job.attempts)
    return Job.from_row(row) if row else None


def backoff_delay(attempt: int, *, base: float, cap: float, rand: float | None = None) -> float:
    """Exponential backoff with equal jitter: between half and all of min(cap, base·2^(n-1))."""
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    r = random.random() if rand is None else rand
    return ceiling / 2 + ceiling / 2 * r


def error_payload(exc: BaseException, *, type_name: str | None = None) -> dict[str, str]:
    """What a client sees of an error: its type and message, never a traceback."""
    return {"type": type_name or type(exc).__name__, "message": str(exc)[:2000] or type(exc).__name__}


def job_attempt_failed(
    *, job: Job, error: dict[str, str], retryable: bool, job_type: type[JobType] | None = None
) -> Job | None:
    """End a failed attempt: retried after a backoff while attempts remain, else failed."""
    if retryable and job.attempts < job.max_attempts:
        base = (job_type and job_type.backoff_base) or settings.BACKOFF_BASE
        cap = (job_type and job_type.backoff_cap) or settings.BACKOFF_CAP
        delay = backoff_delay(job.attempts, base=base, cap=cap)
        row = db.fetch_one(
            "job_retry",
            id=job.id,
            attempt=job.attempts,
            error=error,
            **queue.envelope(job.id, timeout=job.timeout_seconds, delay=delay),
        )
    else:
        row = db.fetch_one("job_fail", id=job.id, attempt=job.attempts, error=error)
    return Job.from_row(row) if row else None


def _json_value(value: Any) -> Any:
    """Results are stored as JSON; anything else is refused before it reaches the database."""
    json.dumps(value, allow_nan=False)
    return db.as_json(value)
