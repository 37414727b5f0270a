"""Application-token authentication for the API and the browsable API."""

from __future__ import annotations

import uuid
from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication, TokenAuthentication, get_authorization_header
from rest_framework.request import Request

from jobs import selectors
from jobs.conf import settings
from jobs.domain import App
from jobs.services import ratelimit
from jobs.sessions import SESSION_TOKEN_ID

from .addresses import client_address
from .errors import Refused
from .middleware import note_rate_window

__all__ = ["SESSION_TOKEN_ID", "AppSessionAuthentication", "AppTokenAuthentication", "credentials_missing"]

#: How a token is sent, as every 401 says.
EXPECTED_HEADER = "`Authorization: Token <token>` (or `Authorization: Bearer <token>`)"


def credentials_missing(request: Request) -> exceptions.NotAuthenticated:
    """The 401 of a request no authentication accepted: nothing sent, or a header without
    its keyword (a bare token, or another scheme such as ``Basic``)."""
    if not get_authorization_header(request).strip():
        return exceptions.NotAuthenticated(f"No token was sent: send the header {EXPECTED_HEADER}.")
    return exceptions.NotAuthenticated(
        f"The Authorization header does not start with `Token ` or `Bearer `: send {EXPECTED_HEADER}."
    )


class AppTokenAuthentication(TokenAuthentication):
    """``Authorization: Token <token>`` (DRF's convention) or ``Bearer <token>``.

    401 answers carry ``WWW-Authenticate: Token`` (DRF's ``authenticate_header``).
    The lookup also counts the request against the token's rate limit, and a wrong token
    against the client address's failed attempts (``jobs.ratelimit``): over either, 429.
    """

    keyword = "Token"
    keywords = (b"token", b"bearer")

    def authenticate(self, request: Any) -> tuple[App, str] | None:
        auth = get_authorization_header(request).split()
        if not auth or auth[0].lower() not in self.keywords:
            return None
        if len(auth) != 2:
            raise exceptions.AuthenticationFailed(
                f"The Authorization header must hold exactly one token after its keyword: send {EXPECTED_HEADER}."
            )
        try:
            token = auth[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed(
                f"The token in the Authorization header has invalid characters: send {EXPECTED_HEADER}."
            ) from None
        return self.authenticate_credentials(token, request._request)

    def authenticate_credentials(self, key: str, request: Any = None) -> tuple[App, str]:
        # A token this process found live moments ago needs no round trip, unless every
        # request of a token is counted (JOBS_RATE_LIMIT_REQUESTS). Only found-live tokens
        # are remembered: every unknown token still reaches the database and its failure
        # counts against the client's address.
        if int(settings.RATE_LIMIT_REQUESTS) <= 0:
            cached = selectors.cached_app_for_token(token=key)
            if cached is not None:
                return cached, key
        address = client_address(request.META if request is not None else {})
        check = ratelimit.token_check(token=key, address=address)
        if check.blocked:
            # Whatever the token: a guesser must not learn which of its guesses was right.
            assert check.failures is not None
            note_rate_window(request, check.failures)
            raise Refused(check.failures.refusal())
        if check.app is None:
            failures = ratelimit.failure_count(address=address)
            note_rate_window(request, failures)
            if failures is not None and failures.hits > failures.limit:
                raise Refused(failures.refusal())  # another worker counted the last allowed one meanwhile
            raise exceptions.AuthenticationFailed(
                f"The token is unknown or revoked: send a valid one as {EXPECTED_HEADER}; "
                "`manage.py issue_token` issues one."
            )
        note_rate_window(request, check.token)
        if check.over_limit:
            assert check.token is not None
            raise Refused(check.token.refusal())
        selectors.remember_token(key, check.app)
        return check.app, key


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
        window = ratelimit.token_hit(app=app)
        note_rate_window(request._request, window)
        if window is not None and window.hits > window.limit:
            raise Refused(window.refusal())
        return app, None
