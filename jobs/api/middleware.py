"""Guards in front of every view: body size (413) and an unreachable database (503)."""

from __future__ import annotations

from collections.abc import Callable

from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse

from jobs import db
from jobs.conf import settings
from jobs.exceptions import DatabaseUnavailable

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
