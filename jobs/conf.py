"""The ``JOBS`` settings, read through one object so tests can override them."""

from __future__ import annotations

from typing import Any

from django.conf import settings as django_settings

DEFAULTS: dict[str, Any] = {
    "DEFAULT_MAX_ATTEMPTS": 3,
    "MAX_ATTEMPTS_LIMIT": 25,
    "DEFAULT_TIMEOUT": 600,
    "MAX_TIMEOUT": 7200,
    "HEARTBEAT_INTERVAL": 5.0,
    "LEASE_SECONDS": 30.0,
    "MAINTENANCE_INTERVAL": 5.0,
    "REDELIVER_AFTER": 60.0,
    "SHUTDOWN_GRACE": 30.0,
    "BACKOFF_BASE": 2.0,
    "BACKOFF_CAP": 300.0,
    "MAX_METADATA_BYTES": 64 * 1024,
    "MAX_BODY_BYTES": 1024 * 1024,
    "PAGE_SIZE": 50,
    "MAX_PAGE_SIZE": 500,
    "RETRY_AFTER_SECONDS": 5,
}


class Settings:
    def __getattr__(self, name: str) -> Any:
        if name not in DEFAULTS:
            raise AttributeError(name)
        return getattr(django_settings, "JOBS", {}).get(name, DEFAULTS[name])


settings = Settings()
