"""Guards in front of every view: body size (413), chunked bodies, an unreachable database (503),
the Content-Security-Policy of every HTML page, and the rate-limit header fields of every answer
whose request was counted."""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO

from django.conf import settings as django_settings
from django.core.handlers.wsgi import LimitedStream
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse

from jobs import db
from jobs.conf import settings
from jobs.exceptions import DatabaseUnavailable
from jobs.services.ratelimit import Window

from .errors import BadRequest, BodyTimeout, LengthRequired, PayloadTooLarge, problem_response


class RequestSizeLimitMiddleware:
    """Refuse a declared body over the limit before anything reads it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        declared = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(declared)
        except ValueError:
            return problem_response(request, BadRequest("Content-Length must be a whole number."))
        if length < 0:
            return problem_response(request, BadRequest("Content-Length must be a whole number."))
        if length > settings.MAX_BODY_BYTES:
            too_large = f"The request body is {length} bytes; the limit is {settings.MAX_BODY_BYTES}."
            return problem_response(request, PayloadTooLarge(too_large))
        if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower() and not request.META.get(
            "CONTENT_LENGTH"
        ):
            refused = self.read_chunked_body(request)
            if refused is not None:
                return refused
        return self.get_response(request)

    @staticmethod
    def read_chunked_body(request: HttpRequest) -> HttpResponse | None:
        """A chunked body has no Content-Length, and Django reads exactly Content-Length
        bytes: it would see an empty body (a create answered "type is required"). When the
        server decodes the chunks (gunicorn does, and says so with ``wsgi.input_terminated``)
        read the body here, bounded, and hand it on with its length; otherwise answer 411."""
        if not request.META.get("wsgi.input_terminated"):
            return problem_response(request, LengthRequired())
        limit = settings.MAX_BODY_BYTES
        try:
            body = request.META["wsgi.input"].read(limit + 1)
        except TimeoutError:
            # gunicorn's body deadline (docker/gunicorn.conf.py), as for any other body.
            return problem_response(request, BodyTimeout())
        except Exception:  # a malformed chunk (gunicorn's own parse errors) or a dropped connection
            return problem_response(request, BadRequest("The chunked request body could not be read."))
        if len(body) > limit:
            return problem_response(request, PayloadTooLarge(f"The request body is over the limit of {limit} bytes."))
        request.META["CONTENT_LENGTH"] = str(len(body))
        request._stream = LimitedStream(BytesIO(body), len(body))  # type: ignore[attr-defined]
        return None


class DatabaseUnavailableMiddleware:
    """Last line for views outside DRF (DRF's own go through jobs.api.errors): a
    database outage becomes 503 + Retry-After, never a 500."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if isinstance(exc, (DatabaseUnavailable, DatabaseError)) and db.is_unavailable(exc):
            return problem_response(request, exc)
        return None


class ContentSecurityPolicyMiddleware:
    """``Content-Security-Policy: CONTENT_SECURITY_POLICY`` on every HTML answer (the
    browsable API, the log-in page) that does not carry its own.

    The pages load scripts and styles only from this origin: DRF's one inline
    ``<script>`` is a JSON data block (``type="application/json"``), which a browser
    does not run, and the log-in page's layout is a static file. A view whose page
    needs more (a documentation page, say) sets its own header, which is kept."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.policy: str = django_settings.CONTENT_SECURITY_POLICY

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            self.policy
            and response.get("Content-Type", "").startswith("text/html")
            and "Content-Security-Policy" not in response
        ):
            response["Content-Security-Policy"] = self.policy
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
