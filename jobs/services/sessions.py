"""The browsable API's and the dashboard's browser sessions: writes (``jobs.sessions`` is
Django's session engine on top of these; reads are in ``jobs.selectors.sessions``)."""

from __future__ import annotations

import uuid
from datetime import datetime

from jobs import db


def session_create(*, key_hash: str, token_id: uuid.UUID | None, data: str, expires_at: datetime) -> bool:
    """Store a new session; False when its key is already taken."""
    row = db.fetch_one("session_create", key_hash=key_hash, token_id=token_id, data=data, expires_at=expires_at)
    return row is not None


def session_save(*, key_hash: str, token_id: uuid.UUID | None, data: str, expires_at: datetime) -> bool:
    """Update a live session; False when it ended (or expired) meanwhile."""
    row = db.fetch_one("session_save", key_hash=key_hash, token_id=token_id, data=data, expires_at=expires_at)
    return row is not None


def session_end(*, key_hash: str) -> None:
    """End a session (log-out); it is kept, never deleted."""
    db.fetch_one("session_end", key_hash=key_hash)
