"""The outermost middleware: a request id, one log line and the HTTP metrics per request."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from jobs import logs, metrics

logger = logging.getLogger("jobs.requests")

#: An incoming ``X-Request-ID`` is kept when it looks like an id (a proxy's or a client's);
#: anything else is replaced, so a log line never carries arbitrary client text.
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def route_of(request: HttpRequest) -> str:
    """The URL pattern's name (``job-detail``), never the raw path: bounded label values."""
    match = getattr(request, "resolver_match", None)
    if match is not None and match.url_name:
        return match.url_name
    if request.path.startswith("/" + settings.STATIC_URL.lstrip("/")):
        return "static"
    return "unmatched"


class RequestObservabilityMiddleware:
    """Times every request, counts it in the metrics (route, method, status), logs one
    line (method, route, status, duration, application, request id) and answers with the
    request id in ``X-Request-ID``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        rid = incoming if SANE_REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        request.request_id = rid  # type: ignore[attr-defined]  # for django.request's records
        token = logs.request_id.set(rid)
        try:
            response = self.get_response(request)
            seconds = time.perf_counter() - started
            route = route_of(request)
            metrics.observe_request(
                route=route, method=request.method or "", status=response.status_code, seconds=seconds
            )
            app = getattr(request, "user", None)
            logger.info(
                "%s %s %s %.1fms",
                request.method,
                route,
                response.status_code,
                seconds * 1000,
                extra={
                    "method": request.method,
                    "route": route,
                    "status": response.status_code,
                    "duration": round(seconds, 6),
                    "app": getattr(app, "name", None),
                },
            )
            response["X-Request-ID"] = rid
            return response
        finally:
            logs.request_id.reset(token)
