"""The base of every endpoint that needs a token."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from rest_framework.request import Request
from rest_framework.views import APIView

from jobs.exceptions import NeverDeleted

from .auth import credentials_missing


class AuthenticatedApi(APIView):
    """An endpoint that needs a token (or a logged-in browser): its 401 says which header to send."""

    #: A resource that is never deleted: what a DELETE is told instead of DRF's bare
    #: 'Method "DELETE" not allowed.' (given the request's path). Still a 405 with ``Allow``.
    never_deleted: ClassVar[Callable[[str], NeverDeleted] | None] = None

    def http_method_not_allowed(self, request: Request, *args: Any, **kwargs: Any) -> None:
        if request.method == "DELETE" and self.never_deleted is not None:
            raise self.never_deleted(request.path)
        super().http_method_not_allowed(request, *args, **kwargs)

    def permission_denied(self, request: Request, message: str | None = None, code: str | None = None) -> None:
        if request.authenticators and not request.successful_authenticator:
            raise credentials_missing(request)
        super().permission_denied(request, message=message, code=code)
