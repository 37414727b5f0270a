"""Conditional GET: the validators pollers send back in ``If-None-Match``."""

from __future__ import annotations

from jobs.domain import Job


def job_etag(job: Job, *extra: object) -> str:
    """A strong ETag for a job's representation. Every visible change moves
    ``updated_at``, so it makes a cheap validator for pollers; ``extra`` adds what else
    the representation shows (the dashboard's page: its latest event's id)."""
    return '"' + "-".join([f"{job.updated_at.timestamp():.6f}", *(str(part) for part in extra)]) + '"'


def none_match(if_none_match: str | None, etag: str) -> bool:
    """True when ``If-None-Match`` names ``etag`` (or is ``*``): answer 304.

    The weak comparison RFC 9110 prescribes for ``If-None-Match``: ``W/"x"`` matches ``"x"``."""
    tags = [tag.strip().removeprefix("W/") for tag in (if_none_match or "").split(",")]
    return "*" in tags or etag.removeprefix("W/") in tags
