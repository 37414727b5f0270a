"""Idempotency-Key, for every create (a job, a batch): a repeat of the same request answers
what the first one created; the same key with another request is refused. The rule is
written once here; each create says how it inserts and how it finds what a key made."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from jobs import db
from jobs.exceptions import AlreadyExists, IdempotencyKeyReused, InvalidInput

T = TypeVar("T")
R = TypeVar("R")

_IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")


def idempotency_key_errors(key: str | None) -> dict[str, list[str]]:
    """What is wrong with an ``Idempotency-Key`` header (nothing: an empty dict)."""
    if key is not None and not _IDEMPOTENCY_KEY.fullmatch(key):
        return {"Idempotency-Key": ["Use 1 to 255 printable ASCII characters."]}
    return {}


def validated_with_key(validate: Callable[[], R], key: str | None) -> R:
    """``validate()``'s request, with a bad ``key`` named among its faults (one InvalidInput)."""
    key_errors = idempotency_key_errors(key)
    try:
        request = validate()
    except InvalidInput as exc:
        raise InvalidInput({**key_errors, **exc.errors}, str(exc)) from None
    if key_errors:
        raise InvalidInput(key_errors, "The request is invalid.")
    return request


def idempotent_insert(key: str | None, *, insert: Callable[[], T], earlier: Callable[[], T | None]) -> tuple[T, bool]:
    """``(insert(), True)``, or ``(what the key made, False)`` when ``earlier()`` finds it
    (it raises when the key was used with another request). Concurrent repeats of one key
    are settled by the unique index the insert meets: the loser answers the winner's."""
    if key is None:
        return insert(), True
    found = earlier()
    if found is not None:
        return found, False
    try:
        with db.atomic():  # a savepoint when nested, so the lookup below still works
            return insert(), True
    except AlreadyExists:
        found = earlier()
        if found is None:
            raise
        return found, False


def earlier_row(query: str, *, app_id: Any, key: str, fingerprint: str, named: str) -> dict[str, Any] | None:
    """The row ``query`` finds for this application's ``key`` (None: the key is new); the
    key used with another request (another ``fingerprint``) raises IdempotencyKeyReused,
    naming what it made as ``named`` (``job_id``, ``batch_id``)."""
    row = db.fetch_one(query, app_id=app_id, idempotency_key=key)
    if row is not None and row["request_hash"] != fingerprint:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was already used with a different request; use a new key.",
            **{named: str(row["id"])},
        )
    return row
