"""Writes. Every state change of a job goes through here, in lifecycle order:

create → claim → heartbeat / progress → succeed | fail (retry or for good) | cancelled;
cancel (the application's request); rescue, redeliver and promote (maintenance).

Each change is one guarded SQL statement (``UPDATE … WHERE status … RETURNING``) that
also appends to the job's history and, when the job needs a delivery, writes its
envelope. The worker's writes are fenced by the attempt number: a write from a run that
no longer owns the job raises :class:`~jobs.exceptions.StaleRun` and changes nothing.
"""

from __future__ import annotations

import functools
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
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings as django_settings
from django.utils import timezone
from rest_framework import serializers
from rest_framework.fields import SkipField, empty

from . import db, logs
from . import queue as queues
from .conf import settings
from .domain import DEFAULT_SCOPES, App, Job, Scope, Status, Token
from .exceptions import (
    AlreadyExists,
    AppNotFound,
    IdempotencyKeyReused,
    InvalidInput,
    JobAlreadyFinished,
    JobNotFound,
    StaleRun,
    TokenAlreadyRevoked,
    TokenNotFound,
    TooManyUnfinishedJobs,
    UnknownJobType,
    WorkerLost,
    error_payload,
)
from .registry import JobType, registry
from .selectors import forget_cached_tokens, token_hash

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "jp_"


# -- tokens ------------------------------------------------------------------------------
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
    """Revoke a token by id or prefix; refused from its next request, and every browser
    session logged in with it ends (in the same transaction)."""
    rows = db.fetch_all("token_find", ref=ref)
    if not rows:
        raise TokenNotFound(f"no token with id or prefix {ref!r}")
    if len(rows) > 1:
        raise InvalidInput({"token": [f"{ref!r} matches {len(rows)} tokens; give the token id."]})
    found = rows[0]
    with db.atomic():
        revoked = db.fetch_one("token_revoke", token_id=found["id"])
        if revoked is not None:
            db.fetch_all("session_end_for_token", token_id=found["id"])
    forget_cached_tokens()
    if revoked is None:
        raise TokenAlreadyRevoked(
            f"token {found['id']} ({found['prefix']}…) was already revoked at {found['revoked_at']:%Y-%m-%d %H:%M:%S}Z"
        )
    return Token.from_row({**found, **revoked})


def app_set_max_running(*, app_name: str, max_running: int | None) -> dict[str, Any]:
    """Give an application its own cap on running jobs (None: the setting applies)."""
    if max_running is not None and max_running < 0:
        raise InvalidInput({"max_running": ["Must be 0 (no cap) or more."]})
    row = db.fetch_one("app_set_max_running", name=app_name, max_running=max_running)
    if row is None:
        raise AppNotFound(f"no application named {app_name!r}")
    return row


def app_rotate_callback_secret(*, app_name: str) -> str:
    """Give an application a new secret for signing its completion callbacks; returned once."""
    secret = secrets.token_hex(32)
    if db.fetch_one("app_rotate_callback_secret", name=app_name, secret=secret) is None:
        raise AppNotFound(f"no application named {app_name!r}")
    return secret


# -- validating a create request -----------------------------------------------------------
#: The fields of a create request (the API refuses any other).
JOB_FIELDS = ("type", "queue", "params", "metadata", "max_attempts", "timeout", "run_at", "callback_url")
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
    queue: str = queues.DEFAULT_QUEUE
    callback_url: str | None = None

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


@functools.cache
def _params_fields(params_class: type[serializers.Serializer]) -> dict[str, serializers.Field]:
    """A type's param fields, built once (DRF deep-copies them for every instance)."""
    return dict(params_class().fields)


@functools.cache
def _fields_suffice(params_class: type[serializers.Serializer]) -> bool:
    """Whether running each field's own validation is all the serializer would do: no
    ``validate``/``validate_<field>`` hooks, every field writable under its own name."""
    hooks = [
        name
        for name in dir(params_class)
        if (name == "validate" or name.startswith("validate_"))
        and getattr(params_class, name) is not getattr(serializers.Serializer, name, None)
    ]
    fields = _params_fields(params_class)
    return not hooks and all(f.source == name and not f.read_only for name, f in fields.items())


def _validate_fields(fields: dict[str, serializers.Field], params: dict[str, Any]) -> tuple[dict, dict]:
    """Each field's own validation, as the serializer runs it, without building one."""
    values: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for name, field in fields.items():
        try:
            values[name] = field.run_validation(params.get(name, empty))
        except serializers.ValidationError as exc:
            detail = exc.detail if isinstance(exc.detail, list) else [exc.detail]
            errors[f"params.{name}"] = [str(message) for message in detail]
        except SkipField:
            pass
    return values, errors


def validate_params(job_type: type[JobType], params: dict[str, Any]) -> dict[str, Any]:
    """Validate params exactly as the type's published JSON Schema says; return the
    validated values (what is stored). Errors are keyed ``params.<field>``."""
    fields = _params_fields(job_type.Params)
    errors: dict[str, list[str]] = {}
    for key, value in params.items():
        field = fields.get(key)
        if field is None:
            errors[f"params.{key}"] = ["Unknown parameter."]
        elif (problem := _json_type_error(field, value)) is not None:
            errors[f"params.{key}"] = [problem]
    validated: dict[str, Any] = {}
    if not errors and _fields_suffice(job_type.Params):
        validated, errors = _validate_fields(fields, params)
    elif not errors:
        serializer = job_type.Params(data=params)
        if serializer.is_valid():
            validated = dict(serializer.validated_data)
        for field_name, messages in serializer.errors.items():
            key = "params" if field_name == "non_field_errors" else f"params.{field_name}"
            errors[key] = [str(m) for m in (messages if isinstance(messages, list) else [messages])]
    if errors:
        raise InvalidInput(errors, "The params are invalid.")
    return validated


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


def parse_instant(value: str | datetime) -> datetime:
    """An ISO 8601 date and time with a time zone (text or a datetime), as the same instant
    in UTC; ValueError (with a message for the client) otherwise. PostgreSQL refuses the
    offsets beyond ±15:59 that ISO 8601 allows (a 500 once): in UTC no offset is left."""
    if isinstance(value, datetime):
        when = value
    else:
        try:
            when = datetime.fromisoformat(value)
        except (TypeError, ValueError):
            raise ValueError("Give an ISO 8601 date and time, e.g. 2030-01-01T09:00:00Z.") from None
    if when.tzinfo is None:
        raise ValueError("Give a time zone (Z or ±hh:mm).")
    try:
        return when.astimezone(UTC)
    except OverflowError:
        raise ValueError("Out of range: give an instant from year 1 to 9999 (in UTC).") from None


def _instant(value: Any, errors: dict[str, list[str]]) -> datetime | None:
    if value is None:
        return None
    try:
        when = parse_instant(value)
    except ValueError as exc:
        errors["run_at"] = [str(exc)]
        return None
    # Within what a job can wait for: far dates would sit in the broker's table for ever
    # (and year 9999 overflows in the broker's own arithmetic).
    if not datetime(2000, 1, 1, tzinfo=UTC) <= when <= timezone.now() + timedelta(days=settings.MAX_SCHEDULE_DAYS):
        errors["run_at"] = [f"Give a time from 2000-01-01 to {settings.MAX_SCHEDULE_DAYS} days from now."]
        return None
    return when


def _callback_url(value: Any, errors: dict[str, list[str]]) -> str | None:
    """An http(s) URL on a host that JOBS_CALLBACK_ALLOWED_HOSTS names, or None."""
    if value is None:
        return None
    allowed = getattr(django_settings, "JOBS_CALLBACK_ALLOWED_HOSTS", [])
    if not isinstance(value, str) or len(value) > 2000:
        errors["callback_url"] = ["Give an http or https URL of at most 2000 characters."]
        return None
    try:
        url = urlsplit(value)
        host = (url.hostname or "").lower()
    except ValueError:
        url, host = None, ""
    if url is None or url.scheme not in ("http", "https") or not host or "\x00" in value:
        errors["callback_url"] = ["Give an http or https URL of at most 2000 characters."]
    elif url.username is not None or url.password is not None:
        errors["callback_url"] = ["No user name or password in the URL: callbacks are signed instead."]
    elif host not in allowed:
        hosts = ", ".join(allowed) or "none"
        errors["callback_url"] = [f"Callbacks may only go to the hosts JOBS_CALLBACK_ALLOWED_HOSTS lists ({hosts})."]
    else:
        return value
    return None


_UNKNOWN_FIELD = ["Unknown field."]


def job_request_validate(fields: Mapping[str, Any], *, unknown_fields: Iterable[str] = ()) -> JobRequest:
    """Check a whole create request (``fields``: any of :data:`JOB_FIELDS`) and name every
    fault at once (one InvalidInput)."""
    # Unknown fields are named first but added last: the checks below scan ``errors``, and
    # a body may hold a megabyte of unknown keys.
    errors: dict[str, list[str]] = {}
    type, params, metadata = fields.get("type"), fields.get("params"), fields.get("metadata")
    max_attempts, timeout, run_at = fields.get("max_attempts"), fields.get("timeout"), fields.get("run_at")
    callback_url = _callback_url(fields.get("callback_url"), errors)
    queue = queues.DEFAULT_QUEUE if fields.get("queue") is None else fields["queue"]
    if queue not in queues.queue_names():
        errors["queue"] = [f"Unknown queue; use one of: {', '.join(queues.queue_names())} (JOBS_QUEUES)."]
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
    # One message list shared by every unknown field (never mutated): 100,000 of them
    # cost a dict, not 100,000 lists.
    unknown = dict.fromkeys(unknown_fields, _UNKNOWN_FIELD)
    if errors or unknown or job_type is None:
        raise InvalidInput({**unknown, **errors}, "The request is invalid.")
    return JobRequest(
        type=type,
        params=validated,
        metadata=metadata,
        max_attempts=attempts or job_type.default_max_attempts(),
        timeout=seconds or job_type.default_timeout(),
        run_at=when,
        queue=queue,
        callback_url=callback_url,
    )


# -- create --------------------------------------------------------------------------------
def job_create(
    *,
    app: App,
    type: Any = None,
    queue: Any = None,
    callback_url: Any = None,
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
        fields = {"type": type, "queue": queue, "params": params, "metadata": metadata, "callback_url": callback_url}
        fields |= {"max_attempts": max_attempts, "timeout": timeout, "run_at": run_at}
        request = job_request_validate(fields, unknown_fields=unknown_fields)
    except InvalidInput as exc:
        raise InvalidInput({**key_errors, **exc.errors}, str(exc)) from None
    if key_errors:
        raise InvalidInput(key_errors, "The request is invalid.")
    if idempotency_key is None:
        return _created(_job_insert(app, request, None, None)), True
    fingerprint = request.fingerprint()
    earlier = _job_for_idempotency_key(app, idempotency_key, fingerprint)
    if earlier is not None:
        return earlier, False
    try:
        with db.atomic():  # a savepoint when nested, so the lookup below still works
            job = _job_insert(app, request, idempotency_key, fingerprint)
        return _created(job), True
    except AlreadyExists:
        earlier = _job_for_idempotency_key(app, idempotency_key, fingerprint)
        if earlier is None:
            raise
        return earlier, False


def _created(job: Job) -> Job:
    logs.job_transition(job.status.value, job_id=job.id, job_type=job.type, attempt=0, worker=None, app_id=job.app_id)
    return job


def _job_insert(app: App, request: JobRequest, idempotency_key: str | None, fingerprint: str | None) -> Job:
    job_id = uuid.uuid4()
    row = db.fetch_one(
        "job_create",
        id=job_id,
        app_id=app.id,
        type=request.type,
        queue=request.queue,
        callback_url=request.callback_url,
        params=request.params,
        metadata=request.metadata,
        max_attempts=request.max_attempts,
        timeout_seconds=request.timeout,
        run_at=request.run_at,
        idempotency_key=idempotency_key,
        request_hash=fingerprint,
        max_unfinished=settings.MAX_UNFINISHED_PER_APP,
        **queues.envelope(job_id, timeout=request.timeout, queue=request.queue),
    )
    if row is None:
        raise TooManyUnfinishedJobs(
            f"The application already has {settings.MAX_UNFINISHED_PER_APP} unfinished jobs "
            "(JOBS_MAX_UNFINISHED_PER_APP); retry once some have finished."
        )
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
    cap = settings.MAX_RUNNING_PER_APP
    row = db.fetch_one("job_claim", id=job_id, worker=worker, lease_seconds=settings.LEASE_SECONDS, max_running=cap)
    return Job.from_row(row) if row else None


def job_defer(*, job_id: uuid.UUID) -> bool:
    """After a refused claim: a job still waiting and due was refused because its
    application ran its cap of jobs; offer it again after ``JOBS_FAIRNESS_DEFER_SECONDS``
    (its delivery was spent on the refusal). Returns whether it was deferred (False:
    taken by another run, finished, cancelled, or not due)."""
    job = db.fetch_one("job_delivery", id=job_id)
    if job is None:
        return False
    row = db.fetch_one(
        "job_defer",
        id=job_id,
        delay=settings.FAIRNESS_DEFER_SECONDS,
        **queues.envelope(job_id, timeout=job["timeout_seconds"], queue=job["queue"]),
    )
    return row is not None


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
    envelope) while it is retryable and attempts remain — unless its cancellation was
    asked, then ``cancelled`` — else ``failed`` for good."""
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
        **queues.envelope(job.id, timeout=job.timeout_seconds, queue=job.queue),
    )
    if row is None:
        # Still this run's, but its application asked it to stop meanwhile: it ends
        # cancelled rather than running again (else StaleRun, from the fenced finish).
        return _job_finish(job, Status.CANCELLED)
    return Job.from_row(row)


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
                transition = Status.CANCELLED.value
            elif attempt >= attempts_allowed:
                error = error_payload(
                    WorkerLost(
                        f"the worker running attempt {attempt} of {attempts_allowed} stopped responding "
                        "(crashed, was killed, or ran past its timeout)"
                    )
                )
                db.fetch_one("job_rescue_fail", status=Status.FAILED.value, error=error, **common)
                transition = Status.FAILED.value
            else:
                error = error_payload(
                    WorkerLost(f"the worker running attempt {attempt} stopped responding; the job was requeued")
                )
                db.fetch_one(
                    "job_rescue_requeue",
                    error=error,
                    **common,
                    **queues.envelope(row["id"], timeout=row["timeout_seconds"], queue=row["queue"]),
                )
                transition = "rescued"
            # Its worker stopped responding: worth a WARNING, not only the INFO of a transition.
            logs.job_transition(
                transition,
                job_id=row["id"],
                job_type=row["type"],
                attempt=attempt,
                worker=worker,
                level=logging.WARNING,
                lease_expired=True,
            )
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
                **queues.envelope(row["id"], timeout=row["timeout_seconds"], queue=row["queue"]),
            )
            logger.warning("redelivered job %s (its envelope was lost)", row["id"])
            handled += 1
    return handled


def jobs_promote_due(*, limit: int) -> int:
    """Show ``scheduled`` jobs whose time has come as ``queued`` (their envelope is
    already visible; this only changes what clients see). Returns how many."""
    row = db.fetch_one("job_promote_due", limit=limit)
    return int(row["promoted"]) if row else 0


# -- completion callbacks (the outbox) ----------------------------------------------------
def callbacks_take(*, limit: int, lease: float, busy_hosts: Iterable[str] = ()) -> list[dict[str, Any]]:
    """Due callbacks, each taken for one delivery attempt (hidden from other deliverers
    for ``lease`` seconds), but none to a host in ``busy_hosts``. Each row names its ``host``."""
    return db.fetch_all("callback_take", limit=limit, lease=lease, busy_hosts=list(busy_hosts))


def callback_delivered(*, callback_id: int, attempts: int, status: int) -> None:
    """The receiver answered 2xx: the callback is done (and in the job's history)."""
    db.fetch_one("callback_delivered", callback_id=callback_id, attempts=attempts, status=status)


def callback_failed(*, callback_id: int, attempts: int, status: int | None, error: str | None) -> None:
    """The delivery failed: retried with backoff, or given up after the last attempt."""
    delay = backoff_delay(attempts, base=settings.CALLBACK_BACKOFF_BASE, cap=settings.CALLBACK_BACKOFF_CAP)
    db.fetch_one(
        "callback_failed",
        callback_id=callback_id,
        attempts=attempts,
        delay=delay,
        max_attempts=settings.CALLBACK_MAX_ATTEMPTS,
        status=status,
        error=(error or "")[: settings.ERROR_MESSAGE_MAX] or None,
    )
