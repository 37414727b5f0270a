"""Every tunable of the platform, defined once: its default, its environment variable,
its type and what it means.

``jobplatform/settings/base.py`` builds ``JOBS`` from :data:`TUNABLES` (reading each
environment variable), code reads values through :data:`settings` (so tests can
override ``JOBS``), and a test checks the README's settings table against this table.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured


def env_number(name: str, default: Any, cast: Callable[[str], Any], environ: Any = os.environ) -> Any:
    """A number from the environment variable ``name`` (empty or unset: ``default``)."""
    raw = environ.get(name, "")
    if raw == "":
        return default
    try:
        return cast(raw)
    except ValueError as exc:
        kind = "an integer" if cast is int else "a number"
        raise ImproperlyConfigured(f"{name} must be {kind}, got {raw!r}") from exc


@dataclass(frozen=True)
class Tunable:
    name: str
    default: int | float
    help: str

    @property
    def env(self) -> str:
        return f"JOBS_{self.name}"

    @property
    def cast(self) -> Callable[[str], Any]:
        return int if isinstance(self.default, int) else float

    def from_environment(self, environ: dict[str, str] | os._Environ[str] = os.environ) -> int | float:
        return env_number(self.env, self.default, self.cast, environ)


TUNABLES: tuple[Tunable, ...] = (
    # -- jobs as created -----------------------------------------------------------------
    Tunable("DEFAULT_MAX_ATTEMPTS", 3, "Attempts when neither the request nor the type says."),
    Tunable("MAX_ATTEMPTS_LIMIT", 25, "Highest `max_attempts` a request may ask for."),
    Tunable("DEFAULT_TIMEOUT", 600, "Seconds per attempt when neither the request nor the type says."),
    Tunable("MAX_TIMEOUT", 7200, "Highest `timeout` a request may ask for (seconds)."),
    Tunable("MAX_METADATA_BYTES", 64 * 1024, "Largest `metadata`, as compact UTF-8 JSON."),
    Tunable("MAX_SCHEDULE_DAYS", 366, "Latest `run_at` a request may ask for, in days from now."),
    Tunable("MAX_JSON_DEPTH", 64, "Deepest nesting allowed in `params` and `metadata`."),
    Tunable("MAX_BODY_BYTES", 1024 * 1024, "Largest request body; larger is `413`."),
    Tunable(
        "MAX_UNFINISHED_PER_APP",
        0,
        "Most jobs one application may have waiting or running; a create beyond it is `429` (0: no cap).",
    ),
    Tunable("BATCH_MAX", 1000, "Most jobs one `POST /batches` may create (all in one transaction)."),
    # -- error answers -------------------------------------------------------------------
    Tunable("ERRORS_LISTED_MAX", 50, "Most field errors one `400` lists; the rest are counted in `errors_truncated`."),
    Tunable("ERROR_ECHO_MAX", 200, "Longest text an error echoes (field names, messages, `detail`; the rest is cut)."),
    # -- reading -------------------------------------------------------------------------
    Tunable("PAGE_SIZE", 50, "Jobs per list page when `limit` is not given."),
    Tunable("MAX_PAGE_SIZE", 500, "Highest `limit` of a list page."),
    Tunable(
        "LIST_WALK_ROWS",
        10000,
        "A list filtered by metadata first walks this many newest jobs for its page; only when that finds "
        "too few does it look the value up in the metadata index.",
    ),
    Tunable("RETRY_AFTER_SECONDS", 5, "`Retry-After` of a `503` while the database is unreachable."),
    Tunable(
        "TOKEN_CACHE_SECONDS",
        5.0,
        "Each web process remembers a valid token this long, so a revocation takes effect within this bound "
        "(0: look every request up).",
    ),
    Tunable(
        "POLL_INTERVAL",
        2,
        "`Retry-After` of a `GET` of a queued or running job (a scheduled one: until its `run_at`, at most 300).",
    ),
    # -- rate limits (0 disables; counters in the shared jobs_rate table) ------------------
    Tunable(
        "RATE_LIMIT_REQUESTS",
        0,
        "Requests one token may make per rate window; more is `429` (off by default: size it for your clients).",
    ),
    Tunable(
        "RATE_LIMIT_FAILED_AUTH",
        20,
        "Failed token attempts (API and log-in form) per client address per rate window; then `429`.",
    ),
    Tunable("RATE_LIMIT_WINDOW", 60, "Length of a rate window (seconds), starting at its first counted request."),
    # -- running ---------------------------------------------------------------------------
    Tunable("HEARTBEAT_INTERVAL", 5.0, "Seconds between a running attempt's lease extensions."),
    Tunable("LEASE_SECONDS", 30.0, "A running attempt whose lease is this old without renewal is rescued."),
    Tunable("PROGRESS_MIN_INTERVAL", 0.5, "At most one progress write per this many seconds per attempt."),
    Tunable("PROGRESS_MESSAGE_MAX", 500, "Longest progress message stored (characters; the rest is cut)."),
    Tunable("ERROR_MESSAGE_MAX", 2000, "Longest error message stored on a job (characters)."),
    Tunable("BACKOFF_BASE", 2.0, "Retry backoff base (seconds): attempt n waits up to base·2^(n-1), with jitter."),
    Tunable("BACKOFF_CAP", 300.0, "Longest retry backoff (seconds)."),
    Tunable("DB_WAIT_SECONDS", 300.0, "How long a worker retries writing an outcome while the database is down."),
    Tunable("SHUTDOWN_GRACE", 30.0, "Seconds `qcluster` lets running jobs finish after SIGTERM or Ctrl-C."),
    Tunable(
        "MAX_RUNNING_PER_APP",
        0,
        "Most jobs one application may run at once, so its backlog cannot hold every worker "
        "(0: no cap; `set_app_limits` sets it per application).",
    ),
    Tunable(
        "FAIRNESS_DEFER_SECONDS", 1.0, "A job held back by its application's running cap is offered again after this."
    ),
    # -- checkpoints and job logs (docs/job-types.md) ------------------------------------------
    Tunable(
        "CHECKPOINT_MAX_BYTES",
        64 * 1024,
        "Largest checkpoint state, as compact UTF-8 JSON; a larger one raises `InvalidCheckpoint` in the job.",
    ),
    Tunable(
        "CHECKPOINT_EVENT_INTERVAL",
        10.0,
        "At most one `checkpoint` event per this many seconds per attempt (every checkpoint's state is stored).",
    ),
    Tunable(
        "LOG_MAX_LINES_PER_JOB",
        10_000,
        "Most log lines kept per job, all attempts together; later lines are dropped and counted (`logs.dropped`).",
    ),
    Tunable(
        "LOG_MAX_PER_SECOND",
        100,
        "Most log lines one attempt keeps per second; the rest are dropped, counted and noted by a warning line "
        "(at most one a second).",
    ),
    Tunable(
        "LOG_MESSAGE_MAX",
        2000,
        "Longest log message, and longest `fields` as JSON (characters); longer is cut and marked as cut.",
    ),
    Tunable(
        "LOG_FLUSH_INTERVAL",
        1.0,
        "Longest a log line waits in its worker's memory before it is written (lines are written in batches).",
    ),
    # -- completion callbacks ----------------------------------------------------------------
    Tunable("CALLBACK_MAX_ATTEMPTS", 8, "Deliveries tried per completion callback before giving up."),
    Tunable(
        "CALLBACK_TIMEOUT",
        5.0,
        "Seconds one delivery may take in all (connecting, sending, the answer's status and headers): a hard "
        "deadline, however slowly the receiver answers. A taken callback's lease is this plus 10.",
    ),
    Tunable(
        "CALLBACK_CONCURRENCY",
        4,
        "Callback deliveries one cluster runs at once, on threads of their own (never in the maintenance pass).",
    ),
    Tunable(
        "CALLBACK_PER_HOST",
        2,
        "Of those, most to one host at once, so a slow receiver cannot hold every delivery slot.",
    ),
    Tunable("CALLBACK_BACKOFF_BASE", 2.0, "Backoff between deliveries: like `JOBS_BACKOFF_BASE`, for callbacks."),
    Tunable("CALLBACK_BACKOFF_CAP", 600.0, "Longest wait between two deliveries of a callback (seconds)."),
    # -- the migrate_rows job type (docs/job-types.md) ------------------------------------------
    Tunable(
        "MIGRATION_STATEMENT_TIMEOUT",
        30.0,
        "Longest one query of `migrate_rows` may run on its source (seconds; its `statement_timeout`).",
    ),
    Tunable(
        "MIGRATION_TARGET_TIMEOUT",
        30.0,
        "Seconds one batch's POST may take in all (connecting, sending, the answer's status and headers): a hard "
        "deadline, however slowly the target answers.",
    ),
    Tunable(
        "MIGRATION_TARGET_RETRIES",
        4,
        "Times `migrate_rows` sends a batch again within one attempt (5xx, 408, 429, timeout, refused) "
        "before the attempt fails and the job's own retry takes over.",
    ),
    Tunable(
        "MIGRATION_TARGET_BACKOFF",
        1.0,
        "Wait before the first of those (seconds); it doubles each time, at most 60 (or the target's `Retry-After`).",
    ),
    # -- keeping the no-loss promise ---------------------------------------------------------
    Tunable(
        "MAINTENANCE_INTERVAL",
        5.0,
        "Seconds between maintenance passes (rescue, redeliver, promote, fire schedules) "
        "and between looks for due callbacks.",
    ),
    Tunable(
        "MAINTENANCE_BATCH",
        100,
        "Most jobs one maintenance pass rescues or redelivers; most schedules it fires, and jobs per schedule.",
    ),
    Tunable("REDELIVER_AFTER", 60.0, "A waiting job whose delivery is lost this long gets a new envelope."),
    # -- schedules ---------------------------------------------------------------------------
    Tunable(
        "SCHEDULE_MISFIRE_GRACE",
        60.0,
        "A schedule's fire time first reached more than this many seconds late (every cluster was down) "
        "is missed: the schedule's `catch_up` decides (one job for all, or none).",
    ),
    Tunable(
        "SCHEDULE_MIN_EVERY",
        10,
        "Shortest `every` a schedule may ask for (seconds): with `JOBS_MAX_SCHEDULES_PER_APP`, it bounds "
        "the jobs one application's schedules can start per second.",
    ),
    Tunable(
        "MAX_SCHEDULES_PER_APP",
        1000,
        "Most schedules (not ended) one application may have; another create is `409` (0: no cap).",
    ),
    Tunable(
        "METRICS_SCHEDULES_MAX",
        50,
        "Most schedules `/metrics` gives series of their own (the oldest not ended); all count in the totals.",
    ),
)

TUNABLES_BY_NAME: dict[str, Tunable] = {tunable.name: tunable for tunable in TUNABLES}


def jobs_from_environment(environ: dict[str, str] | os._Environ[str] = os.environ) -> dict[str, int | float]:
    """The ``JOBS`` setting: each tunable from its environment variable, else its default."""
    return {tunable.name: tunable.from_environment(environ) for tunable in TUNABLES}


class Settings:
    """``settings.LEASE_SECONDS``: Django's ``JOBS`` value, else the tunable's default."""

    def __getattr__(self, name: str) -> Any:
        tunable = TUNABLES_BY_NAME.get(name)
        if tunable is None:
            raise AttributeError(name)
        return getattr(django_settings, "JOBS", {}).get(name, tunable.default)


settings = Settings()


# -- settings that are lists or names: each default written here, read through these -------
#: Peers trusted to say who the client is (``X-Forwarded-For``) and how it connected
#: (``X-Forwarded-Proto``): ``FORWARDED_ALLOW_IPS``, shared with gunicorn.
DEFAULT_TRUSTED_PROXIES = "127.0.0.1,::1"
#: Addresses that may read ``/metrics`` without a token (``JOBS_METRICS_ALLOW``).
DEFAULT_METRICS_ALLOW = "127.0.0.1,::1"
#: django-q2's own default for ``Q_CLUSTER["retry"]`` (``django_q.conf.Conf``), used when
#: the setting leaves it out (``jobplatform.settings`` always sets it).
DJANGO_Q_DEFAULT_RETRY = 60


def address_list(raw: str | None) -> list[str]:
    """A comma-separated list of addresses or networks, blanks dropped."""
    return [part.strip() for part in (raw or "").split(",") if part.strip()]


#: A migration source's name: what a job's params say instead of a database URL.
SOURCE_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")


def named_sources(raw: str | None, *, variable: str = "JOBS_SOURCES") -> dict[str, str]:
    """``JOBS_SOURCES``: whitespace-separated ``name=postgres://…`` pairs (whitespace, not
    commas: a multi-host URL holds commas). A mistake is refused at start-up, naming the
    entry by its position and name, never echoing a URL (it may hold a password)."""
    sources: dict[str, str] = {}
    for position, entry in enumerate((raw or "").split(), start=1):
        name, _, url = entry.partition("=")
        if not SOURCE_NAME.fullmatch(name):
            raise ImproperlyConfigured(
                f"{variable}: entry {position} must be name=postgres://… with a name of lower-case letters, "
                "digits and _ (at most 40, starting with a letter)"
            )
        if not url.startswith(("postgres://", "postgresql://")):
            raise ImproperlyConfigured(f"{variable}: source {name!r} needs a postgres:// or postgresql:// URL")
        if name in sources:
            raise ImproperlyConfigured(f"{variable}: source {name!r} is named twice")
        sources[name] = url
    return sources


#: What a source's application list holds to open it to every application.
EVERY_APP = "*"


def source_apps(
    raw: str | None, *, sources: dict[str, str], variable: str = "JOBS_SOURCE_APPS"
) -> dict[str, tuple[str, ...]]:
    """``JOBS_SOURCE_APPS``: whitespace-separated ``source=app1,app2`` entries naming the
    applications that may use each source of ``JOBS_SOURCES`` (``source=*``: every one).
    Every source must have one, so that opening a source is always a decision; a mistake
    is refused at start-up. Kept apart from the URLs, so a multi-host URL's commas and a
    password never meet this syntax (an application whose name holds whitespace or a
    comma cannot be named here)."""
    apps: dict[str, tuple[str, ...]] = {}
    for position, entry in enumerate((raw or "").split(), start=1):
        name, equals, listed = entry.partition("=")
        if not equals or not SOURCE_NAME.fullmatch(name) or not listed:
            raise ImproperlyConfigured(
                f"{variable}: entry {position} must be source=app1,app2 (or source={EVERY_APP} for every application)"
            )
        if name not in sources:
            raise ImproperlyConfigured(f"{variable}: source {name!r} is not in JOBS_SOURCES")
        if name in apps:
            raise ImproperlyConfigured(f"{variable}: source {name!r} is named twice")
        names = tuple(listed.split(","))
        if "" in names:
            raise ImproperlyConfigured(f"{variable}: source {name!r} lists an empty application name")
        if EVERY_APP in names and len(names) > 1:
            raise ImproperlyConfigured(f"{variable}: source {name!r}: {EVERY_APP} stands alone (every application)")
        apps[name] = names
    for name in sources:
        if name not in apps:
            raise ImproperlyConfigured(
                f"{variable}: source {name!r} of JOBS_SOURCES names no application: give {name}=app1,app2 "
                f"(or {name}={EVERY_APP} for every application; a source gives them whatever its role may read)"
            )
    return apps


#: A host name or IPv4 address (an IPv6 address goes in brackets when a port follows).
_HOST_NAME = re.compile(r"[a-z0-9_]([a-z0-9_.-]*[a-z0-9_])?")


def host_entry(entry: str) -> tuple[str, int | None]:
    """One entry of an allowed-host list as ``(host, port)``: ``host`` (any port),
    ``host:port``, ``[v6]`` or ``[v6]:port``, or a bare IPv6 address (any port). The host
    lower-cased as ``urlsplit().hostname`` gives it (an IPv6 address without brackets).
    ValueError when it is none of these."""
    entry = entry.strip().lower()
    if entry.startswith("["):
        host, bracket, rest = entry[1:].partition("]")
        if not bracket or ":" not in host or (rest and not rest.startswith(":")):
            raise ValueError(entry)
        port_text = rest[1:] if rest else None
    elif entry.count(":") > 1:  # a bare IPv6 address
        host, port_text = entry, None
    else:
        host, colon, port_text_or_empty = entry.partition(":")
        port_text = port_text_or_empty if colon else None
        if not _HOST_NAME.fullmatch(host):
            raise ValueError(entry)
    if port_text is None:
        return host, None
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(entry)
    return host, int(port_text)


def host_list(raw: str | None, *, variable: str = "JOBS_CALLBACK_ALLOWED_HOSTS") -> list[str]:
    """A comma-separated list of allowed hosts, each ``host`` (any port) or ``host:port``
    (that port only), lower-cased, blanks dropped; a malformed entry is refused at start-up."""
    entries = [part.strip().lower() for part in (raw or "").split(",") if part.strip()]
    for entry in entries:
        try:
            host_entry(entry)
        except ValueError:
            raise ImproperlyConfigured(
                f"{variable}: {entry!r} is not a host or host:port (an IPv6 address with a port: [::1]:9000)"
            ) from None
    return entries


def trusted_proxies() -> str:
    """``FORWARDED_ALLOW_IPS`` as Django's settings hold it (``JOBS_TRUSTED_PROXIES``)."""
    return str(getattr(django_settings, "JOBS_TRUSTED_PROXIES", DEFAULT_TRUSTED_PROXIES))


def metrics_allow() -> tuple[str, ...]:
    """``JOBS_METRICS_ALLOW`` as Django's settings hold it."""
    return tuple(getattr(django_settings, "JOBS_METRICS_ALLOW", address_list(DEFAULT_METRICS_ALLOW)))


def q_cluster_retry(q_cluster: dict[str, Any] | None = None) -> float:
    """Seconds after which django-q2 hands an envelope it handed out once out again."""
    if q_cluster is None:
        q_cluster = getattr(django_settings, "Q_CLUSTER", {})
    return q_cluster.get("retry", DJANGO_Q_DEFAULT_RETRY)


def markdown_table() -> str:
    """The README's table of tunables (``python -m jobs.conf`` prints it)."""
    lines = ["| variable | default | meaning |", "|---|---|---|"]
    for tunable in TUNABLES:
        lines.append(f"| `{tunable.env}` | `{tunable.default}` | {tunable.help} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
