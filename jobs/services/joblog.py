"""A job's log: the lines its code writes with ``ctx.log()``, kept per job in the
append-only ``jobs_log`` table.

:func:`log_line` makes a line out of what the job passed (in the job's own thread, so a
wrong level is an error where it was made); the worker's buffer
(``jobs.runtime.journal``) then writes lines in batches with :func:`job_log_append`,
fenced by the attempt like every write of a running attempt. Bounds: a message (and the
``fields`` as JSON) longer than ``JOBS_LOG_MESSAGE_MAX`` is cut and marked; a job keeps
at most ``JOBS_LOG_MAX_LINES_PER_JOB`` lines; lines over a bound are dropped and counted
on the job (``log_dropped``), never lost without a trace. The buffer's notes on lines
dropped for the rate are stored beside them, outside the bound and ``log_lines``.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

from jobs import db
from jobs.conf import settings
from jobs.domain import Job, LogLevel
from jobs.exceptions import StaleRun


def _text(value: str) -> str:
    """Text PostgreSQL stores: NUL characters and lone surrogates replaced (a log line is
    never refused for the bytes it quotes)."""
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def cut(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters, marked when cut (never silently)."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… [{len(text) - limit} characters cut]"


def _plain(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON PostgreSQL stores: other objects as their ``str()``, non-finite
    numbers as text, anything nested deeper than ``JOBS_MAX_JSON_DEPTH`` as its ``repr()``."""
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return _text(value)
    if depth >= settings.MAX_JSON_DEPTH:
        return _text(repr(value))
    if isinstance(value, dict):
        return {_text(str(key)): _plain(item, depth + 1) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item, depth + 1) for item in value]
    return _text(str(value))


def log_line(*, message: Any, level: str, fields: dict[str, Any], at: datetime) -> dict[str, Any]:
    """One line as it is written: ``level`` one of :class:`~jobs.domain.LogLevel` (else
    ValueError), ``message`` as text and ``fields`` as JSON, each cut at
    ``JOBS_LOG_MESSAGE_MAX`` characters and marked as cut."""
    try:
        level = LogLevel(level).value
    except ValueError:
        raise ValueError(f"level must be one of {', '.join(LogLevel)}, not {level!r}") from None
    limit = settings.LOG_MESSAGE_MAX
    plain = _plain(fields)
    encoded = json.dumps(plain, ensure_ascii=False, separators=(",", ":"))
    if len(encoded) > limit:
        plain = {"fields_cut": cut(encoded, limit)}
    return {"at": at.isoformat(), "level": level, "message": cut(_text(str(message)), limit), "fields": plain}


def job_log_append(
    *, job: Job, lines: list[dict[str, Any]], dropped: int, notes: list[dict[str, Any]] | None = None
) -> int:
    """Write a batch of this attempt's lines (from :func:`log_line`) and count ``dropped``
    lines it did not keep; return how many more lines the job may keep. Lines over the
    job's bound are counted as dropped. ``notes`` (the buffer's notes on lines dropped for
    the rate) are written after the lines, outside the job's bound and its line count. A
    stale run raises StaleRun and writes nothing."""
    row = db.fetch_one(
        "job_log_append",
        id=job.id,
        attempt=job.attempts,
        lines=db.as_json(lines),
        notes=db.as_json(notes or []),
        dropped=dropped,
        max_lines=settings.LOG_MAX_LINES_PER_JOB,
    )
    if row is None:
        raise StaleRun()
    return int(row["room"])
