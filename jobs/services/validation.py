"""Checking a create request: every field of a job as a client sends it, every fault
named at once (one :class:`~jobs.exceptions.InvalidInput`), and what passes is exactly
what is stored (:class:`JobRequest`).

The type's own params are checked by the type (``JobType.validate_params``, the rules its
published JSON Schema states); a callback URL by the callbacks' allowed-host rule.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.utils import timezone

from jobs import queue as queues
from jobs.conf import settings
from jobs.domain import App
from jobs.exceptions import InvalidInput, UnknownJobType, listing, unknown_field
from jobs.registry import JobType, registry

from . import callbacks

#: The fields of a create request (the API refuses any other).
JOB_FIELDS = ("type", "queue", "params", "metadata", "max_attempts", "timeout", "run_at", "callback_url")


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


def check_storable(value: Any, path: str, errors: dict[str, list[str]], depth: int = 0) -> None:
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
            check_storable(key, path, errors, depth + 1)
            check_storable(item, f"{path}.{key}", errors, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_storable(item, f"{path}[{index}]", errors, depth + 1)


def metadata_errors(metadata: Any) -> dict[str, list[str]]:
    """What is wrong with ``metadata`` (a job's or a batch's): it must be a JSON object
    PostgreSQL can store, at most ``JOBS_MAX_JSON_DEPTH`` deep and ``JOBS_MAX_METADATA_BYTES``
    long as compact UTF-8 JSON. Nothing wrong: an empty dict."""
    if not isinstance(metadata, dict):
        return {"metadata": ["Must be a JSON object."]}
    errors: dict[str, list[str]] = {}
    check_storable(metadata, "metadata", errors)
    if not errors:
        size = len(json.dumps(metadata, separators=(",", ":"), ensure_ascii=False).encode())
        if size > settings.MAX_METADATA_BYTES:
            errors["metadata"] = [f"Metadata is {size} bytes; the limit is {settings.MAX_METADATA_BYTES}."]
    return errors


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
    if value is None:
        return None
    problem = callbacks.url_problem(value)
    if problem is not None:
        errors["callback_url"] = [problem]
        return None
    return value


#: What an unknown field of a job body is told.
_UNKNOWN_FIELD = unknown_field("a job", JOB_FIELDS)


def job_request_validate(
    fields: Mapping[str, Any],
    *,
    app: App | None = None,
    unknown_fields: Iterable[str] = (),
    unknown: list[str] = _UNKNOWN_FIELD,
) -> JobRequest:
    """Check a whole create request (``fields``: any of :data:`JOB_FIELDS`) of the
    application ``app`` and name every fault at once (one InvalidInput). The type's params
    are checked for ``app`` (a migration's source must be open to it); every service that
    creates a job passes it. ``unknown`` is what each of ``unknown_fields`` is told (by
    default: the fields a job body accepts)."""
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
        errors["type"] = [f"A job type is required; installed types: {listing(registry.names())} (see GET /job-types)."]
    else:
        try:
            job_type = registry.get(type)
        except UnknownJobType as exc:
            errors.update(exc.errors)
    params = {} if params is None else params
    metadata = {} if metadata is None else metadata
    if not isinstance(params, dict):
        errors["params"] = ["Must be a JSON object."]
    else:
        check_storable(params, "params", errors)
    errors.update(metadata_errors(metadata))
    attempts = _whole_number("max_attempts", max_attempts, settings.MAX_ATTEMPTS_LIMIT, errors)
    seconds = _whole_number("timeout", timeout, settings.MAX_TIMEOUT, errors)
    when = _instant(run_at, errors)
    validated: dict[str, Any] = {}
    if job_type is not None and isinstance(params, dict) and not any(k.startswith("params") for k in errors):
        try:
            validated = job_type.validate_params(params, app=app)
        except InvalidInput as exc:
            errors.update(exc.errors)
    # One message list shared by every unknown field (never mutated): 100,000 of them
    # cost a dict, not 100,000 lists.
    unknowns = dict.fromkeys(unknown_fields, unknown)
    if errors or unknowns or job_type is None:
        raise InvalidInput({**unknowns, **errors}, "The request is invalid.")
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
