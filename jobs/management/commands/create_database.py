"""``create_database``: create the platform's database (the one ``DATABASE_URL`` names) on
its server when the server does not have it yet, so that ``scripts/start`` works against a
fresh server as it does with the embedded one. It runs before ``migrate``; an existing
database is left as it is. Creating one needs the platform's role to have CREATEDB and to
reach a maintenance database (``postgres`` or ``template1``); without either, it says so
and how to create the database by hand."""

from __future__ import annotations

from typing import Any

import psycopg2
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from psycopg2 import errors as pg_errors
from psycopg2 import sql

from jobs import db

#: Where CREATE DATABASE is sent from: the database every server has, or its template.
MAINTENANCE_DATABASES = ("postgres", "template1")


class Command(BaseCommand):
    help = (
        "Create the platform's database (DATABASE_URL) on its server when it does not exist yet (scripts/start "
        "runs it before migrate); an existing one is left as it is."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        params = connection.get_connection_params()
        name = params["dbname"]
        try:
            psycopg2.connect(**params).close()
            return  # it exists (and this role may connect to it)
        except psycopg2.OperationalError as exc:
            failure = exc
        maintenance = self._maintenance(params)
        if maintenance is None:
            raise CommandError(
                f"Cannot connect to the database {name!r}: {str(failure).strip()}\n"
                f"If it does not exist, create it (createdb {name}) or set DATABASE_URL to one that does."
            )
        try:
            maintenance.autocommit = True
            [(exists,)] = db.fetch_all_on(
                maintenance, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = %(name)s)", {"name": name}
            )
            if exists:  # something else refused the connection (a password, pg_hba.conf, CONNECT)
                raise CommandError(f"Cannot connect to the database {name!r}: {str(failure).strip()}")
            try:
                db.fetch_all_on(maintenance, sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            except pg_errors.DuplicateDatabase:
                return  # made by another process meanwhile
            except pg_errors.InsufficientPrivilege:
                raise CommandError(
                    f"The database {name!r} does not exist, and the role {params.get('user')!r} may not create "
                    f"one (CREATEDB): create it (createdb {name}) or set DATABASE_URL to one that exists."
                ) from None
        finally:
            maintenance.close()
        self.stdout.write(f"==> the database {name!r} did not exist on its server: created it")

    @staticmethod
    def _maintenance(params: dict[str, Any]) -> Any:
        for database in MAINTENANCE_DATABASES:
            try:
                return psycopg2.connect(**{**params, "dbname": database})
            except psycopg2.OperationalError:
                continue
        return None
