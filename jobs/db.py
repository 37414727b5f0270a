"""The one module that owns the database cursor.

Every query is a named query from a ``.sql`` file in ``jobs/sql/`` (a ``-- name --``
header, one line of description, then the SQL), loaded once. Parameters are named
(``%(job_id)s``). Rows come back as dicts. Driver errors that mean "the database is
not there" become :class:`~jobs.exceptions.DatabaseUnavailable`.
"""

from __future__ import annotations

import json
import logging
import re
import time
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError, connection, transaction
from psycopg2 import errors as pg_errors
from psycopg2 import sql
from psycopg2.extras import Json

from .exceptions import AlreadyExists, DatabaseUnavailable

logger = logging.getLogger(__name__)
T = TypeVar("T")

SQL_DIR = Path(__file__).parent / "sql"
_HEADER = re.compile(r"^-- ([a-z0-9_]+) --$", re.MULTILINE)
#: ``/* include name */`` in a query is replaced by the fragment ``name`` (a query whose
#: name starts with ``_``), so a shared piece of SQL is written once.
_INCLUDE = re.compile(r"/\* include (_[a-z0-9_]+) \*/")

# SQLSTATE classes that mean the server is gone or refusing, not that the query is bad.
# 25006 (read-only transaction): a write reached a standby (a DATABASE_URL without
# target_session_attrs=read-write during a failover); it can take writes once promoted.
_UNAVAILABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03", "53300", "25006")


def load_queries(directory: Path = SQL_DIR) -> dict[str, str]:
    """Parse every ``*.sql`` file of ``directory`` into ``{name: sql}``, fragments included."""
    queries: dict[str, str] = {}
    for path in sorted(directory.glob("*.sql")):
        text = path.read_text()
        parts = _HEADER.split(text)
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            if name in queries:
                raise ValueError(f"query {name!r} defined twice ({path.name})")
            lines = body.strip().splitlines()
            if not lines or not lines[0].startswith("-- "):
                raise ValueError(f"query {name!r} in {path.name} needs a one-line description")
            queries[name] = "\n".join(lines[1:]).strip().rstrip(";")
    fragments = {name: sql for name, sql in queries.items() if name.startswith("_")}
    return {name: _expand(sql, fragments) for name, sql in queries.items() if not name.startswith("_")}


def _expand(sql: str, fragments: dict[str, str], seen: tuple[str, ...] = ()) -> str:
    """``sql`` with every ``/* include name */`` replaced by its fragment (fragments may
    include fragments; a fragment that includes itself is an error)."""

    def include(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in seen:
            raise ValueError(f"fragment {name!r} includes itself ({' -> '.join((*seen, name))})")
        if name not in fragments:
            raise ValueError(f"no fragment {name!r} to include")
        return _expand(fragments[name], fragments, (*seen, name))

    return _INCLUDE.sub(include, sql)


queries: dict[str, str] = load_queries()


def adapt(params: Mapping[str, Any]) -> dict[str, Any]:
    """dicts and lists go to PostgreSQL as jsonb."""
    return {k: Json(v) if isinstance(v, (dict, list)) else v for k, v in params.items()}


def as_json(value: Any) -> Json:
    """Any JSON value (scalars too) as a jsonb parameter."""
    return Json(value)


def is_unavailable(exc: BaseException) -> bool:
    """True when a driver error means the database cannot be reached."""
    if isinstance(exc, DatabaseUnavailable):
        return True
    if isinstance(exc, InterfaceError):
        return True
    cause = exc.__cause__ if isinstance(exc, DatabaseError) else exc
    pgcode = getattr(cause, "pgcode", None)
    if pgcode:
        return pgcode.startswith(_UNAVAILABLE_SQLSTATES)
    # Connection refused / server closed the connection: no SQLSTATE at all.
    return isinstance(exc, OperationalError) or isinstance(cause, pg_errors.OperationalError)


def _raise_if_unavailable(exc: DatabaseError) -> None:
    """DatabaseUnavailable when ``exc`` means the database cannot take this now (gone,
    refusing, or a read-only standby, SQLSTATE 25006); the connection is then retired, so
    the next request or retry opens a new one (after a failover, to the new primary)
    rather than keep a live connection to a standby."""
    if is_unavailable(exc):
        connection.close_at = time.monotonic()  # closed when this request (or retry) ends
        raise DatabaseUnavailable(str(exc).strip() or None) from exc


@contextmanager
def _cursor() -> Iterator[Any]:
    try:
        with connection.cursor() as cursor:
            yield cursor
    except IntegrityError as exc:
        if isinstance(exc.__cause__, pg_errors.UniqueViolation):
            raise AlreadyExists(exc.__cause__.diag.constraint_name or None) from exc
        raise
    except DatabaseError as exc:
        _raise_if_unavailable(exc)
        raise


# Django's backend turns off psycopg2's JSON decoding (its JSONField decodes), so
# json/jsonb columns arrive as text: decode them here, by column type.
_JSON_OIDS = frozenset({114, 3802})


def _columns(cursor: Any) -> list[tuple[str, bool]]:
    return [(col.name, col.type_code in _JSON_OIDS) for col in cursor.description]


def _row(columns: list[tuple[str, bool]], row: tuple[Any, ...]) -> dict[str, Any]:
    return {
        name: json.loads(value) if is_json and isinstance(value, str) else value
        for (name, is_json), value in zip(columns, row, strict=True)
    }


def fetch_one(name: str, /, **params: Any) -> dict[str, Any] | None:
    """Run a named query and return its first row as a dict, or None."""
    with _cursor() as cursor:
        cursor.execute(queries[name], adapt(params))
        row = cursor.fetchone() if cursor.description else None
        return _row(_columns(cursor), row) if row is not None else None


#: Named queries PREPAREd on each connection that ran them (the driver's connection object,
#: so a new connection after a reconnect prepares again).
_prepared: weakref.WeakKeyDictionary[Any, dict[str, str]] = weakref.WeakKeyDictionary()
#: What EXECUTE of a prepared statement can fail with, by SQLSTATE, and what is left of it:
#: feature_not_supported, "cached plan must not change result type" once the row type of
#: its result changed (still there, to DEALLOCATE); invalid_sql_statement_name, gone.
_PREPARED_GONE = {"0A000": "stale", "26000": "gone"}
_PLACEHOLDER = re.compile(r"%\(([a-z_]+)\)s")


def _as_prepared(sql: str) -> tuple[str, list[str]]:
    """``%(name)s`` placeholders as ``$n``, with the names in order."""
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    return _PLACEHOLDER.sub(number, sql).replace("%%", "%"), names


def fetch_one_prepared(name: str, /, **params: Any) -> dict[str, Any] | None:
    """:func:`fetch_one` for a query on every request's path whose planning costs more
    than running it: PREPAREd once per connection (persistent connections keep it), then
    EXECUTEd, so PostgreSQL reuses the plan.

    A prepared ``SELECT *`` stops working when its table gains or loses a column (a
    migration run while this process keeps its connection: "cached plan must not change
    result type"), and a ``DISCARD ALL`` drops every prepared statement: the statement is
    then prepared again and run once more or, inside a transaction the error has aborted,
    prepared again by the next call."""
    sql, names = _as_prepared(queries[name])
    adapted = adapt(params)
    values = [adapted[n] for n in names]
    execute = f"EXECUTE {name} ({', '.join(['%s'] * len(names))})"
    with _cursor() as cursor:
        state = _prepared.setdefault(connection.connection, {})
        if state.get(name) != "ready":
            _prepare(cursor, name, sql, state)
        try:
            cursor.execute(execute, values)
        except DatabaseError as exc:
            code = getattr(exc.__cause__, "pgcode", None)
            if code not in _PREPARED_GONE:
                raise
            logger.info("prepared statement %s prepared again (%s)", name, exc.__cause__)
            state[name] = _PREPARED_GONE[code]
            if connection.in_atomic_block:
                raise  # the transaction is aborted; the caller's next call prepares again
            _prepare(cursor, name, sql, state)
            cursor.execute(execute, values)
        row = cursor.fetchone() if cursor.description else None
        return _row(_columns(cursor), row) if row is not None else None


def _prepare(cursor: Any, name: str, sql: str, state: dict[str, str]) -> None:
    if state.get(name) == "stale":  # prepared for the table as it was
        cursor.execute(f"DEALLOCATE {name}")
    cursor.execute(f"PREPARE {name} AS {sql}")
    state[name] = "ready"


def fetch_all(name: str, /, **params: Any) -> list[dict[str, Any]]:
    """Run a named query and return every row as a dict."""
    with _cursor() as cursor:
        cursor.execute(queries[name], adapt(params))
        if not cursor.description:
            return []
        columns = _columns(cursor)
        return [_row(columns, row) for row in cursor.fetchall()]


@contextmanager
def atomic() -> Iterator[None]:
    """One transaction (or savepoint); unreachable-database errors are translated."""
    try:
        with transaction.atomic():
            yield
    except DatabaseError as exc:
        _raise_if_unavailable(exc)
        raise


# -- the connection ------------------------------------------------------------------------
def reset() -> None:
    """Drop this thread's connection (after the database went away); the next query
    opens a new one."""
    connection.close()


def retrying(write: Callable[[], T], *, what: str, limit: float) -> T:
    """Run ``write``, retrying with backoff for up to ``limit`` seconds while the database
    is unreachable (a worker must not lose an outcome to a database restart)."""
    deadline = time.monotonic() + limit
    delay = 0.25
    while True:
        try:
            return write()
        except DatabaseUnavailable:
            if time.monotonic() >= deadline:
                raise
            logger.warning("database unavailable during %s; retrying in %.1fs", what, delay)
            reset()
            time.sleep(delay)
            delay = min(delay * 2, 5.0)


# A connection of its own (the cluster's listener in jobs/broker.py), not Django's.


def listen(raw_connection: Any, *, key: str) -> None:
    """Make a psycopg2 connection (autocommit) LISTEN for new envelopes of a cluster key."""
    with raw_connection.cursor() as cursor:
        cursor.execute(queries["queue_channel"], {"key": key})
        channel = cursor.fetchone()[0]
        cursor.execute(sql.SQL(queries["queue_listen"]).format(channel=sql.Identifier(channel)))


def ping(raw_connection: Any) -> None:
    """Raise a psycopg2 error unless a psycopg2 connection still answers."""
    with raw_connection.cursor() as cursor:
        cursor.execute(queries["health_check"])


# Another database altogether, on a connection of its own: a job type's source
# (``migrate_rows`` reads the table its params name there, with SQL composed in the type
# from quoted identifiers; not the platform's store, so not a named query of jobs/sql/).


def fetch_all_on(
    raw_connection: Any, query: str | sql.Composable, params: Mapping[str, Any] | None = None
) -> list[tuple[Any, ...]]:
    """Run one query on a psycopg2 connection that is not Django's and return its rows as
    tuples. Transactions are the caller's; driver errors come as they are (only the caller
    knows what its database's failures mean)."""
    with raw_connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall() if cursor.description else []
