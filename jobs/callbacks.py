"""Delivering completion callbacks: the job resource, POSTed and signed.

The outbox rows are written by each terminal transition itself (``_callback_insert`` in
``jobs/sql/jobs.sql``); here every cluster's maintenance pass takes the due ones, POSTs
the job resource, and records each attempt (``jobs.services.callback_*``).

Each delivery is signed with the application's secret, as
``Jobplatform-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">``; a
receiver recomputes it, compares in constant time and refuses an old ``t`` (replays).
``Jobplatform-Delivery`` carries the callback's id: the same id may arrive twice (at
least once), so receivers can ignore repeats.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import orjson
from django.conf import settings as django_settings

from . import selectors, services
from .conf import settings
from .resources import job_output

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "Jobplatform-Signature"
DELIVERY_HEADER = "Jobplatform-Delivery"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes, *, tolerance: float = 300.0, now: float | None = None) -> bool:
    """What a receiver does (a Python receiver can import and call this)."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), header)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect could point anywhere (the internal network): it counts as a failure."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def _allowed(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in getattr(django_settings, "JOBS_CALLBACK_ALLOWED_HOSTS", [])


def _body(job_id: Any) -> bytes:
    """The job resource as the API answers it (integers beyond 64 bits included)."""
    resource = job_output(selectors.job_for_callback(job_id=job_id), None)
    try:
        return orjson.dumps(resource)
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(resource, ensure_ascii=False, separators=(",", ":")).encode()


def _deliver(callback: dict[str, Any]) -> tuple[int | None, str | None]:
    """One POST; the receiver's status, or what went wrong. Never raises: whatever a
    receiver (or the job's content) does, the attempt is recorded."""
    try:
        if not _allowed(callback["url"]):
            return None, "the host is no longer in JOBS_CALLBACK_ALLOWED_HOSTS"
        body = _body(callback["job_id"])
        request = urllib.request.Request(
            callback["url"],
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "jobplatform-callback",
                SIGNATURE_HEADER: signature(callback["callback_secret"], int(time.time()), body),
                DELIVERY_HEADER: str(callback["id"]),
            },
        )
        with _opener.open(request, timeout=settings.CALLBACK_TIMEOUT) as response:
            return response.status, None
    except urllib.error.HTTPError as exc:
        return exc.code, f"HTTP {exc.code}"
    except Exception as exc:  # a misbehaving receiver, a bad URL, anything: recorded, retried
        return None, f"{type(exc).__name__}: {exc}"


def deliver_due(*, limit: int) -> int:
    """One delivery attempt for each of up to ``limit`` due callbacks; returns how many.

    Callbacks are taken one at a time, each hidden from other deliverers only for its own
    attempt (twice ``JOBS_CALLBACK_TIMEOUT``, plus 5 seconds), and each result is written only if
    no other deliverer took it meanwhile (fenced by its attempt count)."""
    attempted = 0
    for _ in range(limit):
        taken = services.callbacks_take(limit=1, lease=settings.CALLBACK_TIMEOUT * 2 + 5)
        if not taken:
            break
        [callback] = taken
        status, error = _deliver(callback)
        if status is not None and 200 <= status < 300:
            services.callback_delivered(callback_id=callback["id"], attempts=callback["attempts"], status=status)
        else:
            logger.info("callback %s for job %s failed: %s", callback["id"], callback["job_id"], error)
            services.callback_failed(
                callback_id=callback["id"], attempts=callback["attempts"], status=status, error=error
            )
        attempted += 1
    return attempted
