"""Production: DEBUG off, SECRET_KEY and DATABASE_URL required, secure cookies."""

from django.core.exceptions import ImproperlyConfigured

from jobs.logs import logging_config

from .base import *  # noqa: F403
from .base import DATABASES, SECRET_KEY, env, env_bool, env_int

if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set in production")
if not DATABASES:
    raise ImproperlyConfigured("DATABASE_URL must be set in production")

SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
# Strict-Transport-Security on every answer to a request that came over TLS (Django's
# SecurityMiddleware sends it only when request.is_secure(), so plain HTTP never gets it).
# 0 turns it off.
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 365 * 24 * 60 * 60)

# Behind the proxy (docker/nginx), gunicorn sets the request's scheme from
# X-Forwarded-Proto, and only for peers in FORWARDED_ALLOW_IPS (docker/gunicorn.conf.py);
# request.is_secure() follows it. Django's own SECURE_PROXY_SSL_HEADER would believe the
# header from any peer that reaches gunicorn, so it stays off.
SECURE_PROXY_SSL_HEADER = None

# JSON log lines (one object per line) unless LOG_FORMAT says otherwise.
LOG_FORMAT = env("LOG_FORMAT", "json")
LOGGING = logging_config(
    log_format=LOG_FORMAT or "json",
    level=env("LOG_LEVEL", "INFO") or "INFO",
    q_level=env("Q_LOG_LEVEL", "WARNING") or "WARNING",
)
