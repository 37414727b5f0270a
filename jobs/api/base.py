"""The base of every endpoint that needs a token."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.views import APIView

from .auth import credentials_missing


class AuthenticatedApi(APIView):
    """An endpoint that needs a token (or a logged-in browser): its 401 says which header to send."""

    def permission_denied(self, request: Request, message: str | None = None, code: str | None = None) -> None:
        if request.authenticators and not request.successful_authenticator:
            raise credentials_missing(request)
        super().permission_denied(request, message=message, code=code)
