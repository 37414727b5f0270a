"""One error shape for every answer: RFC 9457 ``application/problem+json``.

Domain errors (``jobs.exceptions``) and DRF's own map to a status code here and
nowhere else. Validation problems list each offending field under ``errors``
(``field`` as a dotted path, ``pointer`` as a JSON Pointer into the request body).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import DatabaseError
from django.http import Http404, HttpRequest, JsonResponse, UnreadablePostError
from rest_framework import exceptions, status
from rest_framework.response import Response

from jobs import db
from jobs.conf import settings
from jobs.exceptions import (
    Conflict,
    DatabaseUnavailable,
    IdempotencyKeyReused,
    InvalidInput,
    JobsError,
    NotFound,
    RateLimited,
    ScopeRequired,
    TooManyUnfinishedJobs,
)

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:jobplatform:problem:"


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


class Refused(exceptions.APIException):
    """A domain error (``ScopeRequired``, ``RateLimited``) raised where DRF expects an
    APIException: in authentication, where DRF then drops the user, and in permission
    checks, which the browsable API also runs to decide which forms to show. The handler
    answers for the domain error it carries."""

    def __init__(self, error: JobsError) -> None:
        self.error = error
        super().__init__(str(error))


def problem(
    status_code: int,
    detail: str,
    *,
    slug: str | None = None,
    errors: tuple[list[dict[str, str]], int] | None = None,
    instance: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": TYPE_PREFIX + slug if slug else "about:blank",
        "title": HTTPStatus(status_code).phrase,
        "status": status_code,
        "detail": cut(detail, settings.ERROR_ECHO_MAX),
    }
    if instance:
        body["instance"] = cut(instance, settings.ERROR_ECHO_MAX)
    if errors and errors[0]:
        # field_errors(): the first JOBS_ERRORS_LISTED_MAX, and how many there were.
        listed, total = errors
        body["errors"] = listed
        if total > len(listed):
            body["errors_truncated"] = total - len(listed)
    body.update(extra)
    return body


def cut(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters (marked with "…"): what a client sent is echoed
    in errors, and an error body must stay small whatever it sent."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def _pointer(field: str) -> str:
    parts = field.replace("[", ".").replace("]", "").split(".") if field else []
    return "#" + "".join("/" + p.replace("~", "~0").replace("/", "~1") for p in parts if p)


def _flatten(errors: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(errors, dict):
        for key, value in errors.items():
            name = "" if key in ("non_field_errors", "__all__") else str(key)
            path = f"{prefix}.{name}" if prefix and name else (name or prefix)
            yield from _flatten(value, path)
    elif isinstance(errors, list):
        for item in errors:
            if isinstance(item, (dict, list)):
                yield from _flatten(item, prefix)
            else:
                yield prefix, item
    else:
        yield prefix, errors


def field_errors(errors: Any, prefix: str = "") -> tuple[list[dict[str, str]], int]:
    """Flatten DRF / domain error dicts into ``[{field, pointer, detail}]`` and their count.

    Only the first ``JOBS_ERRORS_LISTED_MAX`` are built (each field name and message cut
    to ``JOBS_ERROR_ECHO_MAX`` characters); the rest are only counted, so 100,000 unknown
    keys cost a count, not a 6 MB answer."""
    echo, listed = settings.ERROR_ECHO_MAX, settings.ERRORS_LISTED_MAX
    out: list[dict[str, str]] = []
    for field, detail in _flatten(errors, prefix):
        name = cut(field, echo)
        out.append({"field": name, "pointer": cut(_pointer(name), echo), "detail": cut(str(detail), echo)})
        if len(out) >= listed:
            return out, _count(errors)
    return out, len(out)


def _count(errors: Any) -> int:
    """How many entries :func:`_flatten` would yield, without building their paths."""
    if isinstance(errors, dict):
        return sum(map(_count, errors.values()))
    if isinstance(errors, list):
        return sum(_count(item) if isinstance(item, (dict, list)) else 1 for item in errors)
    return 1


def _wants_html(request: Any) -> bool:
    renderer = getattr(request, "accepted_renderer", None)
    return getattr(renderer, "format", None) == "api"


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, kind):
            return True
        cause = cause.__cause__
    return False


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    request = context.get("request")
    instance = request.path if request is not None else None
    headers: dict[str, str] = {}
    if isinstance(exc, Refused):
        exc = exc.error

    if isinstance(exc, (Http404, NotFound)):
        code, body = 404, problem(404, str(exc) if isinstance(exc, NotFound) else "Not found.", instance=instance)
    elif isinstance(exc, InvalidInput):
        code = 400
        body = problem(400, str(exc), slug="invalid-request", errors=field_errors(exc.errors), instance=instance)
    elif isinstance(exc, IdempotencyKeyReused):
        code = 422
        body = problem(422, str(exc), slug="idempotency-key-reused", instance=instance, **exc.context)
    elif isinstance(exc, ScopeRequired):
        code = 403
        body = problem(403, str(exc), slug="insufficient-scope", instance=instance, **exc.context)
    elif isinstance(exc, RateLimited):
        code = 429
        body = problem(429, str(exc), slug="rate-limited", instance=instance, retry_after=exc.retry_after)
        headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, Conflict):
        code, body = 409, problem(409, str(exc), slug="conflict", instance=instance, **exc.context)
    elif isinstance(exc, TooManyUnfinishedJobs):
        code, body = 429, problem(429, str(exc), slug="too-many-unfinished-jobs", instance=instance)
        headers["Retry-After"] = str(settings.RETRY_AFTER_SECONDS)
    elif isinstance(exc, RequestDataTooBig):
        code, body = 413, problem(413, "The request body is too large.", instance=instance)
    elif isinstance(exc, UnreadablePostError):
        # The client stopped sending its body (gunicorn's body deadline, see
        # docker/gunicorn.conf.py) or dropped the connection: its fault, not ours.
        if _caused_by(exc, TimeoutError):
            code = 408
            body = problem(408, "The request body did not arrive in time.", slug="body-timeout", instance=instance)
        else:
            code, body = 400, problem(400, "The request body could not be read.", instance=instance)
    elif isinstance(exc, (DatabaseUnavailable, DatabaseError)) and (
        isinstance(exc, DatabaseUnavailable) or db.is_unavailable(exc)
    ):
        logger.warning("database unavailable: %s", exc)
        code = 503
        body = problem(
            503, "The database is unavailable; retry shortly.", slug="database-unavailable", instance=instance
        )
        headers["Retry-After"] = str(settings.RETRY_AFTER_SECONDS)
    elif isinstance(exc, PermissionDenied):
        code, body = 403, problem(403, "Permission denied.", instance=instance)
    elif isinstance(exc, exceptions.ValidationError):
        code = 400
        body = problem(
            400, "The request is invalid.", slug="invalid-request", errors=field_errors(exc.detail), instance=instance
        )
    elif isinstance(exc, exceptions.ParseError):
        code, body = 400, problem(400, str(exc.detail), slug="malformed-json", instance=instance)
    elif isinstance(exc, exceptions.APIException):
        code = exc.status_code
        detail = exc.detail if isinstance(exc.detail, str) else "; ".join(str(d) for d in exc.detail)
        body = problem(code, str(detail), instance=instance)
        if getattr(exc, "auth_header", None):
            # Set by DRF on 401s from the first authentication class (ours: "Token").
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
    else:
        logger.exception("unhandled error on %s", instance)
        code, body = 500, problem(500, "An unexpected error occurred; it has been logged.", instance=instance)

    response = Response(body, status=code, headers=headers)
    if not _wants_html(request):
        response.content_type = PROBLEM_JSON
    return response


def problem_response(request: HttpRequest, status_code: int, detail: str, **kwargs: Any) -> JsonResponse:
    """A problem answer outside DRF (plain Django views, middleware, handlers)."""
    response = JsonResponse(
        problem(status_code, detail, instance=request.path, **kwargs), status=status_code, content_type=PROBLEM_JSON
    )
    return response


def handler404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return problem_response(request, 404, "Not found.")


def handler400(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return problem_response(request, 400, "Bad request.")


def handler403(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return problem_response(request, 403, "Permission denied.")


def handler500(request: HttpRequest) -> JsonResponse:
    return problem_response(request, 500, "An unexpected error occurred; it has been logged.")
