"""The scratch databases: where they live, how they are created and dropped, and the
benchmark's own look at their rows (psycopg2 connections of its own, not Django's)."""

from __future__ import annotations

import os
import time
from typing import Any
from urllib.parse import quote, urlsplit


def server_url() -> str:
    """The server to put the scratch database on: DATABASE_URL, else the embedded one."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    from jobplatform.embedded import database_url

    return database_url()


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return parts._replace(path="/" + quote(name)).geturl()


def connect(url: str, *, autocommit: bool = True) -> Any:
    """A psycopg2 connection from a URL (libpq reads %-quoted socket directories too)."""
    import psycopg2
    import psycopg2.extras

    conn = psycopg2.connect(url, cursor_factory=psycopg2.extras.RealDictCursor)
    conn.autocommit = autocommit
    return conn


def sql(url: str, query: str, params: Any = None) -> list[dict[str, Any]]:
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(query, params)
            return [dict(r) for r in cur.fetchall()] if cur.description else []
    finally:
        conn.close()


def create(server: str, name: str, *, template: str | None = None) -> None:
    """A new database on ``server``; with ``template``, a copy of that one (nobody may be
    connected to it)."""
    copy = f' TEMPLATE "{template}"' if template else ""
    sql(with_database(server, "postgres"), f'CREATE DATABASE "{name}"{copy}')


def drop(server: str, name: str) -> None:
    sql(with_database(server, "postgres"), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def wait_job(url: str, job_id: str, column: str, timeout: float) -> dict[str, Any]:
    """A job's status, ``started_at`` and ``finished_at`` as soon as ``column`` is set."""
    deadline = time.monotonic() + timeout
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            while time.monotonic() < deadline:
                cur.execute(
                    f"SELECT status, started_at, finished_at FROM jobs_job WHERE id = %s AND {column} IS NOT NULL",
                    [job_id],
                )
                row = cur.fetchone()
                if row:
                    return dict(row)
                time.sleep(0.002)
    finally:
        conn.close()
    raise RuntimeError(f"job {job_id}: no {column} within {timeout}s")
