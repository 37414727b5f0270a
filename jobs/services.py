"""Writes. Every state change of a job goes through here, in lifecycle order:

create → claim → heartbeat / progress → succeed | fail (retry or for good) | cancelled;
cancel (the application's request); rescue, redeliver and promote (maintenance).

Each change is one guarded SQL statement (``UPDATE … WHERE status … RETURNING``) that
also appends to the job's history and, when the job needs a delivery, writes its
envelope. The worker's writes are fenced by the attempt number: a write from a run that
no longer owns the job raises :class:`~jobs.exceptions.StaleRun` and changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import re
import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from rest_framework import serializers

from . import db, queue
from .conf import settings
from .domain import DEFAULT_SCOPES, App, Job, Scope, Status, Token
from .exceptions import (
    AlreadyExists,
    IdempotencyKeyReused,
    InvalidInput,
    JobAlreadyFinished,
    JobNotFound,
    StaleRun,
    TokenAlreadyRevoked,
    TokenNotFound,
    UnknownJobType,
    WorkerLost,
    error_payload,
)
from .registry import JobType, registry

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "jp_"


# -- tokens ------------------------------------------------------------------------------
def token_hash(token: str) -> str:
    """Tokens are 256 random bits, so a plain SHA-256 is enough to store them safely."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_scopes(names: Iterable[str] | None) -> frozenset[Scope]:
    """The scopes named (``jobs:read``, ``jobs:write``, ``admin``); none given: the default."""
    if names is None:
        return DEFAULT_SCOPES
    names = list(names)
    unknown = sorted(set(names) - {scope.value for scope in Scope})
    if unknown or not names:
        allowed = ", ".join(scope.value for scope in Scope)
        problem = f"Unknown scope {', '.join(map(repr, unknown))}" if unknown else "Give at least one scope"
        raise InvalidInput({"scopes": [f"{problem}; use {allowed}."]})
    return frozenset(Scope(name) for name in names)


def token_issue(*, app_name: str, scopes: Iterable[str] | None = None) -> tuple[str, Token]:
    """Issue a new token for ``app_name`` (created if new) with ``scopes`` (default: read
    and write). The token is returned once."""
    app_name = app_name.strip()
    if not app_name or len(app_name) > 100 or "\x00" in app_name:
        raise InvalidInput({"name": ["Give an application name of 1 to 100 characters."]})
    granted = token_scopes(scopes)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with db.atomic():
        app = db.fetch_one("app_get_or_create", name=app_name)
        assert app is not None
        row = db.fetch_one(
            "token_create",
            app_id=app["id"],
            token_hash=token_hash(token),
            prefix=token[:10],
            scopes=",".join(sorted(granted)),
        )
    assert row is not None
    return token, Token.from_row({**row, "app_name": app["name"]})


def token_revoke(*, ref: str) -> Token:
    """Revoke a token by id or prefix; refused from its next request."""
    rows = db.fetch_all("token_find", ref=ref)
    if not rows:
        raise TokenNotFound(f"no token with id or prefix {ref!r}")
    if len(rows) > 1:
        raise InvalidInput({"token": [f"{ref!r} matches {len(rows)} tokens; give the token id."]})
    found = rows[0]
    revoked = db.fetch_one("token_revoke", token_id=found["id"])
    if revoked is None:
        raise TokenAlreadyRevoked(
            f"token {found['id']} ({found['prefix']}…) was already revoked at {found['revoked_at']:%Y-%m-%d %H:%M:%S}Z"
        )
    return Token.from_row({**found, **revoked})


# -- validating a create request -----------------------------------------------------------
#: The fields of a create request (the API refuses any other).
JOB_FIELDS = ("type", "params", "metadata", "max_attempts", "timeout", "run_at")
_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")


@dataclass(frozen=True)
class JobRequest:
    """A create request that passed every check: what is stored is exactly this."""

    type: str
    params: dict[str, Any]
    metadata: dict[str, Any]
    max_attempts: int
    timeout: int
    run_at: datetime | None

    def fingerprint(self) -> str:
        """A stable hash of the request, to tell a retry from a different request."""
        canonical = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


def _check_storable(value: Any, path: str, errors: dict[str, list[str]], depth: int = 0) -> None:
    """PostgreSQL jsonb refuses NUL characters, lone surrogates and non-finite numbers;
    deep nesting invites recursion limits further on."""
    if depth > settings.MAX_JSON_DEPTH:
        errors.setdefault(path, []).append(f"Nested deeper than {settings.MAX_JSON_DEPTH} levels.")
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


def _json_type_error(field: serializers.Field, value: Any) -> str | None:
    """The published JSON Schema's type rule for one param, applied to the JSON value as
    sent: DRF alone would turn "5" into 5 and true into 1."""
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if value is None:
        return None if field.allow_null else "This field may not be null."
    if isinstance(field, serializers.IntegerField):
        integral = is_number and (isinstance(value, int) or float(value).is_integer())
        return None if integral else "Must be an integer."
    if isinstance(field, (serializers.FloatField, serializers.DecimalField)):
        return None if is_number else "Must be a number."
    if isinstance(field, serializers.BooleanField):
        return None if isinstance(value, bool) else "Must be true or false."
    if isinstance(field, serializers.ChoiceField):
        known = isinstance(value, (str, int, float)) and value in field.choices
        return None if known else f"Must be one of: {', '.join(map(str, field.choices))}."
    if isinstance(field, serializers.CharField):
        return None if isinstance(value, str) else "Must be a string."
    if isinstance(field, serializers.ListField):
        return None if isinstance(value, list) else "Must be a list."
    if isinstance(field, serializers.DictField):
        return None if isinstance(value, dict) else "Must be an object."
    return None


def validate_params(job_type: type[JobType], params: dict[str, Any]) -> dict[str, Any]:
    """Validate params exactly as the type's published JSON Schema says; return the
    validated values (what is stored). Errors are keyed ``params.<field>``."""
    fields = job_type.Params().fields
    errors: dict[str, list[str]] = {}
    for key, value in params.items():
        field = fields.get(key)
        if field is None:
            errors[f"params.{key}"] = ["Unknown parameter."]
        elif (problem := _json_type_error(field, value)) is not None:
            errors[f"params.{key}"] = [problem]
    if not errors:
        serializer = job_type.Params(data=params)
        if not serializer.is_valid():
            for field_name, messages in serializer.errors.items():
                key = "params" if field_name == "non_field_errors" else f"params.{field_name}"
                errors[key] = [str(m) for m in (messages if isinstance(messages, list) else [messages])]
    if errors:
        raise InvalidInput(errors, "The params are invalid.")
    return dict(serializer.validated_data)


def _whole_number(name: str, value: Any, limit: int, errors: dict[str, list[str]]) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        errors[name] = ["Must be an integer."]
    elif not 1 <= value <= limit:
        errors[name] = [f"Must be from 1 to {limit}."]
    else:
        return value
    return None


def _instant(value: Any, errors: dict[str, list[str]]) -> datetime | None:
    if value is None or isinstance(value, datetime):
        when = value
    elif isinstance(value, str):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            errors["run_at"] = ["Give an ISO 8601 date and time, e.g. 2030-01-01T09:00:00Z."]
            return None
    else:
        errors["run_at"] = ["Give an ISO 8601 date and time, e.g. 2030-01-01T09:00:00Z."]
        return None
    if when is not None and when.tzinfo is None:
        errors["run_at"] = ["Give a time zone (Z or ±hh:mm)."]
        return None
    return when


def job_request_validate(fields: Mapping[str, Any], *, unknown_fields: Iterable[str] = ()) -> JobRequest:
    """Check a whole create request (``fields``: any of :data:`JOB_FIELDS`) and name every
    fault at once (one InvalidInput)."""
    errors: dict[str, list[str]] = {name: ["Unknown field."] for name in unknown_fields}
    type, params, metadata = fields.get("type"), fields.get("params"), fields.get("metadata")
    max_attempts, timeout, run_at = fields.get("max_attempts"), fields.get("timeout"), fields.get("run_at")
    job_type: type[JobType] | None = None
    if not isinstance(type, str) or not type:
        errors["type"] = ["A registered job type is required (see /job-types)."]
    else:
        try:
            job_type = registry.get(type)
        except UnknownJobType as exc:
            errors.update(exc.errors)
    params = {} if params is None else params
    metadata = {} if metadata is None else metadata
    for name, value in (("params", params), ("metadata", metadata)):
        if not isinstance(value, dict):
            errors[name] = ["Must be a JSON object."]
        else:
            _check_storable(value, name, errors)
    attempts = _whole_number("max_attempts", max_attempts, settings.MAX_ATTEMPTS_LIMIT, errors)
    seconds = _whole_number("timeout", timeout, settings.MAX_TIMEOUT, errors)
    when = _instant(run_at, errors)
    if isinstance(metadata, dict) and not any(k.startswith("metadata") for k in errors):
        size = len(json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode())
        if size > settings.MAX_METADATA_BYTES:
            errors["metadata"] = [f"Metadata is {size} bytes; the limit is {settings.MAX_METADATA_BYTES}."]
    validated: dict[str, Any] = {}
    if job_type is not None and isinstance(params, dict) and not any(k.startswith("params") for k in errors):
        try:
            validated = validate_params(job_type, params)
        except InvalidInput as exc:
            errors.update(exc.errors)
    if errors or job_type is None:
        raise InvalidInput(errors, "The request is invalid.")
    return JobRequest(
        type=type,
        params=validated,
        metadata=metadata,
        max_attempts=attempts or job_type.default_max_attempts(),
        timeout=seconds or job_type.default_timeout(),
        run_at=when,
    )


# -- create --------------------------------------------------------------------------------
def job_create(
    *,
    app: App,
    type: Any = None,
    params: Any = None,
    metadata: Any = None,
    max_attempts: Any = None,
    timeout: Any = None,
    run_at: Any = None,
    idempotency_key: str | None = None,
    unknown_fields: Iterable[str] = (),
) -> tuple[Job, bool]:
    """Create a job and its delivery envelope in one statement; return ``(job, created)``.

    Every check and limit applies whoever calls (the API, a command, a plugin). With an
    ``idempotency_key``, a repeat of the same request returns the job the first one
    created (``created`` False); the same key with a different request raises
    :class:`IdempotencyKeyReused`. Concurrent repeats are settled by a unique index.
    """
    key_errors = {}
    if idempotency_key is not None and not _IDEMPOTENCY_KEY.fullmatch(idempotency_key):
        key_errors["Idempotency-Key"] = ["Use 1 to 255 printable ASCII characters."]
    try:
        fields = {"type": type, "params": params, "metadata": metadata}
        fields |= {"max_attempts": max_attempts, "timeout": timeout, "run_at": run_at}
        request = job_request_validate(fields, unknown_fields=unknown_fields)
    except InvalidInput as exc:
        raise InvalidInput({**key_errors, **exc.errors}, str(exc)) from None
    if key_errors:
        raise InvalidInput(key_errors, "The request is invalid.")
    if idempotency_key is None:
        return _job_insert(app, request, None, None), True
    fingerprint = request.fingerprint()
    earlier = _job_for_idempotency_key(app, idempotency_key, fingerprint)
    if earlier is not None:
        return earlier, False
    try:
        with db.atomic():  # a savepoint when nested, so the lookup below still works
            return _job_insert(app, request, idempotency_key, fingerprint), True
    except AlreadyExists:
        earlier = _job_for_idempotency_key(app, idempotency_key, fingerprint)
        if earlier is None:
            raise
        return earlier, False


def _job_insert(app: App, request: JobRequest, idempotency_key: str | None, fingerprint: str | None) -> Job:
    job_id = uuid.uuid4()
    row = db.fetch_one(
        "job_create",
        id=job_id,
        app_id=app.id,
        type=request.type,
        params=request.params,
        metadata=request.metadata,
        max_attempts=request.max_attempts,
        timeout_seconds=request.timeout,
        run_at=request.run_at,
        idempotency_key=idempotency_key,
        request_hash=fingerprint,
        **queue.envelope(job_id, timeout=request.timeout),
    )
    assert row is not None
    return Job.from_row(row)


def _job_for_idempotency_key(app: App, key: str, fingerprint: str) -> Job | None:
    row = db.fetch_one("job_get_by_idempotency_key", app_id=app.id, idempotency_key=key)
    if row is None:
        return None
    if row["request_hash"] != fingerprint:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used with a different request; use a new key.",
            job_id=str(row["id"]),
        )
    return Job.from_row(row)


# -- the worker's writes (each fenced by the attempt number) -------------------------------
def job_claim(*, job_id: uuid.UUID, worker: str) -> Job | None:
    """Start the next attempt of a queued (or due) job; None when it is not claimable:
    already taken, finished, cancelled, or not due yet."""
    row = db.fetch_one("job_claim", id=job_id, worker=worker, lease_seconds=settings.LEASE_SECONDS)
    return Job.from_row(row) if row else None


def _fenced(row: dict[str, Any] | None) -> dict[str, Any]:
    if row is None:
        raise StaleRun()
    return row


def job_heartbeat(*, job: Job) -> bool:
    """Extend the lease of this run; return whether cancellation was asked."""
    row = db.fetch_one("job_heartbeat", id=job.id, attempt=job.attempts, lease_seconds=settings.LEASE_SECONDS)
    return bool(_fenced(row)["cancel_requested"])


def job_progress(*, job: Job, percent: float, message: str, milestone: bool) -> bool:
    """Store progress (and extend the lease); return whether cancellation was asked."""
    row = db.fetch_one(
        "job_progress",
        id=job.id,
        attempt=job.attempts,
        progress={"percent": percent, "message": message[: settings.PROGRESS_MESSAGE_MAX]},
        milestone=milestone,
        lease_seconds=settings.LEASE_SECONDS,
    )
    return bool(_fenced(row)["cancel_requested"])


def _job_finish(job: Job, status: Status, *, result: Any = None, error: dict[str, Any] | None = None) -> Job:
    row = db.fetch_one("job_finish", id=job.id, attempt=job.attempts, status=status.value, result=result, error=error)
    return Job.from_row(_fenced(row))


def job_succeed(*, job: Job, result: Any) -> Job:
    """Finish this run with its result. A result that is not JSON raises TypeError or
    ValueError before anything is written."""
    json.dumps(result, allow_nan=False)
    return _job_finish(job, Status.SUCCEEDED, result=db.as_json(result))


def job_fail(*, job: Job, error: BaseException, retryable: bool, job_type: type[JobType] | None = None) -> Job:
    """End this run with an error: retried after a backoff (``scheduled``, with its new
    envelope) while it is retryable and attempts remain, else ``failed`` for good."""
    payload = error_payload(error)
    if not (retryable and job.attempts < job.max_attempts):
        return _job_finish(job, Status.FAILED, error=payload)
    base = (job_type and job_type.backoff_base) or settings.BACKOFF_BASE
    cap = (job_type and job_type.backoff_cap) or settings.BACKOFF_CAP
    row = db.fetch_one(
        "job_retry",
        id=job.id,
        attempt=job.attempts,
        error=payload,
        delay=backoff_delay(job.attempts, base=base, cap=cap),
        **queue.envelope(job.id, timeout=job.timeout_seconds),
    )
    return Job.from_row(_fenced(row))


def job_cancelled(*, job: Job) -> Job:
    """Finish this run as ``cancelled``: it stopped because cancellation was asked."""
    return _job_finish(job, Status.CANCELLED)


def backoff_delay(attempt: int, *, base: float, cap: float, rand: float | None = None) -> float:
    """Exponential backoff with equal jitter: between half and all of min(cap, base·2^(n-1))."""
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    r = random.random() if rand is None else rand
    return ceiling / 2 + ceiling / 2 * r


# -- the application's cancel --------------------------------------------------------------
def job_cancel(*, app: App, job_id: uuid.UUID) -> Job:
    """Cancel a waiting job now; ask a running one to stop. 409 when already finished."""
    row = db.fetch_one("job_cancel", id=job_id, app_id=app.id)
    if row is not None:
        return Job.from_row(row)
    existing = db.fetch_one("job_get", id=job_id, app_id=app.id)
    if existing is None:
        raise JobNotFound()
    raise JobAlreadyFinished(f"The job is already {existing['status']}.", job_status=existing["status"])


# -- maintenance: keeping the promise that no job is lost ----------------------------------
def jobs_rescue_expired(*, limit: int) -> int:
    """Requeue (or end, when its attempts are spent or it was being cancelled) every
    running job whose lease expired: its worker died or hung. Returns how many."""
    handled = 0
    with db.atomic():
        for row in db.fetch_all("job_find_expired", limit=limit):
            worker, attempt, attempts_allowed = row["worker"], row["attempts"], row["max_attempts"]
            common = {"id": row["id"], "attempt": attempt, "worker": worker}
            if row["cancel_requested"]:
                error = error_payload(WorkerLost("the worker stopped while the job was being cancelled"))
                db.fetch_one("job_rescue_fail", status=Status.CANCELLED.value, error=error, **common)
            elif attempt >= attempts_allowed:
                error = error_payload(
                    WorkerLost(
                        f"the worker running attempt {attempt} of {attempts_allowed} stopped responding "
                        "(crashed, was killed, or ran past its timeout)"
                    )
                )
                db.fetch_one("job_rescue_fail", status=Status.FAILED.value, error=error, **common)
            else:
                error = error_payload(
                    WorkerLost(f"the worker running attempt {attempt} stopped responding; the job was requeued")
                )
                db.fetch_one(
                    "job_rescue_requeue",
                    error=error,
                    **common,
                    **queue.envelope(row["id"], timeout=row["timeout_seconds"]),
                )
            logger.warning("rescued job %s (attempt %s, worker %s)", row["id"], attempt, worker)
            handled += 1
    return handled


def jobs_redeliver_lost(*, limit: int, retry: float) -> int:
    """Give a new envelope to every waiting job whose delivery was lost: its envelope
    vanished, or a cluster took it ``retry`` seconds ago and never started it. Returns how many."""
    handled = 0
    with db.atomic():
        for row in db.fetch_all("job_find_undelivered", after=settings.REDELIVER_AFTER, retry=retry, limit=limit):
            db.fetch_one(
                "job_redeliver",
                id=row["id"],
                previous=row["envelope_id"],
                **queue.envelope(row["id"], timeout=row["timeout_seconds"]),
            )
            logger.warning("redelivered job %s (its envelope was lost)", row["id"])
            handled += 1
    return handled


def jobs_promote_due(*, limit: int) -> int:
    """Show ``scheduled`` jobs whose time has come as ``queued`` (their envelope is
    already visible; this only changes what clients see). Returns how many."""
    row = db.fetch_one("job_promote_due", limit=limit)
    return int(row["promoted"]) if row else 0
