"""One error shape for every answer: RFC 9457 ``application/problem+json``.

Every problem body is built here (:func:`problem_for`) and nowhere else: domain errors
(``jobs.exceptions``), DRF's own, Django's, and the HTTP-level ones below map to a status
code and a :class:`ProblemType` here. Validation problems list each offending field
under ``errors`` (``field`` as a dotted path, ``pointer`` as a JSON Pointer into the
request body).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from http import HTTPStatus
from typing import Any

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import DatabaseError
from django.http import Http404, HttpRequest, JsonResponse, UnreadablePostError
from django.urls import Resolver404, resolve
from rest_framework import exceptions, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from jobs import db
from jobs.conf import settings
from jobs.exceptions import (
    Conflict,
    DatabaseUnavailable,
    IdempotencyKeyReused,
    InvalidInput,
    JobsError,
    NeverDeleted,
    NotFound,
    PathNotFound,
    RateLimited,
    ScopeRequired,
    TooManyUnfinishedJobs,
)

logger = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:jobplatform:problem:"


class ProblemType(enum.StrEnum):
    """The API's own problem types: a body's ``type`` is ``urn:jobplatform:problem:<value>``
    (other errors are ``about:blank``, told apart by their status). The OpenAPI document
    lists these."""

    #: A field (or several) is invalid: ``errors`` names each.
    INVALID_REQUEST = "invalid-request"
    #: The body is not well-formed JSON (or names a key twice).
    MALFORMED_JSON = "malformed-json"
    #: This ``Idempotency-Key`` was used before with a different request.
    IDEMPOTENCY_KEY_REUSED = "idempotency-key-reused"
    #: The token lacks the scope the request needs (``required_scope``).
    INSUFFICIENT_SCOPE = "insufficient-scope"
    #: A rate limit was reached (``retry_after``).
    RATE_LIMITED = "rate-limited"
    #: The resource's state does not allow this (a finished job cannot be cancelled).
    CONFLICT = "conflict"
    #: The application has as many unfinished jobs as it may.
    TOO_MANY_UNFINISHED_JOBS = "too-many-unfinished-jobs"
    #: The request body stopped arriving.
    BODY_TIMEOUT = "body-timeout"
    #: A chunked body the server in front did not decode.
    LENGTH_REQUIRED = "length-required"
    #: The database cannot be reached (``Retry-After``).
    DATABASE_UNAVAILABLE = "database-unavailable"
    #: A readiness check fails (``checks``).
    NOT_READY = "not-ready"

    @property
    def uri(self) -> str:
        return TYPE_PREFIX + self.value


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


class BadRequest(exceptions.APIException):
    """400 about a request DRF never parsed (a malformed ``Content-Length``, a chunked body
    that could not be read)."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_detail = "Bad request."
    default_code = "bad_request"


class ServerError(exceptions.APIException):
    status_code = status.HTTP_500_INTERNAL_SERVER_ERROR
    default_detail = "An unexpected error occurred; it has been logged."
    default_code = "server_error"


class BodyTimeout(JobsError):
    """The request body did not arrive in time."""


class LengthRequired(JobsError):
    """Send the body with a Content-Length."""


class NotReady(JobsError):
    """The platform is not ready: ``checks`` says which readiness check fails."""

    def __init__(self, checks: dict[str, str]) -> None:
        self.checks = checks
        failing = [name for name, outcome in checks.items() if outcome != "ok"]
        super().__init__(f"Not ready: {'; '.join(f'{name} {checks[name]}' for name in failing)}.")


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
    slug: ProblemType | None = None,
    errors: tuple[list[dict[str, str]], int] | None = None,
    instance: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": slug.uri if slug else "about:blank",
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


@dataclass(frozen=True)
class Problem:
    """An error answer: its status, its problem+json body and its header fields."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = dataclass_field(default_factory=dict)


def _retry_later(seconds: int) -> dict[str, str]:
    return {"Retry-After": str(seconds)}


def problem_for(exc: BaseException, *, instance: str | None = None) -> Problem:
    """The answer to an error: every problem body of the API is built here, whoever meets
    the error (DRF's views, the middleware, the log-in form, readiness, Django's handlers)."""
    if isinstance(exc, Refused):
        exc = exc.error
    if isinstance(exc, (Http404, NotFound)):
        return Problem(404, problem(404, str(exc) if isinstance(exc, NotFound) else "Not found.", instance=instance))
    if isinstance(exc, InvalidInput):
        errors = field_errors(exc.errors)
        return Problem(400, problem(400, str(exc), slug=ProblemType.INVALID_REQUEST, errors=errors, instance=instance))
    if isinstance(exc, IdempotencyKeyReused):
        slug = ProblemType.IDEMPOTENCY_KEY_REUSED
        return Problem(422, problem(422, str(exc), slug=slug, instance=instance, **exc.context))
    if isinstance(exc, ScopeRequired):
        slug = ProblemType.INSUFFICIENT_SCOPE
        return Problem(403, problem(403, str(exc), slug=slug, instance=instance, **exc.context))
    if isinstance(exc, RateLimited):
        body = problem(429, str(exc), slug=ProblemType.RATE_LIMITED, instance=instance, retry_after=exc.retry_after)
        return Problem(429, body, _retry_later(exc.retry_after))
    if isinstance(exc, NeverDeleted):
        # DRF's view adds the Allow header of the resource, as for any 405.
        return Problem(405, problem(405, str(exc), instance=instance))
    if isinstance(exc, Conflict):
        return Problem(409, problem(409, str(exc), slug=ProblemType.CONFLICT, instance=instance, **exc.context))
    if isinstance(exc, TooManyUnfinishedJobs):
        body = problem(429, str(exc), slug=ProblemType.TOO_MANY_UNFINISHED_JOBS, instance=instance)
        return Problem(429, body, _retry_later(settings.RETRY_AFTER_SECONDS))
    if isinstance(exc, NotReady):
        body = problem(503, str(exc), slug=ProblemType.NOT_READY, instance=instance, checks=exc.checks)
        return Problem(503, body, _retry_later(settings.RETRY_AFTER_SECONDS))
    if isinstance(exc, BodyTimeout) or (isinstance(exc, UnreadablePostError) and _caused_by(exc, TimeoutError)):
        # The client stopped sending its body (gunicorn's body deadline, see docker/gunicorn.conf.py).
        return Problem(408, problem(408, str(BodyTimeout()), slug=ProblemType.BODY_TIMEOUT, instance=instance))
    if isinstance(exc, LengthRequired):
        return Problem(411, problem(411, str(exc), slug=ProblemType.LENGTH_REQUIRED, instance=instance))
    if isinstance(exc, RequestDataTooBig):
        return Problem(413, problem(413, "The request body is too large.", instance=instance))
    if isinstance(exc, UnreadablePostError):
        # The client dropped the connection: its fault, not ours.
        return Problem(400, problem(400, "The request body could not be read.", instance=instance))
    if isinstance(exc, (DatabaseUnavailable, DatabaseError)) and (
        isinstance(exc, DatabaseUnavailable) or db.is_unavailable(exc)
    ):
        logger.warning("database unavailable: %s", exc)
        body = problem(
            503, "The database is unavailable; retry shortly.", slug=ProblemType.DATABASE_UNAVAILABLE, instance=instance
        )
        return Problem(503, body, _retry_later(settings.RETRY_AFTER_SECONDS))
    if isinstance(exc, PermissionDenied):
        return Problem(403, problem(403, "Permission denied.", instance=instance))
    if isinstance(exc, exceptions.ValidationError):
        errors = field_errors(exc.detail)
        slug = ProblemType.INVALID_REQUEST
        return Problem(400, problem(400, "The request is invalid.", slug=slug, errors=errors, instance=instance))
    if isinstance(exc, exceptions.ParseError):
        return Problem(400, problem(400, str(exc.detail), slug=ProblemType.MALFORMED_JSON, instance=instance))
    if isinstance(exc, exceptions.APIException):
        detail = exc.detail if isinstance(exc.detail, str) else "; ".join(str(d) for d in exc.detail)
        headers: dict[str, str] = {}
        if getattr(exc, "auth_header", None):
            # Set by DRF on 401s from the first authentication class (ours: "Token").
            headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))  # type: ignore[attr-defined]
        return Problem(exc.status_code, problem(exc.status_code, str(detail), instance=instance), headers)
    logger.error("unhandled error on %s", instance, exc_info=exc)
    return Problem(500, problem(500, "An unexpected error occurred; it has been logged.", instance=instance))


def _with_a_way_out(exc: Exception, view: Any) -> Exception:
    """DRF's 405 and 406 say what failed, not what works: name the methods this URL takes,
    and what the API answers in."""
    if isinstance(exc, exceptions.MethodNotAllowed) and view is not None:
        allowed = [m for m in getattr(view, "allowed_methods", ()) if m not in ("HEAD", "OPTIONS")]
        if allowed:
            detail = f"{exc.detail.rstrip('.')}; this URL takes {', '.join(allowed)}."
            return exceptions.MethodNotAllowed("", detail=detail)
    if isinstance(exc, exceptions.NotAcceptable):
        return exceptions.NotAcceptable(
            "The API answers in JSON (application/json; errors in application/problem+json): "
            "send Accept: application/json, or leave Accept out."
        )
    return exc


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """DRF's exception handler (``REST_FRAMEWORK["EXCEPTION_HANDLER"]``)."""
    request = context.get("request")
    exc = _with_a_way_out(exc, context.get("view"))
    answer = problem_for(exc, instance=request.path if request is not None else None)
    response = Response(answer.body, status=answer.status, headers=answer.headers)
    if not _wants_html(request):
        response.content_type = PROBLEM_JSON
        if request is not None and getattr(getattr(request, "accepted_renderer", None), "format", "json") != "json":
            # A page's own renderer (Swagger UI, Redoc) would write the body as plain text;
            # DRF renders the answer with the request's renderer.
            request.accepted_renderer, request.accepted_media_type = JSONRenderer(), PROBLEM_JSON
    return response


def problem_response(request: HttpRequest, exc: BaseException) -> JsonResponse:
    """The answer to an error outside DRF (plain Django views, middleware, handlers)."""
    answer = problem_for(exc, instance=request.path)
    response = JsonResponse(answer.body, status=answer.status, content_type=PROBLEM_JSON)
    for name, value in answer.headers.items():
        response[name] = value
    return response


def handler404(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return problem_response(request, _unknown_path(request))


def _unknown_path(request: HttpRequest) -> Exception:
    """A URL no route matches: when it is one of the API's paths with a trailing slash
    (``/jobs/``), say so and name the path without it; else a plain 404."""
    bare = request.path_info.rstrip("/")
    if bare and bare != request.path_info:
        try:
            resolve(bare)
        except Resolver404:
            pass
        else:
            return PathNotFound.trailing_slash(request.path.rstrip("/"))
    return Http404()


def handler400(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return problem_response(request, BadRequest("Bad request."))


def handler403(request: HttpRequest, exception: Exception | None = None) -> JsonResponse:
    return problem_response(request, PermissionDenied())


def handler500(request: HttpRequest) -> JsonResponse:
    return problem_response(request, ServerError())
