"""Reads about applications."""

from __future__ import annotations

import uuid

from jobs import db


def app_name_get(*, app_id: uuid.UUID) -> str | None:
    """The name of the application ``app_id`` (None: no such application)."""
    row = db.fetch_one("app_name_get", id=app_id)
    return None if row is None else row["name"]
