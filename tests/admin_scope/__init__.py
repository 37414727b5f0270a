"""A test double for token scopes, until tokens carry their own (``App.scopes``).

The dashboard's one admin check (``jobs.dashboard.access.is_admin``) reads
``app.scopes``. Here the browser session's application (``selectors.app_for_token_id``,
what ``AppSessionAuthentication`` calls) gets that attribute: ``{"admin"}`` for an
application whose name starts with ``admin-``, the ordinary scopes for any other.
Integration tests install it with ``monkeypatch``; e2e servers load this package as an
extra app (``EXTRA_INSTALLED_APPS=tests.admin_scope``), whose ``ready()`` installs it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, fields

from jobs.domain import App

ADMIN_PREFIX = "admin-"


@dataclass(frozen=True)
class ScopedApp(App):
    scopes: frozenset[str] = frozenset()


def with_scopes(app: App | None) -> App | None:
    if app is None:
        return None
    values = {f.name: getattr(app, f.name) for f in fields(App) if f.name != "scopes"}
    granted = {"admin"} if app.name.startswith(ADMIN_PREFIX) else {"jobs:read", "jobs:write"}
    return ScopedApp(**values, scopes=frozenset(granted))


def scoped(lookup: Callable[..., App | None]) -> Callable[..., App | None]:
    """``selectors.app_for_token_id`` whose answer carries its scopes."""

    def app_for_token_id(*, token_id: uuid.UUID) -> App | None:
        return with_scopes(lookup(token_id=token_id))

    app_for_token_id.scoped_double = True  # type: ignore[attr-defined]
    return app_for_token_id
