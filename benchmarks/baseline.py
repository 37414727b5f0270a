"""The bare-Django baseline for create and read: plain function views running the
platform's own SQL through ``jobs.db`` (the token lookup, then ``job_create`` or
``job_get``). ``job_create``'s parameters come from ``jobs.inserts``, as the API's create
takes them, so they are never copied here. No DRF, no services, no validation, no
middleware. Its URLs live here, never in the product's; only the benchmark's second
gunicorn serves them."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from jobs import db
from jobs.inserts import job_create_params

TIMEOUT_SECONDS = 300
MAX_ATTEMPTS = 3


def _app(request: HttpRequest) -> dict[str, Any] | None:
    header = request.headers.get("Authorization", "")
    keyword, _, token = header.partition(" ")
    if keyword.lower() not in ("token", "bearer") or not token:
        return None
    return db.fetch_one("token_authenticate", token_hash=hashlib.sha256(token.encode()).hexdigest())


def _unauthorized() -> JsonResponse:
    return JsonResponse({"detail": "unauthorized"}, status=401)


def jobs(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return HttpResponse(status=405)
    app = _app(request)
    if app is None:
        return _unauthorized()
    body = json.loads(request.body)
    row = db.fetch_one(
        "job_create",
        **job_create_params(
            job_id=uuid.uuid4(),
            app_id=app["app_id"],
            type=body["type"],
            params=body.get("params", {}),
            metadata=body.get("metadata", {}),
            max_attempts=MAX_ATTEMPTS,
            timeout=TIMEOUT_SECONDS,
        ),
    )
    if row is None:  # the application's JOBS_MAX_UNFINISHED_PER_APP
        return JsonResponse({"detail": "too many unfinished jobs"}, status=429)
    return JsonResponse(row, status=201, encoder=DjangoJSONEncoder)


def job(request: HttpRequest, job_id: uuid.UUID) -> HttpResponse:
    app = _app(request)
    if app is None:
        return _unauthorized()
    row = db.fetch_one("job_get", id=job_id, app_id=app["app_id"])
    if row is None:
        return JsonResponse({"detail": "not found"}, status=404)
    return JsonResponse(row, encoder=DjangoJSONEncoder)


def ping(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


urlpatterns = [
    path("", ping),
    path("jobs", jobs),
    path("jobs/<uuid:job_id>", job),
]
