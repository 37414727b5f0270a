"""The source of the README's migration walkthrough (``scripts/start`` names it ``demo``): a
database of its own beside the platform's, never the platform's, with a login role that
may connect to it and read its demo tables, nothing else.

A source gives the applications allowed to use it whatever its role may read; with the
platform's own database and its superuser (as ``scripts/start`` once configured it), that was
every application's callback secrets, tokens and jobs. Here the database is
``<platform database>_demo`` (``jobplatform_demo`` beside the embedded ``jobplatform``) and
its role ``<that>_reader``: not a superuser, sessions read-only, CONNECT on that database
alone (no one else's CONNECT either), SELECT on each table :func:`demo_table_create` makes.

Both are made with the platform's own credentials, which need CREATEDB and CREATEROLE (the
dev and test servers' superuser). The role's password is made once and kept in
``.data/demo-source-password`` (mode 600, like the embedded server's data beside it), so
``scripts/start`` and the commands of another terminal agree without passing it around.

The SQL is here, not in ``jobs/sql/``: like a migration's, it builds a database, a role and
tables that are not the platform's, named from the platform's database name and the
command's argument, quoted as identifiers; it runs through ``jobs.db.fetch_all_on`` on
connections of its own.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg2
from django.db import connection
from psycopg2 import errors as pg_errors
from psycopg2 import sql

from jobs import db
from jobs.exceptions import InvalidInput

#: PostgreSQL's longest identifier (NAMEDATALEN - 1).
IDENTIFIER_MAX = 63
#: Where the reader role's password is kept (made on first use).
PASSWORD_FILE = Path(__file__).resolve().parents[2] / ".data" / "demo-source-password"

TABLE = sql.SQL(
    """
CREATE TABLE {table} (
    id bigint PRIMARY KEY,
    email text NOT NULL,
    full_name text NOT NULL,
    region text NOT NULL,
    balance numeric(12, 2) NOT NULL,
    active boolean NOT NULL,
    signed_up_at timestamptz NOT NULL
)"""
)
ROWS = sql.SQL(
    """
INSERT INTO {table}
SELECT n,
       'Customer.' || n || '@Example.COM',
       'Customer ' || n,
       (ARRAY['eu', 'us', 'apac', 'latam'])[n %% 4 + 1],
       (n * 7919 %% 1000000) / 100.0,
       n %% 10 <> 0,
       timestamptz '2019-01-01 00:00:00+00' + n * interval '1 minute'
FROM generate_series(1, %(rows)s) AS n"""  # %% is a literal %: the statement has a parameter
)


@dataclass(frozen=True)
class DemoSource:
    """The demo source's database and its reader role."""

    database: str
    role: str

    @classmethod
    def beside(cls, platform_database: str) -> DemoSource:
        """``<platform_database>_demo`` and ``<that>_reader``; a long name is cut and given
        a digest of the whole, so two platforms never share a demo source."""
        database, role = f"{platform_database}_demo", f"{platform_database}_demo_reader"
        if len(role) > IDENTIFIER_MAX:
            digest = hashlib.sha256(platform_database.encode()).hexdigest()[:8]
            stem = f"{platform_database[: IDENTIFIER_MAX - len('_demo_reader') - 9]}_{digest}"
            database, role = f"{stem}_demo", f"{stem}_demo_reader"
        return cls(database=database, role=role)

    def url(self, password: str) -> str:
        """The source's URL for ``JOBS_SOURCES``: the platform's server (every host of a
        multi-host one), this database, the reader role."""
        settings_dict = connection.settings_dict
        hosts = str(settings_dict.get("HOST") or "localhost").split(",")
        ports = str(settings_dict.get("PORT") or "").split(",")
        if len(ports) == 1:
            ports *= len(hosts)
        netloc = ",".join(
            quote(host, safe="") + (f":{port}" if port else "") for host, port in zip(hosts, ports, strict=True)
        )
        url = f"postgres://{quote(self.role, safe='')}:{quote(password, safe='')}@{netloc}/{quote(self.database)}"
        target = (settings_dict.get("OPTIONS") or {}).get("target_session_attrs")
        return f"{url}?target_session_attrs={target}" if target else url


def demo_source() -> DemoSource:
    """The demo source beside the platform's database (Django's settings name it)."""
    return DemoSource.beside(connection.settings_dict["NAME"])


def demo_source_password(path: Path | None = None) -> str:
    """The reader role's password (kept in ``path``, by default :data:`PASSWORD_FILE`):
    made on first use, then read back."""
    path = path or PASSWORD_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    password = secrets.token_hex(24)
    with os.fdopen(descriptor, "w") as file:
        file.write(password + "\n")
    return password


def _connect(database: str | None = None) -> Any:
    """A connection of its own, with the platform's credentials (to ``database``, else the
    platform's), in autocommit: CREATE DATABASE runs outside a transaction."""
    params = connection.get_connection_params()
    if database is not None:
        params["dbname"] = database
    raw = psycopg2.connect(**params)
    raw.autocommit = True
    return raw


def demo_source_prepare(*, password: str | None = None) -> DemoSource:
    """Make the demo database and its reader role if missing (another process doing the
    same at the same time is fine), and give the role ``password`` when one is given. The
    role may log in, read nothing but what :func:`demo_table_create` grants, write nothing."""
    source = demo_source()
    database, role = sql.Identifier(source.database), sql.Identifier(source.role)
    raw = _connect()
    try:
        [(has_database,)] = db.fetch_all_on(
            raw, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = %(name)s)", {"name": source.database}
        )
        if not has_database:
            try:
                db.fetch_all_on(raw, sql.SQL("CREATE DATABASE {}").format(database))
            except pg_errors.DuplicateDatabase:
                pass  # made by another process meanwhile
        [(has_role,)] = db.fetch_all_on(
            raw, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = %(name)s)", {"name": source.role}
        )
        if not has_role:
            try:
                db.fetch_all_on(
                    raw,
                    sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION").format(role),
                )
            except (pg_errors.DuplicateObject, pg_errors.UniqueViolation):
                pass  # made by another process meanwhile
        db.fetch_all_on(raw, sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(role))
        if password is not None:
            db.fetch_all_on(raw, sql.SQL("ALTER ROLE {} PASSWORD %(password)s").format(role), {"password": password})
        db.fetch_all_on(raw, sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(database))
        db.fetch_all_on(raw, sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(database, role))
    finally:
        raw.close()
    raw = _connect(source.database)
    try:  # before PostgreSQL 15 every role could create tables in public
        db.fetch_all_on(raw, "REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    finally:
        raw.close()
    return source


def demo_source_url() -> str:
    """Prepare the demo source with the kept password; its URL for ``JOBS_SOURCES``."""
    password = demo_source_password()
    return demo_source_prepare(password=password).url(password)


def demo_table_create(*, table: str, rows: int, replace: bool = False) -> DemoSource:
    """A table of ``rows`` fake customers (id, email, full_name, region, balance, active,
    signed_up_at) in the demo database, made in one ``INSERT … SELECT generate_series``
    (100,000 rows in about a second), readable by the reader role."""
    if not 1 <= rows <= 100_000_000:
        raise InvalidInput({"rows": ["Give 1 to 100000000 rows."]})
    if not table or len(table) > IDENTIFIER_MAX or "\x00" in table:
        raise InvalidInput({"table": [f"Give a table name of 1 to {IDENTIFIER_MAX} characters."]})
    source = demo_source_prepare()
    name = sql.Identifier(table)
    raw = _connect(source.database)
    try:
        raw.autocommit = False
        quoted = {"name": name.as_string(raw)}
        [(exists,)] = db.fetch_all_on(raw, "SELECT to_regclass(%(name)s) IS NOT NULL", quoted)
        if exists and not replace:
            raise InvalidInput({"table": [f"Table {table} exists in {source.database}; --replace drops it first."]})
        if exists:
            db.fetch_all_on(raw, sql.SQL("DROP TABLE {}").format(name))
        db.fetch_all_on(raw, TABLE.format(table=name))
        db.fetch_all_on(raw, ROWS.format(table=name), {"rows": rows})
        db.fetch_all_on(raw, sql.SQL("GRANT SELECT ON {} TO {}").format(name, sql.Identifier(source.role)))
        raw.commit()
        raw.autocommit = True
        db.fetch_all_on(raw, sql.SQL("ANALYZE {}").format(name))
    finally:
        raw.close()
    return source
