"""The platform's own database, before there is a schema in it: made when its server does
not have it yet (``manage.py create_database``, which ``scripts/start`` runs before
``migrate``), so that a fresh server works as the embedded one does. An existing database
is left as it is.

Making one needs the platform's role to have CREATEDB and to reach a maintenance database
(``postgres`` or ``template1``); without either, :class:`DatabaseNotCreated` says so and
how to create it by hand. Like ``demo_source``, the SQL is here (it makes a database, not
platform records) and runs through ``jobs.db.fetch_all_on`` on connections of its own.
"""

from __future__ import annotations

import shlex
from typing import Any

import psycopg2
from django.db import connection
from psycopg2 import errors as pg_errors
from psycopg2 import sql

from jobs import db
from jobs.exceptions import DatabaseNotCreated

#: Where CREATE DATABASE is sent from: the database every server has, or its template.
MAINTENANCE_DATABASES = ("postgres", "template1")


def database_create_if_missing() -> str | None:
    """Create the database the platform's connection names when its server lacks it;
    its name when it was created, None when it was there already."""
    params = connection.get_connection_params()
    name = params["dbname"]
    try:
        psycopg2.connect(**params).close()
        return None  # it exists (and this role may connect to it)
    except psycopg2.OperationalError as exc:
        failure = str(exc).strip()
    maintenance = _maintenance(params)
    if maintenance is None:
        raise DatabaseNotCreated(
            f"Cannot connect to the database {name!r}: {failure}\nIf it does not exist, create it "
            f"({_createdb(params)}) or set DATABASE_URL to one that does."
        )
    try:
        maintenance.autocommit = True
        [(exists,)] = db.fetch_all_on(
            maintenance, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = %(name)s)", {"name": name}
        )
        if exists:  # something else refused the connection (a password, pg_hba.conf, CONNECT)
            raise DatabaseNotCreated(f"Cannot connect to the database {name!r}: {failure}")
        db.fetch_all_on(maintenance, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except pg_errors.DuplicateDatabase:
        return None  # made by another process meanwhile
    except pg_errors.InsufficientPrivilege:
        raise DatabaseNotCreated(
            f"The database {name!r} does not exist, and the role {params.get('user')!r} may not create one "
            f"(CREATEDB): create it ({_createdb(params)}) or set DATABASE_URL to one that exists."
        ) from None
    except psycopg2.Error as exc:  # another start using template1 meanwhile, a read-only standby, …
        raise DatabaseNotCreated(
            f"The database {name!r} does not exist and could not be created: {str(exc).strip()}"
        ) from None
    finally:
        maintenance.close()
    return name


def _maintenance(params: dict[str, Any]) -> Any:
    for database in MAINTENANCE_DATABASES:
        try:
            return psycopg2.connect(**{**params, "dbname": database})
        except psycopg2.OperationalError:
            continue
    return None


def _createdb(params: dict[str, Any]) -> str:
    """The ``createdb`` command line for this server, user and name."""
    words = ["createdb"]
    for flag, key in (("-h", "host"), ("-p", "port"), ("-U", "user")):
        if params.get(key):
            words += [flag, str(params[key])]
    return shlex.join([*words, params["dbname"]])
