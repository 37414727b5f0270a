"""Settings shared by every environment. Everything comes from environment variables.

The defaults here are the safe ones (DEBUG off, no hosts allowed but localhost);
``dev`` and ``test`` relax them, ``production`` insists on a SECRET_KEY.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from jobs.conf import (
    DEFAULT_METRICS_ALLOW,
    DEFAULT_TRUSTED_PROXIES,
    address_list,
    env_number,
    host_list,
    jobs_from_environment,
    named_sources,
    source_apps,
)
from jobs.logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent.parent


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def env_bool(name: str, default: bool) -> bool:
    value = env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    return env_number(name, default, int)


def env_float(name: str, default: float) -> float:
    return env_number(name, default, float)


def split_hosts(url: str) -> tuple[str, str, str]:
    """A libpq multi-host URL (``postgres://u@h1:p1,h2:p2/db?target_session_attrs=read-write``:
    libpq tries the hosts in order and keeps the first that suits ``target_session_attrs``),
    which dj-database-url cannot parse (it reads one port), taken apart: the URL with one
    placeholder host, and the comma-separated host and port lists Django hands to libpq as
    they are (HOST="h1,h2", PORT="p1,p2"; an empty port is libpq's default). A single-host
    URL comes back unchanged, with "" for both lists."""
    parts = urlsplit(url)
    userinfo, at, hostlist = parts.netloc.rpartition("@")
    if "," not in hostlist:
        return url, "", ""
    hosts: list[str] = []
    ports: list[str] = []
    for item in hostlist.split(","):
        if item.startswith("["):  # an IPv6 address: [::1]:5432
            host, _, port = item[1:].partition("]")
            port = port.removeprefix(":")
        else:
            host, _, port = item.partition(":")
        if not host or not (port == "" or port.isdigit()):
            raise ImproperlyConfigured(f"DATABASE_URL: {item!r} is not a host[:port] of a multi-host URL")
        hosts.append(unquote(host))
        ports.append(port)
    one_host = urlunsplit(parts._replace(netloc=f"{userinfo}{at}multi-host"))
    return one_host, ",".join(hosts), ",".join(ports) if any(ports) else ""


def database_config(url: str) -> dict:
    url, hosts, ports = split_hosts(url)
    config = dj_database_url.parse(
        url,
        # Persistent connections: reconnecting per request costs ~3.7x here.
        conn_max_age=env_int("DB_CONN_MAX_AGE", 600),
        # Off by default: it costs a SELECT 1 per request. After a database restart
        # each stale connection then fails one request (503 + Retry-After) and is
        # replaced. On: checked before every request instead.
        conn_health_checks=env_bool("DB_CONN_HEALTH_CHECKS", False),
    )
    if hosts:
        config["HOST"], config["PORT"] = hosts, ports
    if not config["ENGINE"].endswith("postgresql"):
        raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL")
    config.setdefault("OPTIONS", {}).setdefault("connect_timeout", env_int("DB_CONNECT_TIMEOUT", 5))
    config["TEST"] = {"NAME": env("TEST_DATABASE_NAME", None), "SERIALIZE": False}
    return config


def local_database() -> dict:
    """Dev and test without DATABASE_URL: the embedded PostgreSQL (started if needed)."""
    from jobplatform.embedded import database_url

    return {"default": database_config(database_url())}


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env("SECRET_KEY", "")
ALLOWED_HOSTS = [h.strip() for h in (env("ALLOWED_HOSTS", "localhost,127.0.0.1") or "").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in (env("CSRF_TRUSTED_ORIGINS", "") or "").split(",") if o.strip()]

INSTALLED_APPS = [
    "django.contrib.staticfiles",
    "rest_framework",
    # The OpenAPI document (/schema) and its viewers; the sidecar ships Swagger UI's and
    # Redoc's files, served from here like any static file (no CDN, no internet needed).
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # Before django_q: our qcluster command (django-q2's, plus a shutdown grace) wins.
    "jobs",
    "django_q",
    # More Django apps (for example ones that only carry job types), comma-separated.
    *[app.strip() for app in (env("EXTRA_INSTALLED_APPS", "") or "").split(",") if app.strip()],
]

MIDDLEWARE = [
    # Outermost: request id, one log line and the HTTP metrics for every answer.
    "jobs.api.observability.RequestObservabilityMiddleware",
    "jobs.api.middleware.DatabaseUnavailableMiddleware",
    "jobs.api.middleware.RequestSizeLimitMiddleware",
    "jobs.api.middleware.RateLimitHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "jobs.api.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Every HTML page (the browsable API, the log-in page) loads scripts, styles, fonts and
# images from this origin only, and cannot be framed (jobs.api.middleware).
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

ROOT_URLCONF = "jobplatform.urls"
WSGI_APPLICATION = "jobplatform.wsgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.csrf",
            ],
        },
    }
]

# The browsable API's sessions live in PostgreSQL (jobs_session, raw SQL, see
# jobs/sessions.py) so that log-out and token revocation end them; they keep the app
# token's id only, and expire SESSION_COOKIE_AGE seconds (8 hours) after log-in.
SESSION_ENGINE = "jobs.sessions"
SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 60 * 60)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

DATABASE_URL = env("DATABASE_URL")
DATABASES = {"default": database_config(DATABASE_URL)} if DATABASE_URL else {}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True
STATIC_URL = "static/"
# Set for collectstatic (the Docker image does); unset, files come from the apps.
STATIC_ROOT = env("STATIC_ROOT")
# WhiteNoise serves the browsable API's CSS and JS under gunicorn. Without a
# collectstatic run (dev, tests) it finds the files in the installed apps.
WHITENOISE_USE_FINDERS = env_bool("WHITENOISE_USE_FINDERS", True)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "jobs.api.auth.AppTokenAuthentication",
        "jobs.api.auth.AppSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "jobs.api.rendering.FastJSONRenderer",
        "jobs.api.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["jobs.api.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "jobs.api.errors.problem_exception_handler",
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "jobs.api.rendering.FastContentNegotiation",
    "UNAUTHENTICATED_USER": None,
    "UNAUTHENTICATED_TOKEN": None,
    "DATETIME_FORMAT": "iso-8601",
    "COERCE_DECIMAL_TO_STRING": True,
    "DEFAULT_SCHEMA_CLASS": "jobs.api.schema.JobsAutoSchema",
}

# The OpenAPI document at /schema (jobs/api/schema.py), Swagger UI at /docs, Redoc at /redoc.
SPECTACULAR_SETTINGS = {
    "TITLE": "jobplatform API",
    "DESCRIPTION": "Start long, costly jobs with one HTTP call and follow them to the end. "
    "Every error is RFC 9457 `application/problem+json`.",
    "VERSION": "1",
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The document and its viewers are public, whatever token a request carries.
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Swagger UI would send the document to validator.swagger.io for a badge: nothing leaves.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "jobs.api.schema.add_components",
    ],
}

# --- the job platform ------------------------------------------------------------
# Every tunable is defined once, with its default and meaning, in jobs.conf.TUNABLES
# (JOBS_<NAME> environment variables); read through jobs.conf.settings.
JOBS = jobs_from_environment()
# Named queues a job may ask for ("default" always exists); each is served by the
# clusters started with `qcluster --queue NAME`.
JOBS_QUEUES = [q.strip() for q in (env("JOBS_QUEUES", "default") or "").split(",") if q.strip()]
# Completion callbacks go only to these hosts (comma-separated exact names, each host:port
# for that port only, a bare host for any port; empty: none), so a client cannot make the
# platform call into the internal network.
JOBS_CALLBACK_ALLOWED_HOSTS = host_list(env("JOBS_CALLBACK_ALLOWED_HOSTS", ""))
# The PostgreSQL databases the migrate_rows job type may read, by name (whitespace-separated
# name=postgres://… pairs): a job's params name a source, so no URL or password ever comes
# from a request. Each source serves only the applications JOBS_SOURCE_APPS names for it
# (source=app1,app2 or source=*). Its targets go only to these hosts (as callbacks').
JOBS_SOURCES = named_sources(env("JOBS_SOURCES", ""))
JOBS_SOURCE_APPS = source_apps(env("JOBS_SOURCE_APPS", ""), sources=JOBS_SOURCES)
JOBS_MIGRATION_TARGET_HOSTS = host_list(env("JOBS_MIGRATION_TARGET_HOSTS", ""), variable="JOBS_MIGRATION_TARGET_HOSTS")
# Where clients reach the API, for the job URLs inside callbacks (e.g. https://jobs.example.com).
JOBS_PUBLIC_URL = env("JOBS_PUBLIC_URL", "") or ""
# Addresses and networks that may read /metrics without a token (comma-separated), when
# the request did not come through a proxy (see jobs/api/metrics.py and docs/operations.md, "Metrics").
# Set but empty: no address, a token always.
JOBS_METRICS_ALLOW = address_list(os.environ.get("JOBS_METRICS_ALLOW", DEFAULT_METRICS_ALLOW))
# Peers whose X-Forwarded-For names the client, for the failed-authentication limit per
# client address: the list gunicorn already trusts with X-Forwarded-Proto (the proxy).
JOBS_TRUSTED_PROXIES = env("FORWARDED_ALLOW_IPS", DEFAULT_TRUSTED_PROXIES)
# Django refuses bodies above this when read through request.body; our API checks
# the same limit itself and answers 413 (see jobs.api.middleware).
DATA_UPLOAD_MAX_MEMORY_SIZE = int(JOBS["MAX_BODY_BYTES"])

# --- the shared cache ----------------------------------------------------------------
# django-q2 publishes each cluster's status (host, workers, state) through a Django
# cache; qinfo, qmonitor, qmemory, jobs_top and /ready read it from there. It must be
# one that every process on every machine shares: Django's database cache on our own
# PostgreSQL (table "django_cache", made by migration 0006_cache_table; no extra service), or
# Redis when CACHE_URL is set (redis://host:6379/0). Django's cache, not project data.


def cache_config(url: str | None, key_prefix: str) -> dict:
    if not url:
        return {
            "BACKEND": "jobs.cache.DatabaseCache",
            "LOCATION": "django_cache",
            "KEY_PREFIX": key_prefix,
            # Entries carry their own expiry (a cluster's status: 3 s); the list of
            # clusters must not vanish between two of their updates.
            "TIMEOUT": None,
        }
    if url.startswith(("redis://", "rediss://", "unix://")):
        return {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": key_prefix,
            "TIMEOUT": None,
        }
    raise ImproperlyConfigured(f"CACHE_URL must be a redis://, rediss:// or unix:// URL (or unset), got {url!r}")


CACHES = {
    # Nothing of ours uses the default cache; it stays per-process.
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "shared": cache_config(env("CACHE_URL"), env("CACHE_KEY_PREFIX", "jobplatform") or "jobplatform"),
}

# --- django-q2 ---------------------------------------------------------------------
# The database broker on our own PostgreSQL, so a job row and its queue envelope
# commit together. Each value is explained in docs/configuration.md ("Worker tuning").
_q_timeout = env_int("Q_TIMEOUT", JOBS["MAX_TIMEOUT"] + 60)
Q_CLUSTER = {
    "name": env("Q_CLUSTER_NAME", "jobplatform"),
    "orm": "default",
    "workers": env_int("Q_WORKERS", os.cpu_count() or 2),
    "timeout": _q_timeout,
    "retry": env_int("Q_RETRY", _q_timeout + 60),
    "save_limit": env_int("Q_SAVE_LIMIT", -1),
    "ack_failures": True,
    "max_attempts": 1,
    "recycle": env_int("Q_RECYCLE", 100_000),
    "max_rss": env_int("Q_MAX_RSS_KB", 512 * 1024),
    "bulk": env_int("Q_BULK", 4),
    "queue_limit": env_int("Q_QUEUE_LIMIT", 2 * env_int("Q_WORKERS", os.cpu_count() or 2)),
    "poll": env_float("Q_POLL", 0.1),
    # The database broker, woken by PostgreSQL LISTEN/NOTIFY between polls (jobs/broker.py).
    # Q_LISTEN=false: django-q2's own ORM broker, which only polls.
    **({"broker_class": "jobs.runtime.broker.ListeningORM"} if env_bool("Q_LISTEN", True) else {}),
    "guard_cycle": 0.5,
    "scheduler": False,
    "catch_up": False,
    "compress": False,
    "label": "Jobs queue",
    # Cluster status for the monitors, shared by every process (see CACHES above).
    "cache": "shared",
}

# One handler on the root logger; LOG_FORMAT "json" (production's default) writes one JSON
# object per line, "plain" a readable line (jobs/logs.py).
LOG_FORMAT = env("LOG_FORMAT", "plain")
LOGGING = logging_config(
    log_format=LOG_FORMAT or "plain",
    level=env("LOG_LEVEL", "INFO") or "INFO",
    q_level=env("Q_LOG_LEVEL", "WARNING") or "WARNING",
)
