"""Reads about tokens: which application a token belongs to (cached per process)."""

from __future__ import annotations

import hashlib
import time
import uuid

from jobs import db
from jobs.conf import settings
from jobs.domain import App, Token


def token_hash(token: str) -> str:
    """Tokens are 256 random bits, so a plain SHA-256 is enough to store them safely."""
    return hashlib.sha256(token.encode()).hexdigest()


#: token hash → (monotonic expiry, App): a live token seen in the last
#: JOBS_TOKEN_CACHE_SECONDS is not looked up again by this process.
_token_cache: dict[str, tuple[float, App]] = {}
_TOKEN_CACHE_MAX = 10_000


def app_for_token(*, token: str) -> App | None:
    """The application a live token belongs to, or None (unknown or revoked).

    Cached per process for ``JOBS_TOKEN_CACHE_SECONDS`` (0 turns it off): a revoked token
    is refused within that bound (at once in a process that revokes it itself, such as a
    test). Unknown tokens are never cached."""
    digest = token_hash(token)
    ttl = settings.TOKEN_CACHE_SECONDS
    if ttl > 0:
        hit = _token_cache.get(digest)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
    row = db.fetch_one("token_authenticate", token_hash=digest)
    if row is None:
        _token_cache.pop(digest, None)
        return None
    app = App.from_row(row)
    remember_token(token, app)
    return app


def cached_app_for_token(*, token: str) -> App | None:
    """The application a token was found to belong to in the last
    ``JOBS_TOKEN_CACHE_SECONDS`` by this process, without asking the database."""
    if settings.TOKEN_CACHE_SECONDS <= 0:
        return None
    hit = _token_cache.get(token_hash(token))
    return hit[1] if hit is not None and hit[0] > time.monotonic() else None


def remember_token(token: str, app: App) -> None:
    """Remember a token found live (when the cache is on)."""
    ttl = settings.TOKEN_CACHE_SECONDS
    if ttl > 0:
        if len(_token_cache) >= _TOKEN_CACHE_MAX:
            _token_cache.clear()
        _token_cache[token_hash(token)] = (time.monotonic() + ttl, app)


def forget_cached_tokens() -> None:
    """Drop this process's token cache (after a revocation here)."""
    _token_cache.clear()


def app_for_token_id(*, token_id: uuid.UUID) -> App | None:
    row = db.fetch_one("token_get_live", token_id=token_id)
    return App.from_row(row) if row else None


def token_list() -> list[Token]:
    return [Token.from_row(row) for row in db.fetch_all("token_list")]
