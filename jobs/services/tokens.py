"""Applications and their tokens: issue, revoke, per-application limits and secrets."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from typing import Any

from jobs import db
from jobs.domain import DEFAULT_SCOPES, Scope, Token
from jobs.exceptions import AppNotFound, InvalidInput, TokenAlreadyRevoked, TokenNotFound
from jobs.selectors import forget_cached_tokens, token_hash

TOKEN_PREFIX = "jp_"


def token_scopes(names: Iterable[str] | None) -> frozenset[Scope]:
    """The scopes named (``jobs:read``, ``jobs:write``, ``admin``); none given: the default."""
    if names is None:
        return DEFAULT_SCOPES
    names = list(names)
    unknown = sorted(set(names) - {scope.value for scope in Scope})
    if unknown or not names:
        allowed = ", ".join(scope.value for scope in Scope)
        problem = f"Unknown scope {', '.join(map(repr, unknown))}" if unknown else "Give at least one scope"
        raise InvalidInput({"scopes": [f"{problem}; use {allowed}."]})
    return frozenset(Scope(name) for name in names)


def token_issue(*, app_name: str, scopes: Iterable[str] | None = None) -> tuple[str, Token]:
    """Issue a new token for ``app_name`` (created if new) with ``scopes`` (default: read
    and write). The token is returned once."""
    app_name = app_name.strip()
    if not app_name or len(app_name) > 100 or "\x00" in app_name:
        raise InvalidInput({"name": ["Give an application name of 1 to 100 characters."]})
    granted = token_scopes(scopes)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with db.atomic():
        app = db.fetch_one("app_get_or_create", name=app_name)
        assert app is not None
        row = db.fetch_one(
            "token_create",
            app_id=app["id"],
            token_hash=token_hash(token),
            prefix=token[:10],
            scopes=",".join(sorted(granted)),
        )
    assert row is not None
    return token, Token.from_row({**row, "app_name": app["name"]})


def token_revoke(*, ref: str) -> Token:
    """Revoke a token by id or prefix; refused from its next request, and every browser
    session logged in with it ends (in the same transaction)."""
    rows = db.fetch_all("token_find", ref=ref)
    if not rows:
        raise TokenNotFound(f"no token with id or prefix {ref!r}")
    if len(rows) > 1:
        raise InvalidInput({"token": [f"{ref!r} matches {len(rows)} tokens; give the token id."]})
    found = rows[0]
    with db.atomic():
        revoked = db.fetch_one("token_revoke", token_id=found["id"])
        if revoked is not None:
            db.fetch_all("session_end_for_token", token_id=found["id"])
    forget_cached_tokens()
    if revoked is None:
        raise TokenAlreadyRevoked(
            f"token {found['id']} ({found['prefix']}…) was already revoked at {found['revoked_at']:%Y-%m-%d %H:%M:%S}Z"
        )
    return Token.from_row({**found, **revoked})


def app_set_max_running(*, app_name: str, max_running: int | None) -> dict[str, Any]:
    """Give an application its own cap on running jobs (None: the setting applies)."""
    if max_running is not None and max_running < 0:
        raise InvalidInput({"max_running": ["Must be 0 (no cap) or more."]})
    row = db.fetch_one("app_set_max_running", name=app_name, max_running=max_running)
    if row is None:
        raise AppNotFound(f"no application named {app_name!r}")
    return row


def app_rotate_callback_secret(*, app_name: str) -> str:
    """Give an application a new secret for signing its completion callbacks; returned once."""
    secret = secrets.token_hex(32)
    if db.fetch_one("app_rotate_callback_secret", name=app_name, secret=secret) is None:
        raise AppNotFound(f"no application named {app_name!r}")
    return secret
