"""``migrate_rows``: the platform's own use case. Reads a table of a PostgreSQL source in
keyset-paged batches, maps each row to a new shape, POSTs each batch to an HTTP target
with an idempotency key, and checkpoints after each acknowledged batch, so an attempt
after a crash (or a re-run with ``"resume": true``) continues after the last batch.

A source is a database the operator names in ``JOBS_SOURCES``; a request only names it,
and only an application ``JOBS_SOURCE_APPS`` names for that source may (checked at create
and again when the job runs). A source gives those applications whatever its role may read,
so it is never the platform's own database: a job refuses a source holding the platform's
tables. The target's host (and port) must be in ``JOBS_MIGRATION_TARGET_HOSTS``; each POST
ends within ``JOBS_MIGRATION_TARGET_TIMEOUT`` (``jobs.runtime.outbound``) and nothing of
the target's answer but its status reaches the job. Reading is read-only, on a connection
of its own (not Django's) with a statement timeout. The queries below run on
the *source*, not on the platform's store, so they are not named queries of jobs/sql/:
they are composed here with quoted identifiers (``psycopg2.sql``) for the table the
params name, after checking every name against the source's ``information_schema``, and
run through ``jobs.db.fetch_all_on``; nothing from a request is ever SQL text.
See docs/job-types.md ("migrate_rows").
"""

from __future__ import annotations

import base64
import hashlib
import http
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as time_of_day
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import orjson
import psycopg2
from django.conf import settings as django_settings
from psycopg2 import errors as pg_errors
from psycopg2 import sql
from rest_framework import serializers

from jobs import db, selectors
from jobs.conf import EVERY_APP, settings
from jobs.exceptions import listing
from jobs.registry import JobType, PermanentError, registry
from jobs.runtime import outbound
from jobs.runtime.context import JobContext
from jobs.services.callbacks import http_url_problem

#: Most rows one batch may hold (``batch_size``).
BATCH_SIZE_MAX = 5000
#: Most target fields a mapping may declare, and most ``where_equals`` columns.
MAPPING_MAX = 200
FILTERS_MAX = 10
#: PostgreSQL's longest identifier (NAMEDATALEN - 1); a target field name's limit.
IDENTIFIER_MAX = 63
FIELD_NAME_MAX = 100
#: Longest wait between two sends of a batch within an attempt (seconds).
BACKOFF_CAP = 60.0

#: Key column types and the JSON type their values take in a checkpoint: keyset paging
#: compares ``key > last_key`` in the column's own order, and the checkpoint keeps
#: ``last_key`` as JSON, so only types whose values JSON holds exactly are accepted.
KEY_TYPES: dict[str, type] = {
    "smallint": int,
    "integer": int,
    "bigint": int,
    "text": str,
    "character varying": str,
    "uuid": str,
}
TEXT_TYPES = frozenset({"text", "character varying", "character"})


def _text(value: Any) -> Any:
    """A value as text: strings as they are, anything else as its JSON."""
    value = json_value(value)
    return value if value is None or isinstance(value, str) else orjson.dumps(value).decode()


#: The transforms a mapping may apply, by name: (function, whether it needs a text column).
TRANSFORMS: dict[str, tuple[Callable[[Any], Any], bool]] = {
    "lower": (str.lower, True),
    "upper": (str.upper, True),
    "trim": (str.strip, True),
    "text": (_text, False),
}


# -- what the operator configured ----------------------------------------------------------
def sources() -> dict[str, str]:
    """The configured sources by name (``JOBS_SOURCES``)."""
    return dict(getattr(django_settings, "JOBS_SOURCES", {}))


def sources_for(app_name: str) -> list[str]:
    """The sources the application ``app_name`` may use, sorted: those whose
    ``JOBS_SOURCE_APPS`` entry names it or is ``*``. A source with no entry serves none."""
    apps = getattr(django_settings, "JOBS_SOURCE_APPS", {})
    return sorted(name for name in sources() if {app_name, EVERY_APP} & set(apps.get(name, ())))


def target_hosts() -> list[str]:
    """The hosts batches may go to (``JOBS_MIGRATION_TARGET_HOSTS``; none by default)."""
    return list(getattr(django_settings, "JOBS_MIGRATION_TARGET_HOSTS", []))


def source_problem(name: str, *, app_name: str | None) -> str | None:
    """What is wrong with ``name`` as a source of the application ``app_name`` (None: it
    may use it). The message names only sources open to that application: another's are
    none of its business, not even their names. Without an application (the worker
    re-checking a job's params; the type's run then checks the job's application), only
    whether the source exists, naming none."""
    if app_name is None:
        return None if name in sources() else "Unknown source: no source of that name is configured (JOBS_SOURCES)."
    usable = sources_for(app_name)
    if name in usable:
        return None
    if not usable:
        return (
            "No source is open to this application: the operator names sources in JOBS_SOURCES "
            "and the applications that may use each in JOBS_SOURCE_APPS."
        )
    return f"Unknown source; the sources this application may use are: {listing(usable)} (JOBS_SOURCES)."


def target_problem(url: Any) -> str | None:
    """What is wrong with ``url`` as a target (callbacks' rule, with its own host list)."""
    return http_url_problem(
        url,
        allowed=target_hosts(),
        setting="JOBS_MIGRATION_TARGET_HOSTS",
        subject="Migration targets",
        why_no_credentials="params are stored and shown with the job",
    )


# -- the plan, from the validated params -----------------------------------------------------
@dataclass(frozen=True)
class Plan:
    source: str
    schema: str
    table: str
    key: str
    mapping: dict[str, str]
    transforms: dict[str, str]
    where_equals: dict[str, str]
    target_url: str
    batch_size: int

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Plan:
        return cls(
            source=params["source"],
            schema=params.get("schema", "public"),
            table=params["table"],
            key=params["key"],
            mapping=dict(params["mapping"]),
            transforms=dict(params.get("transforms") or {}),
            where_equals=dict(params.get("where_equals") or {}),
            target_url=params["target_url"],
            batch_size=params.get("batch_size", 500),
        )

    @property
    def keyset(self) -> str:
        """What a checkpoint's ``last_key`` is a position in: ``source:schema.table(key)``."""
        return f"{self.source}:{self.schema}.{self.table}({self.key})"

    @property
    def columns(self) -> list[str]:
        """The columns read: the key first, then each mapped column once."""
        return list(dict.fromkeys([self.key, *self.mapping.values()]))

    def identity(self) -> dict[str, Any]:
        """What decides a batch's content besides its key range (never the job or attempt)."""
        return {
            "source": self.source,
            "schema": self.schema,
            "table": self.table,
            "key": self.key,
            "mapping": self.mapping,
            "transforms": self.transforms,
            "where_equals": self.where_equals,
        }


def json_value(value: Any) -> Any:
    """A source value as JSON: numeric as an exact decimal string, timestamps, dates and
    times as ISO 8601, intervals as seconds, uuid as text, bytea as base64, json as is,
    NaN and infinities as their text; anything else as ``str()``."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date, time_of_day)):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    return str(value)


def map_row(plan: Plan, row: dict[str, Any]) -> dict[str, Any]:
    """One source row (by column name) in the target's shape."""
    out: dict[str, Any] = {}
    for field, column in plan.mapping.items():
        value = row[column]
        transform = plan.transforms.get(field)
        if transform is not None and value is not None:
            value = TRANSFORMS[transform][0](value)
        out[field] = json_value(value)
    return out


def batch_idempotency_key(plan: Plan, *, first_key: Any, last_key: Any, rows: int) -> str:
    """The batch's ``Idempotency-Key``: a digest of what the batch is (the source, table,
    filter and mapping, and its key range and size), never of the job or the attempt, so
    a repeat after a crash, a retry or a resumed re-run sends the same key."""
    identity = {**plan.identity(), "first_key": first_key, "last_key": last_key, "rows": rows}
    return "migrate-" + hashlib.sha256(orjson.dumps(identity, option=orjson.OPT_SORT_KEYS)).hexdigest()[:48]


def batch_body(plan: Plan, *, number: int, rows: list[dict[str, Any]], idempotency_key: str) -> bytes:
    """What a batch POSTs: the same bytes on every attempt for the same rows (sorted keys,
    nothing about the attempt), so a receiver comparing a repeated key's body accepts it."""
    body = {
        "rows": [map_row(plan, row) for row in rows],
        "batch": {
            "number": number,
            "first_key": rows[0][plan.key],
            "last_key": rows[-1][plan.key],
            "rows": len(rows),
            "idempotency_key": idempotency_key,
            "source": plan.source,
            "table": f"{plan.schema}.{plan.table}",
        },
    }
    return orjson.dumps(body, option=orjson.OPT_SORT_KEYS)


# -- the source ------------------------------------------------------------------------------
#: The table's columns as the source's user sees them (a table it may not read has none).
COLUMNS_SQL = """
SELECT column_name, data_type, is_nullable
FROM information_schema.columns
WHERE table_schema = %(schema)s AND table_name = %(table)s
ORDER BY ordinal_position
"""
#: Whether a unique index on the key column alone (not partial) exists: keyset paging
#: needs the key unique (else rows sharing a page boundary are skipped) and indexed.
UNIQUE_KEY_SQL = """
SELECT EXISTS (
    SELECT 1
    FROM pg_catalog.pg_index i
    JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
    WHERE i.indrelid = to_regclass(format('%%I.%%I', %(schema)s, %(table)s))
      AND i.indisunique AND i.indnkeyatts = 1 AND i.indpred IS NULL AND a.attname = %(key)s
) AS unique_key
"""
#: The platform's own tables (migration 0001). A source database holding every one of them
#: is the platform's own (or another platform's), however its URL spells the host (a
#: socket, an alias, a proxy in front): pg_class lists every schema's tables to any role,
#: whatever it may read. All four, so that a legacy database with a table named like one
#: of them is not taken for it.
PLATFORM_TABLES = ("jobs_app", "jobs_event", "jobs_job", "jobs_token")
PLATFORM_TABLES_SQL = """
SELECT DISTINCT relname::text FROM pg_catalog.pg_class
WHERE relname = ANY(%(tables)s) AND relkind IN ('r', 'p')
"""
#: The planner's estimate of the table's rows, when counting takes too long.
ESTIMATE_SQL = """
SELECT greatest(reltuples, 0)::bigint FROM pg_catalog.pg_class
WHERE oid = to_regclass(format('%%I.%%I', %(schema)s, %(table)s))
"""


def _where(plan: Plan, *, after: bool) -> sql.Composable:
    conditions: list[sql.Composable] = []
    if after:
        conditions.append(sql.SQL("{} > {}").format(sql.Identifier(plan.key), sql.Placeholder("after")))
    for index, column in enumerate(sorted(plan.where_equals)):
        conditions.append(sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder(f"where_{index}")))
    return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("")


def page_query(plan: Plan, *, after: bool) -> sql.Composed:
    """The next page: ``SELECT <columns> FROM <table> WHERE key > %(after)s [AND col = …]
    ORDER BY key LIMIT %(limit)s``, every name quoted."""
    return sql.SQL("SELECT {columns} FROM {table}{where} ORDER BY {key} LIMIT {limit}").format(
        columns=sql.SQL(", ").join(map(sql.Identifier, plan.columns)),
        table=sql.Identifier(plan.schema, plan.table),
        where=_where(plan, after=after),
        key=sql.Identifier(plan.key),
        limit=sql.Placeholder("limit"),
    )


def count_query(plan: Plan, *, after: bool) -> sql.Composed:
    """How many rows are left after ``%(after)s`` (or in all), with the same filter."""
    return sql.SQL("SELECT count(*) FROM {table}{where}").format(
        table=sql.Identifier(plan.schema, plan.table), where=_where(plan, after=after)
    )


def query_params(plan: Plan, *, after: Any) -> dict[str, Any]:
    values: dict[str, Any] = {"after": after, "limit": plan.batch_size}
    for index, column in enumerate(sorted(plan.where_equals)):
        values[f"where_{index}"] = plan.where_equals[column]
    return values


class SourceUnavailable(Exception):
    """The source could not be reached or read (retried: the next attempt tries again)."""


class TargetUnavailable(Exception):
    """The target did not acknowledge a batch within the attempt (retried: the next
    attempt, or a re-run with resume, continues after the last acknowledged batch)."""


class Source:
    """One attempt's read-only connection to a named source. Each page is read in its own
    short read-only transaction, so no snapshot is held between batches."""

    def __init__(self, plan: Plan, *, dsn: str, job_id: Any) -> None:
        self.plan = plan
        timeout_ms = max(1, int(settings.MIGRATION_STATEMENT_TIMEOUT * 1000))
        try:
            self.connection = psycopg2.connect(
                dsn,
                connect_timeout=10,
                application_name=f"jobplatform migrate_rows {job_id}"[:63],
                options=f"-c default_transaction_read_only=on -c statement_timeout={timeout_ms}",
            )
        except psycopg2.OperationalError as exc:
            raise SourceUnavailable(f"source {plan.source!r}: {_first_line(exc)}") from exc
        self.connection.set_session(readonly=True)

    def close(self) -> None:
        self.connection.close()

    def _fetch(self, query: str | sql.Composable, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        """One query in a read-only transaction of its own, ended at once (no snapshot is
        held between batches); a lost connection is ``SourceUnavailable``."""
        try:
            return db.fetch_all_on(self.connection, query, params)
        except pg_errors.QueryCanceled:
            raise  # the statement timeout: the caller decides
        except psycopg2.OperationalError as exc:
            raise SourceUnavailable(f"source {self.plan.source!r}: {_first_line(exc)}") from exc
        finally:
            if not self.connection.closed:
                try:
                    self.connection.rollback()
                except psycopg2.Error:
                    pass  # a broken connection: the error above says why

    def refuse_platform_database(self) -> None:
        """Fail the job at once (PermanentError) when the source is the platform's own
        database: any application allowed the source would read every application's jobs,
        tokens and callback secrets through it."""
        found = {name for (name,) in self._fetch(PLATFORM_TABLES_SQL, {"tables": list(PLATFORM_TABLES)})}
        if found == set(PLATFORM_TABLES):
            raise PermanentError(
                f"source {self.plan.source!r} is the platform's own database (it holds the tables "
                f"{', '.join(PLATFORM_TABLES)}): a source must never be the platform's database, whose tables hold "
                "every application's jobs, tokens and callback secrets; give the source a database of its own and "
                "a role that may only read the tables to migrate (docs/job-types.md)"
            )

    def check(self) -> str:
        """The source is not the platform's database; every name the params give exists on
        it, the key is unique, not null and of a supported type, each transform fits its
        column; the key's type. Anything else fails the job at once (PermanentError),
        naming what is wrong."""
        self.refuse_platform_database()
        plan = self.plan
        where = f"source {plan.source!r}"
        names = {"schema": plan.schema, "table": plan.table}
        columns = {name: (kind, nullable == "YES") for name, kind, nullable in self._fetch(COLUMNS_SQL, names)}
        if not columns:
            raise PermanentError(
                f"table {plan.schema}.{plan.table} does not exist on {where} (or its user may not read it)"
            )
        named = [plan.key, *plan.mapping.values(), *plan.where_equals]
        missing = [name for name in dict.fromkeys(named) if name not in columns]
        if missing:
            raise PermanentError(
                f"table {plan.schema}.{plan.table} on {where} has no column {listing(missing)}; "
                f"its columns: {listing(list(columns))}"
            )
        key_type, key_nullable = columns[plan.key]
        if key_type not in KEY_TYPES:
            supported = listing(list(KEY_TYPES))
            raise PermanentError(f"key column {plan.key} is {key_type}; a key must be one of {supported}")
        [(unique,)] = self._fetch(UNIQUE_KEY_SQL, {**names, "key": plan.key})
        if key_nullable or not unique:
            raise PermanentError(
                f"key column {plan.key} must be NOT NULL with a unique index on it alone "
                "(a primary key is): keyset paging would skip or repeat rows otherwise"
            )
        for field, name in plan.transforms.items():
            column = plan.mapping[field]
            if TRANSFORMS[name][1] and columns[column][0] not in TEXT_TYPES:
                raise PermanentError(
                    f"transform {name!r} of {field} needs a text column; {column} is {columns[column][0]}"
                )
        return key_type

    def remaining(self, *, after: Any) -> tuple[int, bool]:
        """How many rows are left after ``after`` (all, when None), and whether that is an
        exact count (False: counting took longer than the statement timeout, so it is the
        planner's estimate of the table)."""
        plan = self.plan
        try:
            [(count,)] = self._fetch(count_query(plan, after=after is not None), query_params(plan, after=after))
            return count, True
        except pg_errors.QueryCanceled:
            [(estimate,)] = self._fetch(ESTIMATE_SQL, {"schema": plan.schema, "table": plan.table})
            return estimate, False
        except psycopg2.DataError as exc:
            # The first query with the filter's values: one that cannot be the column's type.
            raise PermanentError(f"where_equals does not fit its columns: {_first_line(exc)}") from exc

    def page(self, *, after: Any) -> list[dict[str, Any]]:
        """The next ``batch_size`` rows after ``after`` (from the first, when None)."""
        plan = self.plan
        try:
            found = self._fetch(page_query(plan, after=after is not None), query_params(plan, after=after))
        except pg_errors.QueryCanceled as exc:
            raise SourceUnavailable(f"reading a page took longer than the statement timeout: {exc}") from exc
        rows = [dict(zip(plan.columns, row, strict=True)) for row in found]
        for row in rows:  # the key as JSON holds it (a uuid as text): it goes into checkpoints
            row[plan.key] = json_value(row[plan.key])
        return rows


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def resume_point(state: Any, plan: Plan, key_type: str) -> tuple[Any, int, int]:
    """``(last_key, rows_done, batches_done)`` to continue from (None, 0, 0: the start).
    A checkpoint of another table or key, or a key of the wrong type, fails the job:
    continuing from it would skip or repeat rows."""
    if state is None:
        return None, 0, 0
    if not isinstance(state, dict) or not {"last_key", "rows_done", "batches_done"} <= state.keys():
        raise PermanentError(f"the checkpoint {str(state)[:200]} is not one of migrate_rows; re-run without resume")
    if state.get("keyset", plan.keyset) != plan.keyset:
        raise PermanentError(
            f"the checkpoint is a position in {state['keyset']}, these params read {plan.keyset}; re-run without resume"
        )
    last_key = state["last_key"]
    if not isinstance(last_key, KEY_TYPES[key_type]) or isinstance(last_key, bool):
        raise PermanentError(f"the checkpoint's last_key {last_key!r} is not a value of the {key_type} key column")
    return last_key, int(state["rows_done"]), int(state["batches_done"])


# -- the target ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Answer:
    """What the target answered to one POST (``status`` None: no answer at all, and
    ``detail`` says why in words of this side). Nothing the target wrote is kept: not its
    body, not even its own reason phrase. A target is an allowed host, maybe an internal
    service, and whatever reaches the job (its error, its log) the client reads: echoing
    an answer would make the platform a way to read internal pages. The status alone
    says what the target decided."""

    status: int | None
    detail: str
    retry_after: str | None
    ms: int

    @property
    def verdict(self) -> str:
        """``ok`` (2xx: acknowledged), ``retry`` (no answer, 408, 429, 5xx) or ``refused``
        (any other status, redirects included: they are not followed)."""
        if self.status is None:
            return "retry"
        if 200 <= self.status < 300:
            return "ok"
        if self.status in (408, 429) or self.status >= 500:
            return "retry"
        return "refused"

    def describe(self) -> str:
        return self.detail if self.status is None else f"HTTP {self.status}"

    def status_text(self) -> str:
        """``HTTP 422 (Unprocessable Entity)``: the status and its standard reason phrase."""
        try:
            phrase = http.HTTPStatus(self.status or 0).phrase
        except ValueError:
            phrase = "a status without a standard meaning"
        return f"HTTP {self.status} ({phrase})"


def post_batch(url: str, body: bytes, *, idempotency_key: str, job_id: Any) -> Answer:
    """One POST of a batch, over within ``JOBS_MIGRATION_TARGET_TIMEOUT`` whatever the
    target does (a hard deadline on the whole exchange), no redirects followed. Never
    raises for what the network or the target does: that is the answer."""
    started = time.monotonic()

    def answer(status: int | None, detail: str = "", retry_after: str | None = None) -> Answer:
        return Answer(status, detail, retry_after, int((time.monotonic() - started) * 1000))

    try:
        reply = outbound.post(
            url,
            body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": "jobplatform-migrate_rows",
                "Idempotency-Key": idempotency_key,
                "Jobplatform-Job": str(job_id),
            },
            deadline=float(settings.MIGRATION_TARGET_TIMEOUT),
        )
    except Exception as exc:  # the deadline, refused connections, resets, answers that are not HTTP
        return answer(None, outbound.failure(exc))
    return answer(reply.status, "", reply.headers.get("Retry-After"))


def retry_delay(retry: int, retry_after: str | None = None) -> float:
    """The wait before send ``retry + 1`` of a batch: ``MIGRATION_TARGET_BACKOFF`` doubled
    per retry, or the target's ``Retry-After`` (seconds) when longer, at most ``BACKOFF_CAP``."""
    delay = settings.MIGRATION_TARGET_BACKOFF * 2**retry
    if retry_after is not None and retry_after.strip().isdigit():
        delay = max(delay, float(retry_after.strip()))
    return min(delay, BACKOFF_CAP)


# -- the params ------------------------------------------------------------------------------
def _identifier(help_text: str, **kwargs: Any) -> serializers.CharField:
    return serializers.CharField(max_length=IDENTIFIER_MAX, trim_whitespace=False, help_text=help_text, **kwargs)


def _names_problem(names: list[str], *, most: int, longest: int, what: str) -> str | None:
    if len(names) > most:
        return f"At most {most} {what}."
    if any(not name or len(name) > longest or "\x00" in name for name in names):
        return f"Each of the {what} needs 1 to {longest} characters."
    return None


@registry.register
class MigrateRows(JobType):
    """Copies a table of a configured PostgreSQL source to an HTTP endpoint in keyset-paged
    batches, each row mapped to a new shape; checkpoints after each acknowledged batch, so a
    retry, a rescued attempt or a re-run with resume continues after the last one."""

    name = "migrate_rows"
    timeout = 7200
    max_attempts = 5

    class Params(serializers.Serializer):
        source = serializers.CharField(
            max_length=40,
            help_text="The name of a source the operator configured (JOBS_SOURCES) and opened to this application "
            "(JOBS_SOURCE_APPS), never a URL.",
        )
        schema = _identifier("The table's schema.", default="public")
        table = _identifier("The table to read.")
        key = _identifier(
            "The keyset column: NOT NULL, unique (a unique index or primary key on it alone), of type "
            "smallint, integer, bigint, text, varchar or uuid."
        )
        mapping = serializers.DictField(
            child=_identifier("The source column."),
            help_text=f"Target field name → source column; each row sent has exactly these fields "
            f"(1 to {MAPPING_MAX}).",
        )
        transforms = serializers.DictField(
            child=serializers.ChoiceField(choices=sorted(TRANSFORMS)),
            default=dict,
            help_text="Target field → transform applied to its value: lower, upper, trim (text columns) or text "
            "(any value as text). Null stays null.",
        )
        where_equals = serializers.DictField(
            child=serializers.CharField(max_length=200, allow_blank=True, trim_whitespace=False),
            default=dict,
            help_text=f"Only rows whose column equals the value (a string, read as the column's type: "
            f'"5" for an integer, "true" for a boolean); at most {FILTERS_MAX} columns, all must match.',
        )
        target_url = serializers.CharField(
            max_length=2000,
            trim_whitespace=False,
            help_text="Where each batch is POSTed; its host (or host and port) must be in JOBS_MIGRATION_TARGET_HOSTS.",
        )
        batch_size = serializers.IntegerField(
            min_value=1, max_value=BATCH_SIZE_MAX, default=500, help_text="Rows per batch (one POST each)."
        )

        def validate_source(self, value: str) -> str:
            # The application creating the job (None when the worker re-checks the params).
            app = self.context.get("app")
            if (problem := source_problem(value, app_name=None if app is None else app.name)) is not None:
                raise serializers.ValidationError(problem)
            return value

        def validate_target_url(self, value: str) -> str:
            if (problem := target_problem(value)) is not None:
                raise serializers.ValidationError(problem)
            return value

        def validate_mapping(self, value: dict[str, str]) -> dict[str, str]:
            if not value:
                raise serializers.ValidationError("Map at least one target field to a source column.")
            problem = _names_problem(list(value), most=MAPPING_MAX, longest=FIELD_NAME_MAX, what="target fields")
            if problem is not None:
                raise serializers.ValidationError(problem)
            return value

        def validate_where_equals(self, value: dict[str, str]) -> dict[str, str]:
            problem = _names_problem(list(value), most=FILTERS_MAX, longest=IDENTIFIER_MAX, what="columns")
            if problem is not None:
                raise serializers.ValidationError(problem)
            return value

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            unmapped = [field for field in attrs.get("transforms", {}) if field not in attrs["mapping"]]
            if unmapped:
                raise serializers.ValidationError(
                    {"transforms": [f"Transforms apply to mapped target fields; not mapped: {listing(unmapped)}."]}
                )
            return attrs

    def run(self, ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
        plan = Plan.from_params(params)
        # Checked at create, and again here, for the job's own application: the operator may
        # have changed either since (and the worker's re-check of the params knows no app).
        app_name = None if ctx.app_id is None else selectors.app_name_get(app_id=ctx.app_id)
        if app_name is None:
            raise PermanentError(
                "the job's application is unknown: a source is read only for the applications JOBS_SOURCE_APPS names"
            )
        if (problem := source_problem(plan.source, app_name=app_name)) is not None:
            raise PermanentError(f"source {plan.source!r}: {problem}")
        if (problem := target_problem(plan.target_url)) is not None:
            raise PermanentError(f"target_url: {problem}")
        source = Source(plan, dsn=sources()[plan.source], job_id=ctx.job_id)
        try:
            return self._migrate(ctx, plan, source)
        finally:
            source.close()

    def _migrate(self, ctx: JobContext, plan: Plan, source: Source) -> dict[str, Any]:
        key_type = source.check()
        after, rows_done, batches_done = resume_point(ctx.checkpoint_state, plan, key_type)
        resumed_after = after
        left, exact = source.remaining(after=after)
        total = rows_done + left
        host = urlsplit(plan.target_url).hostname
        if after is not None:
            ctx.log(
                f"resuming after key {after} ({rows_done} rows in {batches_done} batches already sent)",
                level="warning",
                last_key=after,
                rows_done=rows_done,
                batches_done=batches_done,
                rows_left=left,
            )
        else:
            ctx.log(f"starting: {total} rows of {plan.keyset} to {host}", total=total, batch_size=plan.batch_size)
        if not exact:
            ctx.log("counting took too long: progress uses the table's estimated size", level="warning", total=total)
        sent_now = 0
        while True:
            ctx.raise_if_cancelled()
            rows = source.page(after=after)
            if not rows:
                break
            number = batches_done + 1
            first_key, last_key = rows[0][plan.key], rows[-1][plan.key]
            key = batch_idempotency_key(plan, first_key=first_key, last_key=last_key, rows=len(rows))
            body = batch_body(plan, number=number, rows=rows, idempotency_key=key)
            answer = self._deliver(ctx, plan, number=number, body=body, key=key, after=after)
            rows_done, batches_done, after, sent_now = rows_done + len(rows), number, last_key, sent_now + len(rows)
            ctx.log(
                f"batch {number} sent",
                rows=len(rows),
                first_key=first_key,
                last_key=last_key,
                status=answer.status,
                ms=answer.ms,
            )
            ctx.checkpoint(
                {"last_key": last_key, "rows_done": rows_done, "batches_done": batches_done, "keyset": plan.keyset}
            )
            total = max(total, rows_done)
            ctx.progress(100.0 * rows_done / total, f"{rows_done} of {total} rows sent ({batches_done} batches)")
        ctx.log(f"finished: {rows_done} rows in {batches_done} batches", rows=rows_done, batches=batches_done)
        return {
            "rows": rows_done,
            "batches": batches_done,
            "last_key": after,
            "resumed_after": resumed_after,
            "rows_this_attempt": sent_now,
            "keyset": plan.keyset,
        }

    def _deliver(self, ctx: JobContext, plan: Plan, *, number: int, body: bytes, key: str, after: Any) -> Answer:
        """POST one batch until the target acknowledges it; retried within the attempt
        (``MIGRATION_TARGET_RETRIES``, backoff through ``ctx.sleep`` so a cancel wakes it),
        then :class:`TargetUnavailable`; a refusal is permanent."""
        retries = int(settings.MIGRATION_TARGET_RETRIES)
        for retry in range(retries + 1):
            answer = post_batch(plan.target_url, body, idempotency_key=key, job_id=ctx.job_id)
            if answer.verdict == "ok":
                return answer
            what = answer.describe()
            if answer.verdict == "refused":
                ctx.log(
                    f"batch {number}: the target refused it with {answer.status_text()}",
                    level="error",
                    status=answer.status,
                )
                raise PermanentError(f"the target refused batch {number} with {answer.status_text()}")
            if retry == retries:
                ctx.log(
                    f"batch {number}: {what}; giving up on this attempt after {retries + 1} tries",
                    level="error",
                    status=answer.status,
                    error=answer.detail or None,
                    ms=answer.ms,
                )
                resume = "the start" if after is None else f"key {after}"
                raise TargetUnavailable(
                    f"the target did not acknowledge batch {number} after {retries + 1} tries ({what}); "
                    f"a next attempt, if any is left, continues after {resume}; once none is, "
                    'POST /jobs/{id}/rerun with {"resume": true} does'
                )
            delay = retry_delay(retry, answer.retry_after)
            ctx.log(
                f"batch {number}: {what}; retry {retry + 1} of {retries} in {delay:g} s",
                level="warning",
                status=answer.status,
                error=answer.detail or None,
                ms=answer.ms,
                retry=retry + 1,
            )
            ctx.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover
