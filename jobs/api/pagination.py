"""Keyset pagination: pages follow (created_at, id), never OFFSET, so a page costs the
same on the millionth job as on the first, and rows inserted meanwhile do not shift it."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from rest_framework.request import Request

Cursor = tuple[datetime, uuid.UUID]


class Keyed(Protocol):
    """What a keyset page is ordered by (a job, a schedule)."""

    @property
    def created_at(self) -> datetime: ...

    @property
    def id(self) -> uuid.UUID: ...


def encode_cursor(item: Keyed) -> str:
    return base64.urlsafe_b64encode(f"{item.created_at.isoformat()}|{item.id}".encode()).decode().rstrip("=")


def decode_cursor(raw: str) -> Cursor:
    """The position a ``cursor`` names; ValueError when it is not one of ours."""
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        created, job_id = text.split("|")
        # In UTC, as every stored instant: PostgreSQL refuses offsets beyond ±15:59 (a
        # hand-made cursor with +20:00 was a 500).
        when = datetime.fromisoformat(created)
        if when.tzinfo is None:
            raise ValueError("naive time")
        return when.astimezone(UTC), uuid.UUID(job_id)
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise ValueError("Invalid cursor; use the 'next' link of a previous page.") from None


@dataclass(frozen=True)
class Page:
    items: Sequence[Any]
    next_cursor: str | None

    def next_url(self, request: Request) -> str | None:
        """This request's URL with the next page's cursor, or None on the last page."""
        if self.next_cursor is None:
            return None
        params = request.query_params.copy()
        params["cursor"] = self.next_cursor
        return request.build_absolute_uri(f"{request.path}?{params.urlencode()}")


def keyset_page(fetch: Callable[..., Sequence[Keyed]], *, after: Cursor | None, limit: int, **filters: Any) -> Page:
    """One page of ``fetch(before=…, limit=…, **filters)`` (newest first): one row more
    than asked tells whether there is a next page."""
    rows = fetch(before=after, limit=limit + 1, **filters)
    if len(rows) <= limit:
        return Page(rows, None)
    rows = rows[:limit]
    return Page(rows, encode_cursor(rows[-1]))


def after_link(request: Request, rows: Sequence[Any], limit: int) -> tuple[Sequence[Any], str | None]:
    """A page of a history or a log, oldest first, from ``rows`` fetched with one row more
    than ``limit``: the page, and the URL of the next one (``after`` its last id), if any."""
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    params = request.query_params.copy()
    params["after"] = str(rows[-1].id)
    return rows, request.build_absolute_uri(f"{request.path}?{params.urlencode()}")
