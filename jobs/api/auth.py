"""Application-token authentication for the API and the browsable API."""

from __future__ import annotations

import uuid
from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication, TokenAuthentication, get_authorization_header

from jobs import selectors
from jobs.domain import App
from jobs.sessions import SESSION_TOKEN_ID

__all__ = ["SESSION_TOKEN_ID", "AppSessionAuthentication", "AppTokenAuthentication"]


class AppTokenAuthentication(TokenAuthentication):
    """``Authorization: Token <token>`` (DRF's convention) or ``Bearer <token>``.

    401 answers carry ``WWW-Authenticate: Token`` (DRF's ``authenticate_header``).
    """

    keyword = "Token"
    keywords = (b"token", b"bearer")

    def authenticate(self, request: Any) -> tuple[App, str] | None:
        auth = get_authorization_header(request).split()
        if not auth or auth[0].lower() not in self.keywords:
            return None
        if len(auth) != 2:
            raise exceptions.AuthenticationFailed("Invalid token header: give exactly one token after the keyword.")
        try:
            token = auth[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed("Invalid token header: the token has invalid characters.") from None
        return self.authenticate_credentials(token)

    def authenticate_credentials(self, key: str) -> tuple[App, str]:
        app = selectors.app_for_token(token=key)
        if app is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        return app, key


class AppSessionAuthentication(SessionAuthentication):
    """A browser that logged in with a token through the browsable API's login form.

    The session (server-side, ``jobs.sessions``) keeps only the token's id; log-out and
    revoking the token end it, and a revoked token stops working on the next request.
    CSRF is enforced, as for any session.
    """

    def authenticate(self, request: Any) -> tuple[App, None] | None:
        session = getattr(request._request, "session", None)
        raw = session.get(SESSION_TOKEN_ID) if session is not None else None
        if not raw:
            return None
        try:
            token_id = uuid.UUID(str(raw))
        except ValueError:
            return None
        app = selectors.app_for_token_id(token_id=token_id)
        if app is None:
            return None
        self.enforce_csrf(request)
        return app, None
