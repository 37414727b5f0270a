"""The shared cache's settings, jobs_top's drawing, and readiness with its sources mocked."""

from __future__ import annotations

from unittest import mock

import pytest
from django.core.cache.backends.db import DatabaseCache
from django.core.cache.backends.redis import RedisCache
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from jobplatform.settings.base import cache_config
from jobs import monitoring
from jobs.exceptions import DatabaseUnavailable
from jobs.management.commands.jobs_top import duration, progress_bar


def test_shared_cache_defaults_to_the_database_cache_table_the_migration_makes():
    config = cache_config(None, "jp")
    assert issubclass(import_string(config["BACKEND"]), DatabaseCache)
    assert config["LOCATION"] == "django_cache" and config["KEY_PREFIX"] == "jp"


@pytest.mark.parametrize("url", ["redis://127.0.0.1:6379/3", "rediss://cache.example:6380/0", "unix:///run/redis.sock"])
def test_shared_cache_is_redis_when_cache_url_says_so(url):
    config = cache_config(url, "jp")
    assert import_string(config["BACKEND"]) is RedisCache and config["LOCATION"] == url


def test_shared_cache_refuses_other_urls():
    with pytest.raises(ImproperlyConfigured, match="CACHE_URL"):
        cache_config("memcached://127.0.0.1:11211", "jp")


@pytest.mark.parametrize(
    ("percent", "bar"),
    [
        (None, "[--------------------]      -"),
        (0.0, "[--------------------]   0.0%"),
        (42.5, "[########------------]  42.5%"),
        (100.0, "[####################] 100.0%"),
        (140.0, "[####################] 140.0%"),
    ],
)
def test_progress_bar(percent, bar):
    assert progress_bar(percent) == bar


def test_duration():
    assert duration(5) == "0:05" and duration(3725) == "1:02:05" and duration(-1) == "0:00"


def test_readiness_when_the_database_is_down_names_each_missing_part():
    with (
        mock.patch("jobs.db.fetch_one", side_effect=DatabaseUnavailable("refused")),
        mock.patch.object(monitoring, "cluster_reports", side_effect=ConnectionError("no cache")),
        mock.patch("jobs.db.reset"),
        mock.patch.object(monitoring, "connections"),
    ):
        checks = monitoring.readiness()
    assert checks == {
        "database": "unavailable: DatabaseUnavailable: refused",
        "migrations": "unknown: the database is unavailable",
        "cluster": "unknown: the shared cache cannot be read (ConnectionError: no cache)",
    }


def test_ready_view_answers_503_problem_json_naming_the_failures(client):
    checks = {"database": "ok", "migrations": "pending: jobs.0009_x", "cluster": "none seen"}
    with mock.patch.object(monitoring, "readiness", return_value=checks):
        response = client.get("/ready", HTTP_ACCEPT="application/json")
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["checks"] == checks and body["status"] == 503
    assert body["detail"] == "Not ready: migrations pending: jobs.0009_x; cluster none seen."


def test_the_monitor_shows_no_control_character_a_client_sent():
    """A log line, progress message or schedule name holding ESC sequences must not drive
    the operator's terminal: jobs_top draws every screen through printable()."""
    from jobs.management.commands.jobs_top import printable

    hostile = "batch 1\x1b]0;owned\x07 sent\x1b[2J\r\x08\n next\x9b31m"
    assert printable(hostile) == "batch 1]0;owned sent[2J\n next31m"
