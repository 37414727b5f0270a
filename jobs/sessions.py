"""The browsable API's sessions, stored server-side in ``jobs_session`` (raw SQL).

``SESSION_ENGINE = "jobs.sessions"``. Django's signed-cookie sessions cannot be ended
by the server: a cookie copied before log-out still works until it expires. Here the
cookie carries only a random key; the session lives in PostgreSQL (the key's SHA-256,
never the key), so

- log-out (``flush()``) marks the session ended, and the cookie is refused from then on;
- revoking a token ends every session logged in with it (``session_end_for_token``,
  in :func:`jobs.services.token_revoke`);
- a session expires ``SESSION_COOKIE_AGE`` seconds after log-in, checked by the database.

Rows are never deleted (the platform keeps its records): a session ends by ``ended_at``
or ``expires_at``. Django's own ``db`` backend would need the ORM, which the project
does not use.
"""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from django.contrib.sessions.backends.base import CreateError, SessionBase, UpdateError

from jobs.selectors import sessions as stored
from jobs.services import sessions as store

#: The session key holding the id (never the secret) of the token a browser logged in with.
SESSION_TOKEN_ID = "jobs_token_id"


def key_hash(session_key: str) -> str:
    """Session keys are 32 random characters: a plain SHA-256 stores them safely."""
    return hashlib.sha256(session_key.encode()).hexdigest()


def _token_id(data: dict[str, Any]) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(data[SESSION_TOKEN_ID]))
    except (KeyError, ValueError):
        return None


class SessionStore(SessionBase):
    def load(self) -> dict[str, Any]:
        data = stored.session_data(key_hash=key_hash(self.session_key)) if self.session_key else None
        if data is None:
            # Unknown, ended or expired: a new, empty session (with a new key if saved).
            self._session_key = None
            return {}
        return self.decode(data)

    def exists(self, session_key: str) -> bool:
        return stored.session_exists(key_hash=key_hash(session_key))

    def create(self) -> None:
        while True:
            self._session_key = self._get_new_session_key()
            try:
                self.save(must_create=True)
            except CreateError:
                continue  # the key was taken meanwhile: draw another
            self.modified = True
            return

    def save(self, must_create: bool = False) -> None:
        if self.session_key is None:
            return self.create()
        data = self._get_session(no_load=must_create)
        params = {
            "key_hash": key_hash(self.session_key),
            "token_id": _token_id(data),
            "data": self.encode(data),
            "expires_at": self.get_expiry_date(),
        }
        if must_create:
            if not store.session_create(**params):
                raise CreateError
        elif not store.session_save(**params):
            # Ended (log-out elsewhere, token revoked) while this request ran: Django's
            # middleware answers that the session was ended, and it stays ended.
            raise UpdateError
        return None

    def delete(self, session_key: str | None = None) -> None:
        key = session_key or self.session_key
        if key is not None:
            store.session_end(key_hash=key_hash(key))

    @classmethod
    def clear_expired(cls) -> None:
        """Nothing to remove: expired sessions are refused by their ``expires_at`` and,
        like every record of the platform, kept."""
