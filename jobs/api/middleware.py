"""Guards in front of every view: body size (413), an unreachable database (503), and
the rate-limit header fields of every answer whose request was counted."""

from __future__ import annotations

from collections.abc import Callable

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse

from jobs import db
from jobs.conf import settings
from jobs.exceptions import DatabaseUnavailable
from jobs.ratelimit import Window

from .errors import problem_response


class RequestSizeLimitMiddleware:
    """Refuse a declared body over the limit before anything reads it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        declared = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(declared)
        except ValueError:
            return problem_response(request, 400, "Content-Length must be a whole number.")
        if length < 0:
            return problem_response(request, 400, "Content-Length must be a whole number.")
        if length > settings.MAX_BODY_BYTES:
            return problem_response(
                request, 413, f"The request body is {length} bytes; the limit is {settings.MAX_BODY_BYTES}."
            )
        return self.get_response(request)


class DatabaseUnavailableMiddleware:
    """Last line for views outside DRF (DRF's own go through jobs.api.errors): a
    database outage becomes 503 + Retry-After, never a 500."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if isinstance(exc, (DatabaseUnavailable, DatabaseError)) and db.is_unavailable(exc):
            return self.unavailable(request)
        return None

    @staticmethod
    def unavailable(request: HttpRequest) -> HttpResponse:
        response = problem_response(
            request, 503, "The database is unavailable; retry shortly.", slug="database-unavailable"
        )
        response["Retry-After"] = str(settings.RETRY_AFTER_SECONDS)
        return response


def note_rate_window(request: HttpRequest | None, window: Window | None) -> None:
    """Remember a counter a request was checked against, for its answer's headers."""
    if request is not None and window is not None:
        request.jobs_rate_window = window  # type: ignore[attr-defined]


class RateLimitHeadersMiddleware:
    """``RateLimit-Policy`` and ``RateLimit`` (draft-ietf-httpapi-ratelimit-headers-10) on
    the answer to a request that was counted: a token's requests, or failed attempts."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        window: Window | None = getattr(request, "jobs_rate_window", None)
        if window is not None:
            for name, value in window.headers().items():
                response[name] = value
        return response
