"""Scopes, enforced per view: one permission class per scope.

A view lists the scopes it needs; each class decides whether it applies to the request
at hand (reads, writes, or an admin-only query) and answers 403 problem+json naming the
missing scope (``jobs.exceptions.ScopeRequired``). Without an authenticated token it
denies, and DRF answers 401 (``IsAuthenticated`` comes first on every view anyway).
"""

from __future__ import annotations

from typing import Any, ClassVar

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from jobs.domain import App, Scope
from jobs.exceptions import ScopeRequired

from .errors import Refused


class _ScopePermission(BasePermission):
    scope: ClassVar[Scope]

    def applies(self, request: Request, view: Any) -> bool:
        raise NotImplementedError

    def has_permission(self, request: Request, view: Any) -> bool:
        if not self.applies(request, view):
            return True
        app = request.user
        if not isinstance(app, App):
            return False
        if self.scope not in app.scopes:
            raise Refused(ScopeRequired(self.scope.value))
        return True


class ReadsJobs(_ScopePermission):
    """``jobs:read`` for reading (GET, HEAD, OPTIONS)."""

    scope = Scope.READ

    def applies(self, request: Request, view: Any) -> bool:
        return request.method in SAFE_METHODS


class WritesJobs(_ScopePermission):
    """``jobs:write`` for creating and cancelling (every other method)."""

    scope = Scope.WRITE

    def applies(self, request: Request, view: Any) -> bool:
        return request.method not in SAFE_METHODS


class ListsAnyApp(_ScopePermission):
    """``admin`` to choose whose jobs a list shows (``GET /jobs?app=<name>``)."""

    scope = Scope.ADMIN

    def applies(self, request: Request, view: Any) -> bool:
        return request.method in SAFE_METHODS and "app" in request.query_params
