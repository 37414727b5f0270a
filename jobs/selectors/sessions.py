"""Reads of the browser sessions (``jobs.sessions``, Django's session engine)."""

from __future__ import annotations

from jobs import db


def session_data(*, key_hash: str) -> str | None:
    """A session's encoded data while it is neither ended nor expired, else None."""
    row = db.fetch_one("session_get_live", key_hash=key_hash)
    return row["data"] if row is not None else None


def session_exists(*, key_hash: str) -> bool:
    """Whether a session key was ever used (ended or not: a key is never handed out twice)."""
    return db.fetch_one("session_exists", key_hash=key_hash) is not None
