"""Who may see the dashboard: a browser session logged in with an ``admin`` token."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import render
from django.urls import reverse
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request

from jobs.api.auth import AppSessionAuthentication
from jobs.api.errors import problem_exception_handler
from jobs.domain import App

View = Callable[..., HttpResponse]


def is_admin(app: Any) -> bool:
    """The one admin check: the token the browser logged in with has the ``admin`` scope."""
    return "admin" in getattr(app, "scopes", ())


def session_app(request: HttpRequest) -> App | None:
    """The application whose token this browser logged in with, exactly as the browsable
    API authenticates it (a revoked token is logged out on its next request)."""
    authenticated = AppSessionAuthentication().authenticate(Request(request))
    return authenticated[0] if authenticated else None


def problem(request: HttpRequest, exc: exceptions.APIException) -> HttpResponse:
    """The API's own answer to an error its authentication raised (status, problem+json,
    headers such as ``Retry-After``), from the one exception handler."""
    response = problem_exception_handler(exc, {"request": Request(request)})
    response.accepted_renderer = JSONRenderer()
    response.accepted_media_type = "application/json"
    response.renderer_context = {}
    return response.render()


def login_redirect(request: HttpRequest) -> HttpResponseRedirect:
    """To the log-in page, which sends the browser back here once logged in."""
    query = QueryDict(mutable=True)
    query["next"] = request.get_full_path()
    return HttpResponseRedirect(f"{reverse('rest_framework:login')}?{query.urlencode(safe='/')}")


def admin_required(view: View) -> View:
    """Not logged in: redirected to the log-in page (``?next=`` brings the browser back).
    Logged in without the ``admin`` scope: 403. Otherwise ``request.app`` is the app."""

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            app = session_app(request)
        except exceptions.APIException as exc:  # refused by the authentication itself
            return problem(request, exc)
        if app is None:
            return login_redirect(request)
        if not is_admin(app):
            return render(request, "jobs/dashboard/forbidden.html", {"app": app}, status=403)
        request.app = app  # type: ignore[attr-defined]
        return view(request, *args, **kwargs)

    return guarded
