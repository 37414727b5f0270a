"""Completion callbacks: which URLs a job may name, the outbox's writes, the signature.

A job may name a ``callback_url``; when it ends, the same SQL statement as its terminal
transition writes a row into the outbox ``jobs_callback`` (``_callback_insert`` in
``jobs/sql/jobs_write.sql``), so "finished" and "to be notified" commit together. Each
cluster's deliverer (``jobs.runtime.callbacks``) takes due rows here, POSTs the job
resource signed with the application's secret, and records every attempt here. A batch's
callback (its own ``callback_url``, queued when its last job ends) goes the same way with
the batch resource, recorded in the batch's history.

Signature: ``Jobplatform-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">``;
a receiver recomputes it (:func:`verify`), compares in constant time and refuses an old
``t`` (replays). ``Jobplatform-Delivery`` carries the callback's id: the same id may
arrive twice (at least once), so receivers can ignore repeats.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import orjson
from django.conf import settings as django_settings

from jobs import db, selectors
from jobs.conf import host_entry, settings
from jobs.resources import batch_output, job_output

from .backoff import backoff_delay

SIGNATURE_HEADER = "Jobplatform-Signature"
DELIVERY_HEADER = "Jobplatform-Delivery"
#: Longest callback URL accepted.
URL_MAX = 2000


# -- which URLs (the rule, checked at create and again at each delivery) -------------------
def allowed_hosts() -> list[str]:
    """The hosts callbacks may go to (``JOBS_CALLBACK_ALLOWED_HOSTS``; none by default)."""
    return list(getattr(django_settings, "JOBS_CALLBACK_ALLOWED_HOSTS", []))


def url_problem(value: Any) -> str | None:
    """What is wrong with ``value`` as a callback URL (None: an http(s) URL, without
    credentials, on an allowed host)."""
    return http_url_problem(
        value,
        allowed=allowed_hosts(),
        setting="JOBS_CALLBACK_ALLOWED_HOSTS",
        subject="Callbacks",
        why_no_credentials="callbacks are signed instead",
    )


def http_url_problem(
    value: Any, *, allowed: list[str], setting: str, subject: str, why_no_credentials: str
) -> str | None:
    """The rule for any URL the platform itself calls (callbacks, migration targets): an
    http or https URL of at most ``URL_MAX`` characters, without credentials, on a host
    the operator lists in ``setting`` (``allowed``), so a client cannot make the platform
    call into the internal network. An entry ``host:port`` allows that port only (the
    URL's, or its scheme's default); a bare ``host`` allows every port of it, the
    database's and the cache's included. None when ``value`` passes."""
    if not isinstance(value, str) or len(value) > URL_MAX:
        return f"Give an http or https URL of at most {URL_MAX} characters."
    try:
        url = urlsplit(value)
        host = (url.hostname or "").lower()
        port = url.port  # raises ValueError for a port out of range
    except ValueError:
        return f"Give an http or https URL of at most {URL_MAX} characters."
    if url.scheme not in ("http", "https") or not host or "\x00" in value:
        return f"Give an http or https URL of at most {URL_MAX} characters."
    if url.username is not None or url.password is not None:
        return f"No user name or password in the URL: {why_no_credentials}."
    if not host_allowed(host, port or DEFAULT_PORTS[url.scheme], allowed):
        return f"{subject} may only go to the hosts {setting} lists ({', '.join(allowed) or 'none'})."
    return None


DEFAULT_PORTS = {"http": 80, "https": 443}


def host_allowed(host: str, port: int, allowed: list[str]) -> bool:
    """Whether an entry of ``allowed`` names ``host`` with ``port`` or with no port."""
    for entry in allowed:
        try:
            allowed_host, allowed_port = host_entry(entry)
        except ValueError:  # refused at start-up; a list set another way never matches
            continue
        if allowed_host == host and allowed_port in (None, port):
            return True
    return False


# -- what is sent -------------------------------------------------------------------------
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


def body(job_id: Any = None, *, batch_id: Any = None) -> bytes:
    """The job resource as the API answers it (integers beyond 64 bits included); for a
    batch's callback (``batch_id``), the batch resource with its counts."""
    if batch_id is not None:
        resource = batch_output(selectors.batch_get_any(batch_id=batch_id), None)
    else:
        resource = job_output(selectors.job_for_callback(job_id=job_id), None)
    try:
        return orjson.dumps(resource)
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(resource, ensure_ascii=False, separators=(",", ":")).encode()


# -- the outbox -------------------------------------------------------------------------------
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
